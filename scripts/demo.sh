#!/usr/bin/env bash
# A narrated tour of catalyst-sentiment against llmsim, the simulated world
# of every upstream: each step says what to look for, shows sentimentctl's
# output, and checks that it happened (exit status 1 naming the step
# otherwise). Loopback only; stops by itself in about a minute.
#
#   scripts/demo.sh          (or: make demo)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [ -t 1 ]; then bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'; else bold='' green='' red='' off=''; fi
step_no=0
step_total=8
began=$SECONDS

step() { step_no=$((step_no + 1)); printf '\n%s== %d/%d  %s%s\n' "$bold" "$step_no" "$step_total" "$1" "$off"; }
say() { printf '%s\n' "$@" | sed 's/^ */   /'; }
ok() { printf '   %s[ok]%s %s\n' "$green" "$off" "$1"; }
fail() {
  printf '\n%sdemo: step %d failed: %s%s\n' "$red" "$step_no" "$1" "$off" >&2
  echo "-- last lines of sentimentd's log:" >&2
  grep -v 'grpc.method=' "$tmp/sentimentd.err" 2>/dev/null | tail -15 | cut -c1-300 >&2 || true
  exit 1
}

# ctl ARGS...: runs sentimentctl, shows the command and its output
# (indented; only the lines matching ${show[command]} when it is set), and
# keeps the output in $out. A failing command fails the step.
declare -A show=()
ctl() {
  printf '   %s$ sentimentctl %s%s\n' "$bold" "$*" "$off"
  local rc=0
  out=$("$tmp/sentimentctl" --addr "$svc" "$@" 2>&1) || rc=$?
  if [ -n "${show[$1]:-}" ]; then grep -E -- "${show[$1]}" <<<"$out" || true; else printf '%s\n' "$out"; fi | sed 's/^/     /'
  [ "$rc" = 0 ] || fail "sentimentctl $1 exited with status $rc"
}
# quiet ARGS...: the same without showing anything.
quiet() { out=$("$tmp/sentimentctl" --addr "$svc" "$@" 2>&1) || fail "sentimentctl $1: $out"; }
# expect REGEX WHAT: $out has a line matching REGEX, or the step fails.
expect() { grep -Eq -- "$1" <<<"$out" && ok "$2" || fail "expected $2 (no line matching /$1/)"; }
# field NAME: the value of classify's "NAME  value" line in $out.
field() { awk -v k="$1" '$1 == k { sub(/^[^ ]+ +/, ""); print; exit }' <<<"$out"; }
sim() { python3 scripts/simctl.py "$sim_url" "$@"; }
patch() { say "llmsim <- PATCH /_sim/scenario $1"; sim PATCH /_sim/scenario "$1" >/dev/null; }
# wait_gpu REGEX SECS: polls `sentimentctl gpu` until a line matches.
wait_gpu() {
  local until=$((SECONDS + $2))
  while :; do
    quiet gpu
    grep -Eq -- "$1" <<<"$out" && return 0
    [ $SECONDS -lt "$until" ] || return 1
    sleep 0.5
  done
}

echo "${bold}catalyst-sentiment demo${off}: sentimentd in front of llmsim, driven with sentimentctl"
echo "building sentimentd, sentimentctl and llmsim ..."
for b in sentimentd sentimentctl llmsim; do go build -o "$tmp/$b" "./cmd/$b"; done
built=$((SECONDS - began))
began=$SECONDS

sysfs="$tmp/sysfs"
start llmsim "$tmp/llmsim" --addr 127.0.0.1:0 --sysfs "$sysfs" --seed 1
sim_url="http://$addr"
sim_pid=$pid
cat >"$tmp/restart-model-server" <<EOF
#!/bin/sh
exec python3 "$PWD/scripts/simctl.py" "$sim_url" POST /_sim/ollama/restart >/dev/null
EOF
chmod +x "$tmp/restart-model-server"

# Every upstream is llmsim; short breaker cool-down and VRAM polls so the
# recoveries fit in the tour; no spacing between cloud calls.
start sentimentd env \
  SENTIMENT_GRPC_ADDR=127.0.0.1:0 SENTIMENT_METRICS_ADDR=127.0.0.1:0 \
  LLM_ENDPOINT_URL="$sim_url" LLM_MAX_CONCURRENT=4 \
  SENTIMENT_GEMINI_BASE_URL="$sim_url" GEMINI_API_KEY=sim-gemini-key \
  SENTIMENT_ANTHROPIC_BASE_URL="$sim_url" ANTHROPIC_API_KEY=sim-anthropic-key \
  SENTIMENT_DISCORD_WEBHOOKS="alerts=$sim_url/api/webhooks/1/sim" SENTIMENT_ALERT_CHANNEL=alerts \
  SENTIMENT_GPU_READER=sysfs SENTIMENT_GPU_SYSFS_ROOT="$sysfs" SENTIMENT_GPU_POLL_INTERVAL=0.5 \
  SENTIMENT_GPU_RESTART_CMD="$tmp/restart-model-server" \
  SENTIMENT_BREAKER_COOLDOWN=3 SENTIMENT_BREAKER_HALF_OPEN=1 \
  LLM_MIN_INTERVAL_SEC=0 LLM_GEMINI_RPM=600 LLM_RETRY_DELAY=0.1 \
  "$tmp/sentimentd"
