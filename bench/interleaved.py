#!/usr/bin/env python3
"""The gateway against the bare aiohttp reference proxy, interleaved: A B B A rounds, median ratio.

    bench/interleaved.py --gateway-url URL --gateway-pid PID --out DIR [--rounds 3] [--duration 8]

The shared harness measures each system in turn, a few minutes apart. On this shared machine a
proxy's throughput drifts by a third within minutes (the bare proxy alone measured 3,300 to 5,800
req/s at c=16 in one afternoon), so two systems measured minutes apart can differ by more than
the effect being measured. Here each round runs reference, gateway, gateway, reference back to
back; the round's ratio is the gateway's two runs over the reference's two, and the median over
rounds is reported. Writes DIR/interleaved.jsonl (every run) and DIR/interleaved.json (ratios),
which bench/ratios.py prints next to the single-pass ratios.

Stdlib only; uses ../shared/bench/run.sh for every run and anchors.sh to start the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SHARED_BENCH", HERE.parent.parent / "shared" / "bench"))
REFERENCE = "ref-aiohttp-orjson"
GATEWAY = "llm-gateway"


def anchors(*args: str) -> str:
    done = subprocess.run([str(SHARED / "anchors.sh"), *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def run(url: str, system: str, pid: str, body: str, conns: int, duration: int, out: Path) -> float:
    before = out.read_text().count("\n") if out.exists() else 0
    subprocess.run(
        [str(SHARED / "run.sh"), url, "-b", body, "-c", str(conns), "-d", str(duration), "-w", "2",
         "-s", system, "-p", pid, "-o", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    lines = out.read_text().splitlines()
    if len(lines) <= before:
        raise RuntimeError(f"run.sh wrote no result for {system}")
    result = json.loads(lines[-1])
    if result.get("errors"):
        raise RuntimeError(f"{system}: {result['errors']} errors in a run")
    return float(result["rps"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway-url", required=True)
    parser.add_argument("--gateway-pid", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--bodies", default="chat,stream")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs_file = args.out / "interleaved.jsonl"

    anchors("start", REFERENCE)
    try:
        ref_url, ref_pid = anchors("url", REFERENCE), anchors("pid", REFERENCE)
        summary: dict[str, dict[str, object]] = {}
        for body in args.bodies.split(","):
            ratios = []
            for i in range(args.rounds):
                a1 = run(ref_url, REFERENCE, ref_pid, body, args.conns, args.duration, runs_file)
                b1 = run(args.gateway_url, GATEWAY, args.gateway_pid, body, args.conns, args.duration, runs_file)
                b2 = run(args.gateway_url, GATEWAY, args.gateway_pid, body, args.conns, args.duration, runs_file)
                a2 = run(ref_url, REFERENCE, ref_pid, body, args.conns, args.duration, runs_file)
                ratios.append((b1 + b2) / (a1 + a2))
                print(
                    f"{body} c={args.conns} round {i + 1}: reference {a1:.0f}, {a2:.0f}; gateway {b1:.0f}, {b2:.0f};"
                    f" ratio {ratios[-1]:.3f}",
                    flush=True,
                )
            summary[body] = {"conns": args.conns, "rounds": ratios, "median": statistics.median(ratios)}
    finally:
        anchors("stop", REFERENCE)
    (args.out / "interleaved.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
