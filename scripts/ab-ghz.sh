#!/usr/bin/env bash
# Two builds of sentimentd side by side under the same ghz scenario, rounds
# interleaved, over loopback: for before/after figures of a change.
#
#   scripts/ab-ghz.sh BEFORE_BIN AFTER_BIN [SCENARIO] [ROUNDS]
#
# SCENARIO is a config of bench/load/ (default lexicon). For lexicon both
# servers run with LLM_LOCAL_ENABLED=0 and no cloud key, so Classify is
# answered by the lexicon, as in make load; for cache both run a local tier
# on llmsim with the cache on, primed with one call, so every call is a
# cache hit, as in make load. Each round also runs a grpc.health.v1 check
# against each server (AB_HEALTH=0 leaves it out). Prints req/s,
# p50/p95/p99 and the server's CPU per call for each build over all its
# rounds, and the scenario's req/s as a share of the same server's health
# checks. Build the two binaries with go build -o from the two commits.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
before=$1 after=$2 scenario=${3:-lexicon} rounds=${4:-3}
with_health=${AB_HEALTH:-1}
source scripts/lib.sh
make -s tools
export CLK_TCK
CLK_TCK=$(getconf CLK_TCK)
env_=(SENTIMENT_GRPC_ADDR=127.0.0.1:0 SENTIMENT_METRICS_ADDR=127.0.0.1:0 SENTIMENT_GPU_READER=none GPU_CLEANUP_INTERVAL_SEC=0)
case $scenario in
cache)
  go build -o "$tmp/llmsim" ./cmd/llmsim
  start llmsim "$tmp/llmsim" --addr 127.0.0.1:0 --seed 1
  env_+=(LLM_ENDPOINT_URL="http://$addr")
  ;;
*) env_+=(LLM_LOCAL_ENABLED=0) ;;
esac
start before env "${env_[@]}" "$before"
a_addr=$addr a_pid=$pid
start after env "${env_[@]}" "$after"
b_addr=$addr b_pid=$pid
if [ "$scenario" = cache ]; then
  for name in before after; do
    for _ in $(seq 100); do grep -q "model warm" "$tmp/$name.err" && break; sleep 0.1; done
    grep -q "model warm" "$tmp/$name.err" || { echo "$name: the local model did not warm up" >&2; exit 1; }
  done
  for target in "$a_addr" "$b_addr"; do
    bin/ghz --config bench/load/cache.json -n 1 -c 1 --connections 1 -z 0s "$target" >/dev/null
  done
fi
watchdog $((rounds * (with_health + 1) * 30 + 30))
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# run SIDE NAME CONFIG: one ghz run of CONFIG against SIDE's server into
# $tmp/SIDE-NAME.json, its server's CPU ticks meanwhile beside it.
run() {
  local side=$1 name=$2 cfg=$3 target p t0
  if [ "$side" = before ]; then target=$a_addr p=$a_pid; else target=$b_addr p=$b_pid; fi
  t0=$(ticks "$p")
  bin/ghz --config "bench/load/$cfg.json" --format json -o "$tmp/$side-$name.json" "$target" >/dev/null
  echo $(($(ticks "$p") - t0)) >"$tmp/$side-$name.cpu"
}
for i in $(seq "$rounds"); do
  for side in before after; do
    [ "$with_health" = 1 ] && run "$side" "health-$i" health
    run "$side" "sub-$i" "$scenario"
  done
done
rps() { python3 scripts/ghzstats.py "$@" | sed -E 's/.*rps=([0-9.]+).*/\1/'; }
for side in before after; do
  printf '%-7s %s\n' "$side" "$(python3 scripts/ghzstats.py "$tmp/$side"-sub-*.json)"
  if [ "$with_health" = 1 ]; then
    printf '%-7s %s\n' "" "health: $(python3 scripts/ghzstats.py "$tmp/$side"-health-*.json)"
    ratios=""
    for i in $(seq "$rounds"); do
      ratios+=" $(awk -v s="$(rps "$tmp/$side-sub-$i.json")" -v h="$(rps "$tmp/$side-health-$i.json")" 'BEGIN { printf "%.3f", s / h }')"
    done
    printf '%-7s %s\n' "" "$scenario/health: $(awk -v s="$(rps "$tmp/$side"-sub-*.json)" -v h="$(rps "$tmp/$side"-health-*.json)" 'BEGIN { printf "%.3f", s / h }') (rounds:$ratios)"
  fi
done