svc=$addr
# The tour takes about 75 s; past this a step hangs.
watchdog "${DEMO_WATCHDOG:-115}"
metrics=$(sed -n 's/.*msg=serving .*metrics=\([^ ]*\).*/\1/p' "$tmp/sentimentd.err" | head -1)
echo "llmsim     $sim_url (Ollama, OpenAI, Gemini, Anthropic, Discord; a simulated RX 6800 in $sysfs)"
echo "sentimentd $svc (gRPC), metrics http://${metrics:-off}/metrics"
wait_gpu 'local tier admitting' 15 || fail "the local model was not warmed up within 15s"

step "One answer from each tier"
say "Every tier is healthy: the local model answers first. --tiers limits who may answer."
ctl classify "Acme raises full-year guidance after record quarter" --ticker ACME
[ "$(field tier)" = local ] && ok "the local model answered (tier local, model $(field model))" || fail "tier is $(field tier), not local"
show[classify]='^(label|tier|model|degraded|tried) '
for t in gemini anthropic lexicon; do
  ctl classify "Globex beats estimates and raises its dividend" --ticker GLBX --skip-cache --tiers "$t"
  [ "$(field tier)" = "$t" ] && ok "tier $t answered: $(field label), score $(field score)" || fail "tier is $(field tier), not $t"
done

show[classify]='^(label|tier|model|latency|degraded|cache|tried) '
step "A repeated release is served from the cache"
say "The same release from another wire: boilerplate and case differ, the text does not."
ctl classify "PRESS RELEASE: ACME raises full-year guidance after record quarter" --ticker ACME
expect '^cache +exact hit' "an exact cache hit: no model was called"

step "The local model fails: Gemini takes over"
patch '{"ollama":{"errors":{"500":1}}}'
say "Every Ollama call now gets the crashed runner's HTTP 500."
ctl classify "Initech wins a five-year defense contract" --ticker INTC
[ "$(field tier)" = gemini ] && ok "Gemini answered" || fail "tier is $(field tier), not gemini"
expect '^tried +local error.*500' "the local tier's failure is in the provenance"
quiet gpu
say "The GPU manager took the crash as a runner failure:" "$(grep -E 'local tier|last cleanup' <<<"$out" | sed 's/^ *//')"
patch '{"ollama":{"errors":{"500":0}}}'

step "Gemini fails too: its breaker opens, and closes by itself"
patch '{"gemini":{"errors":{"500":1}}}'
say "Calls limited to the cloud tiers (--tiers gemini,anthropic) until Gemini's breaker opens."
for i in $(seq 1 10); do
  quiet classify "Umbrella Corp shares surge after upgrade number $i" --ticker UMB --tiers gemini,anthropic
  [ "$(field tier)" = anthropic ] || fail "call $i: tier is $(field tier), not anthropic"
  quiet stats
  grep -Eq '^ +gemini +on +open ' <<<"$out" && break
done
show[stats]='^Tiers|^ +(tier +state|(local|gemini|anthropic) +on) '
ctl stats
unset 'show[stats]'
expect '^ +gemini +on +open ' "Gemini's breaker is open after $i calls (Claude answered each)"
ctl classify "Umbrella Corp shares surge after upgrade" --ticker UMB --tiers gemini,anthropic
expect '^tried +gemini (skipped|breaker)' "an open breaker skips Gemini at once"
patch '{"gemini":{"errors":{"500":0}}}'
say "Gemini is healthy again; the breaker waits for its 3 s cool-down, then lets a probe through."
sleep 3.2
ctl classify "Umbrella Corp shares surge after analyst upgrade" --ticker UMB --tiers gemini,anthropic
[ "$(field tier)" = gemini ] && ok "the probe went to Gemini and it answered" || fail "tier is $(field tier), not gemini"
quiet stats
grep -E '^ +tier +state|^ +gemini +on ' <<<"$out" | sed 's/^/     /'
expect '^ +gemini +on +closed ' "Gemini's breaker closed by itself"

step "A VRAM leak closes the GPU gate; the model is unloaded and reloaded"
wait_gpu 'local tier admitting' 30 || fail "the local tier did not reopen after the crash"
patch '{"gpu":{"leak_mib_per_call":1024,"free_on_unload":false}}'
say "Each Ollama call now leaks 1 GiB of VRAM, and an unload keeps the leak (as ROCm can)."
loads_before=$(sim get /_sim/state 's["ollama"]["loads"]')
for i in $(seq 1 20); do
  quiet classify "Hooli reports record cloud revenue, call $i" --ticker HOOL --skip-cache
  tier=$(field tier)
  quiet gpu
  printf '     call %2d answered by %-9s VRAM %s\n' "$i" "$tier" "$(grep -oE '[0-9.]+ GiB / [0-9.]+ GiB \([0-9]+%\)' <<<"$out" | head -1)"
  grep -q 'not admitting' <<<"$out" && break
  sleep 0.6
