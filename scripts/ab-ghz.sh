#!/usr/bin/env bash
# Two builds of sentimentd side by side under the same ghz scenario, rounds
# interleaved, over loopback: for before/after figures of a change.
#
#   scripts/ab-ghz.sh BEFORE_BIN AFTER_BIN [SCENARIO] [ROUNDS]
#
# SCENARIO is a config of bench/load/ (default lexicon); both servers run
# with LLM_LOCAL_ENABLED=0 and no cloud key, so Classify is answered by the
# lexicon, as in make load. Prints req/s, p50/p95/p99 and the server's CPU
# per call for each build over all its rounds. Build the two binaries with
# go build -o from the two commits.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
before=$1 after=$2 scenario=${3:-lexicon} rounds=${4:-3}
source scripts/lib.sh
make -s tools
export CLK_TCK
CLK_TCK=$(getconf CLK_TCK)
env_=(SENTIMENT_GRPC_ADDR=127.0.0.1:0 SENTIMENT_METRICS_ADDR=127.0.0.1:0 SENTIMENT_GPU_READER=none GPU_CLEANUP_INTERVAL_SEC=0 LLM_LOCAL_ENABLED=0)
start before env "${env_[@]}" "$before"
a_addr=$addr a_pid=$pid
start after env "${env_[@]}" "$after"
b_addr=$addr b_pid=$pid
watchdog $((rounds * 30 + 30))
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for i in $(seq "$rounds"); do
  for side in before after; do
    if [ "$side" = before ]; then target=$a_addr p=$a_pid; else target=$b_addr p=$b_pid; fi
    t0=$(ticks "$p")
    bin/ghz --config "bench/load/$scenario.json" --format json -o "$tmp/$side-$i.json" "$target" >/dev/null
    echo $(($(ticks "$p") - t0)) >"$tmp/$side-$i.cpu"
  done
done
printf '%-7s %s\n' before "$(python3 scripts/ghzstats.py "$tmp"/before-*.json)" after "$(python3 scripts/ghzstats.py "$tmp"/after-*.json)"
