#!/usr/bin/env python3
"""Gateway throughput with tracking off vs the SQLite sink on, in one run (issue 4: on >= 90% of off).

    .venv/bin/python bench/tracking_overhead.py [--rounds 2] [--conns 16] [--duration 10]

Starts the nginx mock (../shared/bench), then the gateway pinned to one core with each config in
turn, alternating (off, on, off, on, ...) so drift on a shared machine hits both alike, and
measures each with the shared harness's run.py. Prints the median rps of each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SHARED_BENCH", ROOT.parent / "shared" / "bench"))
GATEWAY = ROOT / ".venv" / "bin" / "llm-gateway"
PORT = 19402
CONFIG = """
endpoints:
  - name: mock-gpt
    endpoint_type: llm/v1/chat
    model: {{provider: openai, name: gpt-4o-mini, config: {{openai_api_key: sk-upstream, openai_api_base: "http://127.0.0.1:19080/v1"}}}}
tracking:
{tracking}
"""
MODES = {
    "off": "  sink: none",
    "sqlite": "  sinks: [{{type: sqlite, path: {dir}/traces.db}}]\n  spool_dir: {dir}/spool",
}


def start(mode: str, workdir: Path) -> subprocess.Popen[bytes]:
    config = workdir / f"{mode}.yaml"
    config.write_text(CONFIG.format(tracking=MODES[mode].format(dir=workdir)))
    proc = subprocess.Popen(
        ["taskset", "-c", os.environ.get("PROXY_CPU", "1"), str(GATEWAY), "serve", "--config", str(config),
         "--port", str(PORT), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gateway ({mode}) did not start")


def measure(mode: str, proc: subprocess.Popen[bytes], args: argparse.Namespace, out: Path) -> float:
    url = f"http://127.0.0.1:{PORT}/v1/chat/completions"
    run = [sys.executable, str(SHARED / "run.py"), url, "-c", str(args.conns), "-d", str(args.duration), "-w", "3"]
    run += ["-b", "chat", "-s", f"tracking-{mode}", "-p", str(proc.pid), "-o", str(out)]
    subprocess.run(run, check=True)
    return float(json.loads(out.read_text().splitlines()[-1])["rps"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    subprocess.run([str(SHARED / "mock" / "mock.sh"), "start"], check=True)
    results: dict[str, list[float]] = {"off": [], "sqlite": []}
    with tempfile.TemporaryDirectory(prefix="llm-bench-tracking-") as tmp:
        workdir = Path(tmp)
        for _ in range(args.rounds):
            for mode in ("off", "sqlite"):
                proc = start(mode, workdir)
                try:
                    results[mode].append(measure(mode, proc, args, workdir / "runs.jsonl"))
                finally:
                    proc.terminate()
                    proc.wait(30)
    off, on = statistics.median(results["off"]), statistics.median(results["sqlite"])
    print(f"\ntracking off: {off:,.0f} req/s {results['off']}")
    print(f"sqlite sink : {on:,.0f} req/s {results['sqlite']}")
    print(f"on / off    : {on / off:.1%}  (target >= 90%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
