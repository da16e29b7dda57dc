"""Small fakes of the service's upstreams for the compat tests: an Ollama
server (the local model) and Discord's webhook API. Each runs an HTTP
server on a loopback port in a thread and records what it was sent, so a
test can check what reached the upstream."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

#: The model the service asks for by default (LLM_MODEL_NAME).
MODEL = "mistral:latest"
#: What the fake model says it holds on the GPU (GET /api/ps).
MODEL_SIZE = 5_100_000_000
MODEL_SIZE_VRAM = 4_600_000_000

#: Words that make the fake model answer bearish; anything else is bullish.
BEARISH_WORDS = ("cut", "plunge", "bankrupt", "miss", "fall", "loss", "probe")
#: Routine announcements the fake model calls neutral.
NEUTRAL_WORDS = ("annual meeting",)


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 with a handler bound to self."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def reply(self, status: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                owner.handle(self, "GET", b"")

            def do_POST(self) -> None:
                owner.handle(self, "POST", self._body())

            def do_PATCH(self) -> None:
                owner.handle(self, "PATCH", self._body())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name=type(self).__name__, daemon=True
        )

    def start(self) -> "_Server":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, h: Any, method: str, body: bytes) -> None:
        raise NotImplementedError


class FakeOllama(_Server):
    """Ollama's /api/chat, /api/generate (load and unload) and /api/ps. The
    model answers bearish when the headline has a BEARISH_WORDS word, neutral
    when it has a NEUTRAL_WORDS one, bullish otherwise; its
    rationale names the ticker it was given. ``chats`` holds the user
    message of every chat. Each chat takes ``delay`` seconds; ``peak`` is the
    most chats it ever served at once (a real GPU has so many slots)."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.active = 0
        self.peak = 0
        self.loaded = False
        self.chats: List[str] = []
        self.loads = 0
        self.unloads = 0

    def handle(self, h: Any, method: str, body: bytes) -> None:
        path = h.path.split("?", 1)[0]
        if method == "GET" and path == "/api/ps":
            with self.lock:
                models = (
                    [
                        {
                            "name": MODEL,
                            "model": MODEL,
                            "size": MODEL_SIZE,
                            "size_vram": MODEL_SIZE_VRAM,
                            "expires_at": "2099-01-01T00:00:00Z",
                            "context_length": 4096,
                        }
                    ]
                    if self.loaded
                    else []
                )
            h.reply(200, {"models": models})
            return
        if method != "POST":
            h.reply(404, {"error": "not found"})
            return
        req = json.loads(body or b"{}")
        if path == "/api/generate":
            unload = req.get("keep_alive") in (0, "0", "0s")
            with self.lock:
                self.loaded = not unload
                if unload:
                    self.unloads += 1
                else:
                    self.loads += 1
            h.reply(
                200,
                {
                    "model": req.get("model", MODEL),
                    "done": True,
                    "done_reason": "unload" if unload else "load",
                    "response": "",
                },
            )
            return
        if path == "/api/chat":
            user = next(
                (m.get("content", "") for m in req.get("messages", []) if m.get("role") == "user"),
                "",
            )
            with self.lock:
                self.chats.append(user)
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                time.sleep(self.delay)
            finally:
                with self.lock:
                    self.active -= 1
            fields = dict(
                line.split(": ", 1) for line in user.splitlines() if ": " in line
            )
            headline = fields.get("Headline", "").lower()
            ticker = fields.get("Ticker", "(not given)")
            bearish = any(w in headline for w in BEARISH_WORDS)
            neutral = not bearish and any(w in headline for w in NEUTRAL_WORDS)
            label, score, verdict = (
                ("bearish", -0.7, "bad news for the stock.") if bearish
                else ("neutral", 0.0, "routine news.") if neutral
                else ("bullish", 0.8, "good news for the stock.")
            )
            answer = {
                "label": label,
                "score": score,
                "confidence": 0.9,
                "rationale": f"Fake model on {ticker}: {verdict}",
            }
            h.reply(
                200,
                {
                    "model": req.get("model", MODEL),
                    "created_at": "2024-05-01T00:00:00Z",
                    "message": {"role": "assistant", "content": json.dumps(answer)},
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": 120,
                    "eval_count": 30,
                },
            )
            return
        h.reply(404, {"error": f"unknown route {path}"})


class FakeDiscord(_Server):
    """Discord's webhook execute (POST /api[/v10]/webhooks/{id}/{token}?wait=true)
    and edit (PATCH .../messages/{message_id}) for the webhooks in
    ``hooks`` ({id: token}). ``requests`` holds (method, path, body) of
    every request."""

    CHANNEL_SNOWFLAKE = "555000111"

    def __init__(self, hooks: Dict[str, str]) -> None:
        super().__init__()
        self.hooks = dict(hooks)
        self.requests: List[Tuple[str, str, Dict[str, Any]]] = []
        self._next_id = 880000000000000000

    def webhook_url(self, webhook_id: str) -> str:
        return f"{self.url}/api/webhooks/{webhook_id}/{self.hooks[webhook_id]}"

    def posts(self, text: Optional[str] = None) -> List[Tuple[str, Dict[str, Any]]]:
        """(path, body) of the posts made, those mentioning ``text`` if
        given."""
        with self.lock:
            return [
                (path, body)
                for method, path, body in self.requests
                if method == "POST" and (text is None or text in json.dumps(body))
            ]

    def edits(self, message_id: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [
                body
                for method, path, body in self.requests
                if method == "PATCH" and path.endswith("/messages/" + message_id)
            ]

    def handle(self, h: Any, method: str, body: bytes) -> None:
        path, _, query = h.path.partition("?")
        parts = path.strip("/").split("/")
        if len(parts) > 1 and parts[0] == "api" and parts[1].startswith("v"):
            del parts[1]  # the API version, /api/v10/...
        # api / webhooks / {id} / {token} [/ messages / {message_id}]
        ok = (
            len(parts) in (4, 6)
            and parts[:2] == ["api", "webhooks"]
            and self.hooks.get(parts[2]) == parts[3]
        )
        payload = json.loads(body) if body else {}
        with self.lock:
            self.requests.append((method, h.path, payload))
        if not ok:
            h.reply(404, {"message": "Unknown Webhook", "code": 10015})
            return
        if method == "POST" and len(parts) == 4:
            if "wait=true" not in query:
                h.reply(400, {"message": "this fake wants wait=true", "code": 0})
                return
            with self.lock:
                self._next_id += 1
                message_id = str(self._next_id)
            h.reply(200, self._message(message_id, parts[2], payload))
            return
        if method == "PATCH" and len(parts) == 6 and parts[4] == "messages":
            h.reply(200, self._message(parts[5], parts[2], payload))
            return
        h.reply(405, {"message": "405: Method Not Allowed", "code": 0})

    def _message(self, message_id: str, webhook_id: str, payload: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "id": message_id,
            "type": 0,
            "channel_id": self.CHANNEL_SNOWFLAKE,
            "webhook_id": webhook_id,
            "content": payload.get("content", ""),
            "embeds": payload.get("embeds", []),
            "timestamp": "2024-05-01T00:00:00.000000+00:00",
            "edited_timestamp": None,
        }
