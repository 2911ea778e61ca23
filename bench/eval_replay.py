"""Benchmark: replay N rows through `evaluate` at concurrency C against a mock upstream with fixed latency.

    .venv/bin/python bench/eval_replay.py                 # 1,000 rows, concurrency 8, 50 ms, via the gateway
    .venv/bin/python bench/eval_replay.py --direct        # evaluate -> mock upstream, no gateway in between

The ideal is rows * latency / concurrency (6.25 s for the defaults); the target is within 1.3x of it.
Everything listens on 127.0.0.1 and stops when the script ends.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_CONFIG = """\
endpoints:
  - name: bench
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: mock
      config:
        openai_api_key: bench
        openai_api_base: http://127.0.0.1:{port}/v1
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def start(args: list[str], cwd: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--direct", action="store_true", help="skip the gateway: evaluate talks to the mock")
    parser.add_argument("--model-type", default=None, help="also compute the built-in metrics of this type")
    args = parser.parse_args()

    from evaluation import evaluate

    work = tempfile.mkdtemp(prefix="eval-bench-")
    env = {**os.environ, "LLM_GATEWAY_TRACKING_DB": str(Path(work) / "traces.db")}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upstream_port = free_port()
        upstream = start(
            [sys.executable, str(ROOT / "bench" / "eval_upstream.py"), "--port", str(upstream_port),
             "--latency", str(args.latency)],
            work, env,
        )  # fmt: skip
        processes.append(upstream)
        wait_ready(f"http://127.0.0.1:{upstream_port}/", upstream)
        url = f"http://127.0.0.1:{upstream_port}"
        if not args.direct:
            config = Path(work) / "gateway.yaml"
            config.write_text(GATEWAY_CONFIG.format(port=upstream_port))
            port = free_port()
            gateway = start(
                [str(ROOT / ".venv" / "bin" / "llm-gateway"), "serve", "--config", str(config),
                 "--host", "127.0.0.1", "--port", str(port)],
                work, env,
            )  # fmt: skip
            processes.append(gateway)
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/health", gateway)

        rows = [{"question": f"question number {i}: what is {i} plus {i}?"} for i in range(args.rows)]
        evaluate(rows[:16], model="endpoints:/bench", gateway_url=url, log_to_tracking=False)  # warm up
        started = time.perf_counter()
        result = evaluate(
            rows,
            model="endpoints:/bench",
            gateway_url=url,
            concurrency=args.concurrency,
            model_type=args.model_type,
            log_to_tracking=False,
            progress=False,
        )
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)

    ideal = args.rows * args.latency / args.concurrency
    path = "evaluate -> mock upstream" if args.direct else "evaluate -> llm-gateway serve -> mock upstream"
    print(f"{path}: {args.rows} rows, concurrency {args.concurrency}, upstream latency {args.latency * 1000:.0f} ms")
    print(f"errors: {result.row_errors}")
    print(f"elapsed: {elapsed:.2f} s  (ideal {ideal:.2f} s, ratio {elapsed / ideal:.3f}, target <= 1.3)")
    print(f"throughput: {args.rows / elapsed:.1f} rows/s")
    return 0 if result.row_errors == 0 and elapsed <= 1.3 * ideal else 1


if __name__ == "__main__":
    sys.exit(main())
