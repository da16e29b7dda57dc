#!/usr/bin/env python3
"""The old bot's pacing, for scripts/perf.sh's comparison: it called the
local model server directly, LLM_BATCH_SIZE (5) items at once, then slept
LLM_BATCH_DELAY_SEC (2 s) before the next batch.

    oldbot.py OLLAMA_URL HEADLINES_FILE [BATCH_SIZE] [DELAY_SECS]

HEADLINES_FILE holds one headline a line. Each item is one Ollama
/api/generate call (the bot's old endpoint, non-streaming, format json)
with a 15 s timeout (LLM_TIMEOUT_SECS) and no retry. Prints one line of
shell assignments: items, judged, failed, secs, rate (items judged per
second). Standard library only.
"""
import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.request

PROMPT = (
    "Classify the sentiment of this financial news for the stock. "
    'Answer with JSON: {{"sentiment": "bullish|bearish|neutral", "score": -1..1}}.\n'
    "Headline: {title}\n"
)


def judge(base, title):
    body = json.dumps(
        {"model": "mistral", "prompt": PROMPT.format(title=title), "stream": False, "format": "json"}
    ).encode()
    req = urllib.request.Request(base + "/api/generate", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            json.loads(json.loads(resp.read())["response"])
            return True
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return False


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    base = argv[1].rstrip("/")
    size = int(argv[3]) if len(argv) > 3 else 5
    delay = float(argv[4]) if len(argv) > 4 else 2.0
    with open(argv[2]) as f:
        titles = [l.strip() for l in f if l.strip()]
    judged = 0
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(size) as pool:
        for i in range(0, len(titles), size):
            if i:
                time.sleep(delay)
            judged += sum(pool.map(lambda t: judge(base, t), titles[i : i + size]))
    secs = time.monotonic() - began
    print(
        f"items={len(titles)} judged={judged} failed={len(titles) - judged} "
        f"secs={secs:.2f} rate={judged / secs:.2f}"
    )


if __name__ == "__main__":
    main(sys.argv)
