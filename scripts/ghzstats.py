#!/usr/bin/env python3
"""Sums up ghz JSON reports (--format json) for scripts/load.sh.

    ghzstats.py [--items N] REPORT.json...

Prints one line of shell assignments over all the reports together:
    count=.. ok=.. errors=.. secs=.. rps=.. p50=.. p95=.. p99=.. max=.. cpu=.. codes=..
rps is all calls over the reports' summed run time (N items per call with
--items: a stream of N messages counts N); percentiles are in milliseconds,
over every OK call of every report (ghz's per-call details), so rounds merge
exactly. cpu is the server's CPU time per call in microseconds when each
REPORT.json has a REPORT.cpu beside it holding the server's CPU clock ticks
over the run (CLK_TCK from the environment, default 100); "-" otherwise.
codes lists the statuses that were not OK, e.g. "Unavailable:3".
Standard library only.
"""
import json
import os
import sys


def pct(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, int(round(p / 100 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


def main(argv):
    items = 1
    if len(argv) > 2 and argv[1] == "--items":
        items = int(argv[2])
        argv = argv[2:]
    count = ok = 0
    secs = 0.0
    lat = []
    codes = {}
    ticks, have_cpu = 0, True
    for path in argv[1:]:
        with open(path) as f:
            r = json.load(f)
        cpu_path = path[: -len(".json")] + ".cpu"
        if os.path.exists(cpu_path):
            with open(cpu_path) as f:
                ticks += int(f.read().split()[0])
        else:
            have_cpu = False
        secs += r["total"] / 1e9
        for d in r.get("details") or []:
            count += 1
            if d["status"] == "OK":
                ok += 1
                lat.append(d["latency"] / 1e6)
            else:
                codes[d["status"]] = codes.get(d["status"], 0) + 1
    lat.sort()
    rps = count * items / secs if secs else 0.0
    hz = int(os.environ.get("CLK_TCK", "100"))
    cpu = f"{ticks * 1e6 / hz / count:.0f}" if have_cpu and count else "-"
    code_words = ",".join(f"{k}:{v}" for k, v in sorted(codes.items())) or "none"
    print(
        f"count={count} ok={ok} errors={count - ok} secs={secs:.2f} rps={rps:.1f} "
        f"p50={pct(lat, 50):.3f} p95={pct(lat, 95):.3f} p99={pct(lat, 99):.3f} "
        f"max={(lat[-1] if lat else 0):.3f} cpu={cpu} codes={code_words}"
    )


if __name__ == "__main__":
    main(sys.argv)
