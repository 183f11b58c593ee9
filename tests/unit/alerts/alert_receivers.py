"""Real local receivers for alert tests: an HTTP server (webhooks, Telegram/Discord/Slack
shapes) and an aiosmtpd SMTP server, both on 127.0.0.1, recording what arrives."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpReceiver:
    """Records every POST; `script` gives (status, headers) for the next requests."""

    def __init__(self, port: int | None = None, keepalive: bool = False, delay: float = 0) -> None:
        self.port = port or free_port()
        self.keepalive = keepalive
        self.delay = delay  # seconds before answering each request (a slow endpoint)
        self.received: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keepalive else "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                    if status < 300:
                        receiver.received.append(
                            {
                                "path": self.path,
                                "headers": dict(self.headers),
                                "body": body,
                                "client": self.client_address,
                            }
                        )
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                payload = b'{"ok": true, "result": {"message_id": 1}}'
                if self.path.startswith("/services/"):  # Slack webhooks answer plain "ok"
                    payload = b"ok"
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        ThreadingHTTPServer.request_queue_size = 128  # default 5 drops SYNs under load
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self, header: str = "Idempotency-Key") -> Counter[str]:
        with self.lock:
            return Counter(r["headers"].get(header, "") for r in self.received)

    def json_bodies(self) -> list[Any]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received]


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1 keeping every message it accepts."""

    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Any]:
        return self.handler.messages
