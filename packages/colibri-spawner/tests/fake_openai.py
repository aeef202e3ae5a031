"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 for the Pi tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = "Hello from the fake server."


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append({"path": self.path, "body": body})
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        n = len(self.server.requests)
        base = {"id": f"chatcmpl-fake-{n:04d}", "object": "chat.completion.chunk",
                "created": 1795433299, "model": body.get("model", "fake-text")}  # fmt: skip
        words = REPLY.split(" ")
        chunks: list[dict[str, Any]] = []
        for i, word in enumerate(words):
            delta: dict[str, Any] = {"content": word if i == 0 else " " + word}
            if i == 0:
                delta["role"] = "assistant"
            chunks.append(
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            )
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
        chunks.append({**base, "choices": [], "usage": usage})
        for chunk in chunks:
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(10)
