#!/usr/bin/env python3
"""A small client of llmsim's control API for the demo and load scripts.

    simctl.py URL METHOD PATH [BODY]   send a request, print the answer's body
    simctl.py URL get PATH EXPR        print EXPR evaluated over the JSON at PATH,
                                       bound to `s` (e.g. 's["gpu"]["used_percent"]')
    simctl.py URL wait PATH EXPR SECS  poll PATH until EXPR is true, at most SECS
                                       seconds; exit 1 if it never is

URL is llmsim's base URL (http://127.0.0.1:PORT). Standard library only, so
the scripts need neither curl nor jq.
"""
import json
import sys
import time
import urllib.error
import urllib.request


def call(base, method, path, body=None):
    data = body.encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method.upper())
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as e:
        sys.exit(f"simctl: {method.upper()} {path}: HTTP {e.code}: {e.read().decode().strip()}")
    except OSError as e:
        sys.exit(f"simctl: {method.upper()} {path}: {e}")


def evaluate(base, path, expr):
    s = json.loads(call(base, "GET", path))
    return eval(expr, {"len": len, "sum": sum, "max": max, "min": min, "any": any, "all": all}, {"s": s})


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    base, verb = argv[1].rstrip("/"), argv[2]
    if verb == "get":
        v = evaluate(base, argv[3], argv[4])
        print(json.dumps(v) if isinstance(v, (dict, list)) else v)
    elif verb == "wait":
        deadline = time.monotonic() + float(argv[5])
        while True:
            if evaluate(base, argv[3], argv[4]):
                return
            if time.monotonic() > deadline:
                sys.exit(1)
            time.sleep(0.1)
    else:
        print(call(base, verb, argv[3], argv[4] if len(argv) > 4 else None))


if __name__ == "__main__":
    main(sys.argv)
