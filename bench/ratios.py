#!/usr/bin/env python3
"""Issue 7's performance targets as ratios inside one results folder of ../shared/bench.

    bench/ratios.py /tmp/llm-bench/results/<run>     (what `make bench` prints at the end)

With bench/interleaved.py's results in the folder, its interleaved ratios are printed too.

Ratios, not absolute numbers: the machines here are shared and noisy, so only systems measured in
the same run are compared. Missing systems (e.g. an anchor that failed to install) show as n/a.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

GATEWAY = "llm-gateway"


def load(folder: Path) -> tuple[dict[tuple[str, str, int], dict], dict[str, dict]]:
    runs: dict[tuple[str, str, int], list[dict]] = {}
    for line in (folder / "runs.jsonl").read_text().splitlines():
        run = json.loads(line)
        runs.setdefault((run["system"], run["kind"], run["conns"]), []).append(run)
    # Repeats: the median run by throughput stands for the system.
    best = {k: sorted(v, key=lambda r: r["rps"])[len(v) // 2] for k, v in runs.items()}
    systems = {}
    path = folder / "systems.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            s = json.loads(line)
            systems[s["system"]] = s
    return best, systems


def ratio(runs: dict, a: str, b: str, kind: str, conns: int) -> float | None:
    ra, rb = runs.get((a, kind, conns)), runs.get((b, kind, conns))
    if not ra or not rb or not rb["rps"]:
        return None
    return ra["rps"] / rb["rps"]


def main(folder: Path) -> int:
    runs, systems = load(folder)
    rows = []

    def check(name: str, value: float | None, target: float, higher_is_better: bool, fmt: str) -> None:
        if value is None:
            rows.append((name, "n/a", fmt.format(target), "not measured"))
            return
        ok = value >= target if higher_is_better else value <= target
        rows.append(
            (
                name,
                fmt.format(value),
                ("≥ " if higher_is_better else "≤ ") + fmt.format(target),
                "met" if ok else "MISSED",
            )
        )

    check("chat c=16: gateway / MLflow gateway", ratio(runs, GATEWAY, "mlflow", "chat", 16), 3.5, True, "{:.2f}×")
    check("chat c=16: gateway / LiteLLM proxy", ratio(runs, GATEWAY, "litellm", "chat", 16), 40, True, "{:.1f}×")
    check(
        "chat c=16: gateway / bare aiohttp proxy",
        ratio(runs, GATEWAY, "ref-aiohttp-orjson", "chat", 16),
        0.75,
        True,
        "{:.2f}×",
    )
    check(
        "stream c=16: gateway / bare aiohttp proxy",
        ratio(runs, GATEWAY, "ref-aiohttp-orjson", "stream", 16),
        0.75,
        True,
        "{:.2f}×",
    )
    gw1, direct1 = runs.get((GATEWAY, "chat", 1)), runs.get(("direct", "chat", 1))
    added = gw1["p50_ms"] - direct1["p50_ms"] if gw1 and direct1 else None
    check("added p50 latency at c=1 over direct (ms)", added, 1.0, False, "{:.2f}")
    idle = systems.get(GATEWAY, {}).get("idle_rss_mb")
    check("gateway idle RSS per worker (MB)", float(idle) if idle else None, 80, False, "{:.1f}")
    interleaved = folder / "interleaved.json"
    if interleaved.exists():  # bench/interleaved.py: the same two ratios, drift cancelled out
        for kind, result in json.loads(interleaved.read_text()).items():
            rounds = len(result["rounds"])
            name = f"{kind} c={result['conns']}: gateway / bare aiohttp proxy, interleaved (median of {rounds})"
            check(name, result["median"], 0.75, True, "{:.2f}×")

    print("| target | measured | wanted | |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    cpu = [r.get("other_cpu_pct", 0) for r in runs.values()]
    if cpu and statistics.median(cpu) > 25:
        print(f"\nnote: median 'other' CPU during the runs was {statistics.median(cpu):.0f}% (a noisy machine)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
