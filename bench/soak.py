"""Soak: steady load with faults mixed in, then check the gateway's RSS, open fds and asyncio tasks came back flat.

Loopback only and bounded: at most --duration seconds (capped at 300) and --max-requests calls.

    .venv/bin/python bench/soak.py --duration 120 --concurrency 16

The gateway runs as its own process (uvicorn + httptools + uvloop, the aiohttp upstream client,
JSONL tracking), started through this script's --serve mode, which also samples its asyncio task
count. The upstream is tests/integration/fault_upstream.py. The mix per call:
  66% chat, 12% streamed chat, 6% stream the client abandons after the first chunk,
  6% upstream 500, 4% upstream reset mid-stream, 4% garbage body, 2% upstream hang (504).
Figures are taken after a warm-up and again after the load stops and the gateway is idle.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STATS_EVERY = 0.5
MIX = [
    ("ok", False, 66),
    ("ok", True, 12),
    ("abandon", True, 6),
    ("error500", False, 6),
    ("resetstream", True, 4),
    ("badjson", False, 4),
    ("hang", False, 2),
]


def _load_fault_upstream():  # type: ignore[no-untyped-def]
    # By path: an installed package named "tests" (textstat ships one) would shadow ours.
    path = ROOT / "tests" / "integration" / "fault_upstream.py"
    spec = importlib.util.spec_from_file_location("fault_upstream", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_upstream"] = module
    spec.loader.exec_module(module)
    return module.FaultUpstream


# ---- the gateway process (--serve) -----------------------------------------------------------------


def serve(config_path: str, port: int, stats_path: str) -> None:
    import uvicorn

    from gateway.lifecycle import GatewayServer  # the server `llm-gateway serve` runs

    os.environ["LLM_GATEWAY_CONFIG"] = config_path

    async def main() -> None:
        config = uvicorn.Config(
            "gateway.server:create_app",
            factory=True,
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
        )
        server = GatewayServer(config)

        async def sample() -> None:
            while True:
                Path(stats_path).write_text(str(len(asyncio.all_tasks())))
                await asyncio.sleep(STATS_EVERY)

        sampler = asyncio.ensure_future(sample())
        try:
            await server.serve()
        finally:
            sampler.cancel()

    import uvloop

    uvloop.run(main())


# ---- the driver -------------------------------------------------------------------------------------


def snapshot(pid: int, stats_path: Path) -> dict[str, float]:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    time.sleep(STATS_EVERY * 2)  # a fresh task-count sample
    return {
        "rss_mib": round(rss / 1024, 1),
        "open_fds": len(os.listdir(f"/proc/{pid}/fd")),
        "asyncio_tasks": int(stats_path.read_text() or 0),
    }


async def one_call(client: httpx.AsyncClient, behaviour: str, stream: bool, counts: Counter[str]) -> None:
    endpoint = "slow" if behaviour == "abandon" else behaviour
    body = {"model": endpoint, "messages": [{"role": "user", "content": "soak"}], "stream": stream}
    try:
        if not stream:
            r = await client.post("/v1/chat/completions", json=body)
            counts[f"{behaviour}:{r.status_code}"] += 1
            return
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            async for line in r.aiter_lines():
                if behaviour == "abandon" and line.startswith("data: "):
                    break  # hang up mid-stream: the gateway must cancel the upstream and record a 499
            counts[f"{behaviour}{'/stream' if behaviour == 'ok' else ''}:{r.status_code}"] += 1
    except httpx.HTTPError as exc:
        counts[f"{behaviour}:client-{type(exc).__name__}"] += 1


async def drive(url: str, duration: float, concurrency: int, max_requests: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    weights = [w for *_, w in MIX]
    deadline = time.monotonic() + duration
    issued = 0
    rng = random.Random(8)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:

        async def worker() -> None:
            nonlocal issued
            while time.monotonic() < deadline and issued < max_requests:
                issued += 1
                behaviour, stream, _ = rng.choices(MIX, weights)[0]
                await one_call(client, behaviour, stream, counts)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def write_config(path: Path, fault: object) -> None:
    lines = ["endpoints:"]
    for name in ("ok", "slow", "error500", "resetstream", "badjson", "hang"):
        base = fault.base(name)  # type: ignore[attr-defined]
        lines.append(f"""
  - name: {name}
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: sk-soak-upstream-key, openai_api_base: "{base}"}}
    timeout: {{connect: 2, total: 1}}""")
    lines.append("""
tracking:
  sinks: [{type: jsonl, path: ./traces.jsonl}]
""")
    path.write_text("".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (capped at 300)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before the first snapshot")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--serve", nargs=3, metavar=("CONFIG", "PORT", "STATS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0
    duration = min(args.duration, 300.0)

    fault = _load_fault_upstream()()
    fault.start()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    config = workdir / "gateway.yaml"
    write_config(config, fault)
    stats = workdir / "tasks"
    stats.write_text("0")
    port = _free_port()
    log = (workdir / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(config), str(port), str(stats)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        warm = asyncio.run(drive(url, args.warmup, args.concurrency, args.max_requests))
        start = snapshot(proc.pid, stats)
        started = time.monotonic()
        counts: Counter[str] = Counter()
        trend = []  # a snapshot after each quarter: growth that keeps going is a leak, a plateau is not
        for _ in range(4):
            counts += asyncio.run(drive(url, duration / 4, args.concurrency, args.max_requests - sum(counts.values())))
            trend.append(snapshot(proc.pid, stats))
        elapsed = time.monotonic() - started
        time.sleep(2)  # let abandoned streams and timeouts settle
        end = snapshot(proc.pid, stats)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        fault.stop()
    records = sum(1 for _ in (workdir / "traces.jsonl").open()) if (workdir / "traces.jsonl").exists() else 0
    calls = sum(counts.values())
    result = {
        "duration_s": round(elapsed, 1),
        "concurrency": args.concurrency,
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "warmup_calls": sum(warm.values()),
        "tracking_records": records,
        "gateway_exit": proc.returncode,
        "start": start,
        "quarters": trend,
        "end": end,
        "outcomes": dict(sorted(counts.items())),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"soak: {calls} calls in {elapsed:.0f} s ({result['calls_per_s']}/s) at concurrency {args.concurrency}")
        print(f"{'':14}{'start':>10}{'25%':>10}{'50%':>10}{'75%':>10}{'100%':>10}{'idle end':>10}")
        for key in ("rss_mib", "open_fds", "asyncio_tasks"):
            row = "".join(f"{snap[key]:>10}" for snap in (start, *trend, end))
            print(f"{key:14}{row}")
        print(f"tracking records: {records} (warm-up {result['warmup_calls']} + load {calls}); exit {proc.returncode}")
        for outcome, n in result["outcomes"].items():
            print(f"  {outcome:28} {n}")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("gateway did not start")


if __name__ == "__main__":
    sys.exit(main())
