"""A fake of Meta's Graph API as a real HTTP server, for tests whose sends happen in a worker
process (a `responses` mock lives in one process only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    body: dict[str, Any]
    status: int
    wamid: str
    at: float
    # When the request reached the fake, before its latency: what Meta would count.
    arrived: float = 0.0


# A policy sees the request body and the number of earlier calls for the same recipient and
# returns (HTTP status, response body); None means "accept the send".
Policy = Callable[[dict[str, Any], int], tuple[int, dict[str, Any]] | None]


@dataclass
class GraphFake:
    latency: float = 0.0
    policy: Policy | None = None
    calls: list[Call] = field(default_factory=list)
    # Read receipts (typing indicator) are not messages: Graph answers them {"success": true},
    # and they are kept apart from the sends these tests count.
    receipts: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def accepted(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.status == 200]

    def start(self) -> GraphFake:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                arrived = time.time()
                if body.get("status") == "read":
                    with fake._lock:
                        fake.receipts.append(body)
                    data = b'{"success": true}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if fake.latency:
                    time.sleep(fake.latency)
                with fake._lock:
                    earlier = sum(1 for c in fake.calls if c.body.get("to") == body.get("to"))
                    outcome = fake.policy(body, earlier) if fake.policy else None
                    wamid = f"wamid.fake.{len(fake.calls)}.{time.monotonic_ns()}"
                    status, answer = outcome or (
                        200,
                        {
                            "messaging_product": "whatsapp",
                            "contacts": [
                                {"input": body.get("to"), "wa_id": str(body.get("to", "")).lstrip("+")}
                            ],
                            "messages": [{"id": wamid}],
                        },
                    )
                    fake.calls.append(
                        Call(
                            body=body,
                            status=status,
                            wamid=wamid if status == 200 else "",
                            at=time.time(),
                            arrived=arrived,
                        )
                    )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
