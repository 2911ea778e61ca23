#!/usr/bin/env python3
"""The gateway's RSS over a long run (issue 7: idle RSS <= 80 MB per worker, < 5% growth over 200k requests).

    .venv/bin/python bench/rss_growth.py [--requests 200000] [--conns 16]

Starts the nginx mock (../shared/bench) and the gateway pinned to one core with tracking and
metrics on (bench/gateway.yaml), measures idle RSS, warms up with 20k calls (pools, caches and
SQLite pages fill up: growth before that is set-up, not a leak), then drives wrk until at least
--requests more calls have been served, sampling RSS as it goes. Bounded: wrk runs in 20 s slices,
at most 30 of them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SHARED_BENCH", ROOT.parent / "shared" / "bench"))
PORT = 19403
URL = f"http://127.0.0.1:{PORT}/v1/chat/completions"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def wrk(seconds: int, conns: int) -> int:
    env = dict(os.environ, WRK_BODY_FILE=str(SHARED / "bodies" / "chat.json"), WRK_EXPECT='"usage"')
    cmd = ["taskset", "-c", os.environ.get("LOAD_CPU", "0"), "wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    cmd += ["-s", str(SHARED / "wrk" / "post_json.lua"), URL]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise RuntimeError(out)
    bad = re.search(r'"non2xx":(\d+)', out)
    if bad and int(bad.group(1)):
        raise RuntimeError(f"non-2xx answers during the run: {out[-300:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--conns", type=int, default=16)
    args = parser.parse_args()
    subprocess.run([str(SHARED / "mock" / "mock.sh"), "start"], check=True)
    env = dict(os.environ, MOCK_BASE="http://127.0.0.1:19080/v1")
    for old in Path("/tmp/llm-bench").glob("gateway-traces.db*"):
        old.unlink()
    proc = subprocess.Popen(
        ["taskset", "-c", os.environ.get("PROXY_CPU", "1"), str(ROOT / ".venv" / "bin" / "llm-gateway"), "serve",
         "--config", str(ROOT / "bench" / "gateway.yaml"), "--port", str(PORT), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        idle = rss_mb(proc.pid)
        served = 0
        while served < 20_000:
            served += wrk(5, args.conns)
        time.sleep(1)
        base = rss_mb(proc.pid)
        print(f"idle RSS {idle:.1f} MB; after {served:,} warm-up calls {base:.1f} MB")
        total, slices = 0, 0
        while total < args.requests and slices < 30:
            total += wrk(20, args.conns)
            slices += 1
            print(f"  {total:>9,} calls  RSS {rss_mb(proc.pid):.1f} MB", flush=True)
        time.sleep(2)
        end = rss_mb(proc.pid)
        print(f"after {total:,} more calls: {end:.1f} MB, growth {100 * (end - base) / base:+.2f}% (target < 5%)")
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
