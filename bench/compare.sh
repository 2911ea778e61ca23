#!/usr/bin/env bash
# Start the gateway pinned to one core (tracking on) and compare it with the bare reference
# proxies in one run of ../shared/bench/compare.sh. Extra arguments go to compare.sh
# (e.g. -a all for MLflow's gateway and LiteLLM's proxy too, -r 2 for repeats).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
PORT="${GATEWAY_PORT:-19401}"
export MOCK_BASE="${MOCK_BASE:-http://127.0.0.1:19080/v1}"
mkdir -p /tmp/llm-bench
rm -rf /tmp/llm-bench/gateway-traces.db* /tmp/llm-bench/gateway-spool
taskset -c "${PROXY_CPU:-1}" "$ROOT/.venv/bin/llm-gateway" serve --config "$HERE/gateway.yaml" \
  --host 127.0.0.1 --port "$PORT" --log-level warning > /tmp/llm-bench/gateway.log 2>&1 &
GW_PID=$!
trap 'kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.2; done
TARGET_VERSION="llm-gateway $("$ROOT/.venv/bin/python" -c 'import gateway; print(gateway.__version__)')" \
  "$SHARED/compare.sh" -a "direct,ref-httpx-orjson,ref-httpxaio-orjson,ref-aiohttp-orjson" -n llm-gateway -p "$GW_PID" -W 1 "$@" \
  "http://127.0.0.1:$PORT/v1/chat/completions"
