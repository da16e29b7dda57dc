#!/usr/bin/env python3
"""A minimal Ollama for benchmarks: every chat is answered at once with one
bullish judgement, a preload or unload succeeds, /api/ps lists nothing.
Prints its port on the first line of stdout."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = json.dumps({
    "model": "mistral", "done": True, "done_reason": "stop",
    "message": {"role": "assistant", "content": json.dumps(
        {"label": "bullish", "score": 0.8, "confidence": 0.9, "rationale": "Approval of the drug."})},
    "prompt_eval_count": 120, "eval_count": 30,
}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/api/chat":
            self.reply(ANSWER)
        else:
            self.reply(b'{"model":"mistral","done":true,"done_reason":"load"}')

    def do_GET(self):
        self.reply(b'{"models":[]}')


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
