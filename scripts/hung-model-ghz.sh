#!/usr/bin/env bash
# The owner's frozen GPU, from outside: a model server that accepts every
# connection and never answers, sentimentd in front of it, and ghz sending
# short-deadline Classify calls. Prints ghz's status distribution (every
# call must be OK: no DeadlineExceeded) and, with a shutdown, how many calls
# the server answered against how many ghz saw answered.
#
#   scripts/hung-model-ghz.sh [requests] [concurrency] [timeout] [shutdown-after]
#
# shutdown-after (seconds, optional) sends SIGTERM to sentimentd that long
# into the run; SENTIMENT_SHUTDOWN_GRACE (default here 1) is its grace.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
c=${2:-20}
timeout=${3:-2s}
shutdown_after=${4:-}
req='{"item":{"id":"1","ticker":"ACME","title":"Acme soars after FDA approval of its cancer drug"}}'
source scripts/lib.sh

go build -o "$tmp/sentimentd" ./cmd/sentimentd
go build -o "$tmp/ghz" -modfile=tools/go.mod github.com/bojand/ghz/cmd/ghz

# A model server that never answers: it accepts and holds every connection.
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(256)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' >"$tmp/model.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/model.port" ] && break; sleep 0.1; done
model="http://127.0.0.1:$(head -1 "$tmp/model.port")"

start sentimentd env SENTIMENT_GRPC_ADDR=127.0.0.1:0 LLM_ENDPOINT_URL="$model" SENTIMENT_GPU_WARMUP=0 SENTIMENT_GPU_READER=none \
  GPU_CLEANUP_INTERVAL_SEC=0 SENTIMENT_SHUTDOWN_GRACE="${SENTIMENT_SHUTDOWN_GRACE:-1}" ${SENTIMENTD_ENV:-} "$tmp/sentimentd"
srv=$pid

if [ -n "$shutdown_after" ]; then
  (sleep "$shutdown_after"; kill -TERM "$srv") &
fi
echo "== $n calls, concurrency $c, deadline $timeout, model never answers${shutdown_after:+, SIGTERM after ${shutdown_after}s}"
"$tmp/ghz" --insecure --call catalyst.sentiment.v1.SentimentService.Classify \
  -d "$req" -n "$n" -c "$c" --timeout "$timeout" --format summary "$addr" |
  grep -E 'Count|Total|Slowest|Fastest|Average|99 %|\[[A-Za-z]+\]|Error' || true
if [ -n "$shutdown_after" ]; then
  wait "$srv" || true
  echo "server answered (grpc.code=OK lines): $(grep -c 'grpc.method=Classify.*grpc.code=OK' "$tmp/sentimentd.err" || true)"
  grep -E 'level=(WARN|ERROR)' "$tmp/sentimentd.err" | grep -v 'grpc.method=' | cut -c1-200 || true
fi