done
ctl gpu
expect 'local tier not admitting' "the gate closed: local work goes to the cloud tiers"
ctl classify "Hooli reports record cloud revenue" --ticker HOOL --skip-cache
[ "$(field tier)" != local ] && ok "answered by $(field tier) while the gate is closed" || fail "the local tier answered through a closed gate"
say "The manager unloads the model, sees the leak still held, runs SENTIMENT_GPU_RESTART_CMD" \
    "(here: llmsim's POST /_sim/ollama/restart), loads the model again and reopens the gate" \
    "(15 to 30 s: the wait grows with cleanups in a row, and the crashes above count)."
wait_gpu 'local tier admitting' 45 || { ctl gpu; fail "the gate did not reopen within 45s"; }
ctl gpu
expect 'last cleanup .*[1-9][0-9]* restarts\)' "the model server was restarted and the VRAM came back"
expect 'model mistral: loaded, warm' "the model is loaded and warm again"
loads_after=$(sim get /_sim/state 's["ollama"]["loads"]')
[ "$loads_after" -gt "$loads_before" ] && ok "llmsim saw the model loaded again ($loads_before -> $loads_after loads)" || fail "no reload seen by llmsim"
patch '{"gpu":{"leak_mib_per_call":0,"free_on_unload":true}}'
ctl classify "Hooli reports record cloud revenue again" --ticker HOOL --skip-cache
[ "$(field tier)" = local ] && ok "the local model answers again" || fail "tier is $(field tier), not local"

step "A progressive Discord alert: posted at once, edited with the model's answer"
sim POST /_sim/reset >/dev/null
patch '{"ollama":{"latency":"300ms"}}'
say "The local model now takes 300 ms: the post goes out first, the edit follows."
ctl alert "Acme wins FDA approval for its cancer drug" --ticker ACME --price 12.34 --change 5.67 --id demo-alert-1
mid=$(field message)
mid=${mid#id }
mid=${mid// /}
[ -n "$mid" ] && [ "$mid" != - ] && ok "posted as Discord message $mid" || fail "no message id"
if sim wait /_sim/discord 'len(s["posts"]) >= 1 and len(s["edits"]) >= 1' 10; then :; else fail "llmsim did not see the edit within 10s"; fi
posts=$(sim get /_sim/discord 'len(s["posts"])')
edits=$(sim get /_sim/discord 'len([e for e in s["edits"] if e.get("message_id") == "'"$mid"'"])')
say "llmsim's Discord: $posts post, $edits edit of message $mid"
[ "$posts" = 1 ] && [ "$edits" = 1 ] && ok "one post and one edit" || fail "want 1 post and 1 edit, got $posts and $edits"
say "The post's AI field, then the edit's:"
sim get /_sim/discord '[f["name"] + ": " + f["value"].splitlines()[0] for r in (s["posts"][0], s["edits"][0]) for f in r["embeds"][0].get("fields", []) if "AI" in f["name"]]' |
  python3 -c 'import json,sys; [print("     " + l) for l in json.load(sys.stdin)]'

step "A 500-item batch over one stream, with its progress bar"
patch '{"ollama":{"latency":"20ms","slots":4}}'
say "500 headlines, 4 GPU slots at 20 ms. Progress goes to stderr: a bar on a terminal, plain lines otherwise."
python3 - "$tmp/news.jsonl" <<'EOF'
import json, sys
tickers = ["ACME", "GLBX", "INTC", "UMB", "HOOL", "STARK", "WAYNE", "CYDN"]
templates = [
    "{t} raises full-year guidance after quarter {n}",
    "{t} misses estimates and cuts guidance for segment {n}",
    "{t} announces date of annual general meeting number {n}",
    "{t} operating profit rose to EUR {n}.5 mn from EUR {m}.1 mn",
    "{t} net sales decreased by {n} percent in the period",
    "{t} wins contract worth {n} million dollars",
    "{t} files for Chapter 11 bankruptcy protection in district {n}",
    "{t} appoints new chief financial officer, effective in {n} days",
]
with open(sys.argv[1], "w") as f:
    for i in range(500):
        t = tickers[i % len(tickers)]
        title = templates[i % len(templates)].format(t=t, n=i + 3, m=i + 1)
        f.write(json.dumps({"id": f"n{i + 1}", "ticker": t, "title": title}) + "\n")
EOF
printf '   %s$ sentimentctl batch news.jsonl -o results.jsonl%s\n' "$bold" "$off"
rc=0
"$tmp/sentimentctl" --addr "$svc" batch "$tmp/news.jsonl" -o "$tmp/results.jsonl" || rc=$?
[ "$rc" = 0 ] || fail "sentimentctl batch exited with status $rc"
n=$(wc -l <"$tmp/results.jsonl")
[ "$n" = 500 ] && ok "500 answers, one per item" || fail "$n answers, want 500"
patch '{"ollama":{"latency":"0s","slots":1}}'

step "The dashboard"
ctl stats
expect '^Requests: classify [1-9]' "Stats counts every call of the tour"

printf '\n%sdemo done in %ds (and %ds of building before it): every step checked.%s\n' "$green$bold" $((SECONDS - began)) "$built" "$off"
