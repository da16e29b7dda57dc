#!/usr/bin/env bash
# Classify's throughput against a bare echo server with the same message
# sizes, both measured by ghz in one run over loopback.
#
#   scripts/bench-ghz.sh [requests] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
c=${2:-20}
req='{"item":{"id":"1","ticker":"ACME","title":"Acme soars after FDA approval of its cancer drug"}}'
source scripts/lib.sh

go build -o "$tmp/sentimentd" ./cmd/sentimentd
go build -o "$tmp/echod" ./bench/echod
go build -o "$tmp/ghz" -modfile=tools/go.mod github.com/bojand/ghz/cmd/ghz

bench() {
  "$tmp/ghz" --insecure --call catalyst.sentiment.v1.SentimentService.Classify \
    -d "$req" -n "$n" -c "$c" --connections 2 --format summary "$1" | grep -E 'Requests/sec|Average|Fastest|Slowest|95 %|99 %|\[OK\]|Error'
}

# Default log level: one line per RPC, as in production; no model tier, so
# Classify is answered by the lexicon, as echod's baseline answer was.
start sentimentd env SENTIMENT_GRPC_ADDR=127.0.0.1:0 LLM_LOCAL_ENABLED=0 ${SENTIMENTD_ENV:-} "$tmp/sentimentd"
svc=$addr
start echod "$tmp/echod" -addr 127.0.0.1:0 -d "$req"
echo_addr=$addr
head -1 "$tmp/echod.err"

for target in echo:"$echo_addr" sentimentd:"$svc" echo:"$echo_addr" sentimentd:"$svc" echo:"$echo_addr" sentimentd:"$svc"; do
  echo "== ${target%%:*} (${target#*:}), $n requests, concurrency $c"
  bench "${target#*:}"
done
