#!/usr/bin/env bash
# Start the gateway pinned to one core (tracking on) and compare it with the bare reference
# proxies in one run of ../shared/bench/compare.sh. Extra arguments go to compare.sh
# (e.g. -r 2 for repeats); ANCHORS=... picks the anchors (make bench: all of them, MLflow's gateway
# and LiteLLM's proxy included, each installed in its own venv by the shared harness).
# Prints the shared harness's table, then bench/interleaved.py's A B B A rounds against the bare
# aiohttp proxy (INTERLEAVED_ROUNDS=3; 0 skips them), then bench/ratios.py's ratios against the targets.
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
# The mock stays up between the shared comparison and the interleaved rounds; stopped at exit
# only if this script started it.
MOCK_STARTED=0
if ! "$SHARED/mock/mock.sh" status > /dev/null 2>&1; then
  "$SHARED/mock/mock.sh" start
  MOCK_STARTED=1
fi
cleanup() {
  kill "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
  if [ "$MOCK_STARTED" = 1 ]; then "$SHARED/mock/mock.sh" stop || true; fi
}
trap cleanup EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.2; done
OUT="${BENCH_OUT:-/tmp/llm-bench/results/llm-gateway-$(date +%Y%m%d-%H%M%S)}"
TARGET_VERSION="llm-gateway $("$ROOT/.venv/bin/python" -c 'import gateway; print(gateway.__version__)')" \
  "$SHARED/compare.sh" -a "${ANCHORS:-direct,ref-httpx-orjson,ref-httpxaio-orjson,ref-aiohttp-orjson}" \
  -n llm-gateway -p "$GW_PID" -W 1 -o "$OUT" "$@" "http://127.0.0.1:$PORT/v1/chat/completions"
echo
# The shared harness measures one system after another; the ratio to the bare aiohttp proxy is
# measured again with the two interleaved, which cancels the machine's drift between them.
if [ "${INTERLEAVED_ROUNDS:-3}" -gt 0 ]; then
  SHARED_BENCH="$SHARED" python3 "$HERE/interleaved.py" --gateway-url "http://127.0.0.1:$PORT/v1/chat/completions" \
    --gateway-pid "$GW_PID" --out "$OUT" --rounds "${INTERLEAVED_ROUNDS:-3}"
  echo
fi
python3 "$HERE/ratios.py" "$OUT" | tee "$OUT/ratios.md"
