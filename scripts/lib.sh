# Shared by the ghz scripts: a scratch directory and the servers started in
# it, all removed and stopped on exit. Source it from the repo root.

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
# A TERM (the watchdog's, or anyone's) ends the script through the same
# cleanup; bash handles it once the command in the foreground returns.
trap 'echo "$0: stopped (SIGTERM)" >&2; exit 124' TERM
trap 'exit 130' INT

# watchdog SECS: ends the script (exit 124, servers stopped) if it is still
# running SECS seconds from now, so a hung step cannot keep it alive. Call
# it after starting the servers: it stops them first, so that a client
# waiting on one returns at once.
watchdog() {
  (
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$1" &
    s=$!
    wait "$s"
    echo "$0: still running after $1 s: stopping" >&2
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    kill -TERM $$
  ) &
  pids+=($!)
}

# start NAME CMD...: runs a server that prints "LISTENING host:port" first
# on stdout, and sets $addr and $pid.
start() {
  local name=$1; shift
  # Created here, not by the child's redirection, which may not have
  # happened yet when the loop below first reads it.
  : >"$tmp/$name.out"
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=($pid)
  for _ in $(seq 100); do
    addr=$(awk '/^LISTENING /{print $2; exit}' "$tmp/$name.out")
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "$name did not start:" >&2; cat "$tmp/$name.err" >&2; exit 1
}
