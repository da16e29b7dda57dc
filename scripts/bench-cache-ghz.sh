#!/usr/bin/env bash
# Classify's cache-hit path against a gRPC health check, both measured by
# ghz in one run over loopback: the first Classify is judged by a minimal
# fake Ollama and stored; every one after it is an exact cache hit.
#
#   scripts/bench-cache-ghz.sh [requests] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
c=${2:-20}
req='{"item":{"id":"1","ticker":"ACME","title":"Acme soars after FDA approval of its cancer drug"}}'
source scripts/lib.sh

go build -o "$tmp/sentimentd" ./cmd/sentimentd
go build -o "$tmp/ghz" -modfile=tools/go.mod github.com/bojand/ghz/cmd/ghz

python3 scripts/fake-ollama.py >"$tmp/model.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/model.port" ] && break; sleep 0.1; done
model="http://127.0.0.1:$(head -1 "$tmp/model.port")"

start sentimentd env SENTIMENT_GRPC_ADDR=127.0.0.1:0 LLM_ENDPOINT_URL="$model" SENTIMENT_GPU_READER=none \
  GPU_CLEANUP_INTERVAL_SEC=0 ${SENTIMENTD_ENV:-} "$tmp/sentimentd"
for _ in $(seq 100); do
  grep -q "model warm" "$tmp/sentimentd.err" && break
  sleep 0.1
done

# The first call stores the answer.
"$tmp/ghz" --insecure --call catalyst.sentiment.v1.SentimentService.Classify -d "$req" -n 1 -c 1 "$addr" >/dev/null

bench() {
  "$tmp/ghz" --insecure --call "$1" -d "$2" -n "$n" -c "$c" --connections 2 --format summary "$addr" |
    grep -E 'Requests/sec|99 %|\[OK\]|Error'
}
for round in 1 2 3; do
  echo "== round $round: health check, $n requests, concurrency $c"
  bench grpc.health.v1.Health.Check '{}'
  echo "== round $round: Classify, cache hit, $n requests, concurrency $c"
  bench catalyst.sentiment.v1.SentimentService.Classify "$req"
done
echo "model calls: $(grep -c 'grpc.method=Classify' "$tmp/sentimentd.err") Classify calls logged"
