"""Local fakes of OpenAI and the Graph API for the benchmarks (stdlib only, loopback only).

    python bench/fakes.py openai --port 18701 --latency 0.8
    python bench/fakes.py graph  --port 18702 --latency 0.3 --status-webhook http://127.0.0.1:18700/webhook/messages

OpenAI answers POST /v1/chat/completions after `latency` seconds with a Chat Completions body
whose content is a valid {"intent", "sentiment", "reply"}. Graph answers POST
/<version>/<phone-number-id>/messages after `latency` seconds with a new wamid, records every
send (GET /sends returns them, GET /stats a summary) and, like Meta, later posts the signed
status webhooks sent → delivered → read for it to Sara. Both stop by themselves after
`--max-seconds` (default 900) whatever happens to the benchmark that started them.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import heapq
import hmac
import itertools
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

REPLY = {
    "intent": "question",
    "sentiment": "neutral",
    "reply": "Claro! O curso tem acesso vitalício e certificado. Posso ajudar com o pagamento?",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's and requests' pools expect
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._answer(200, self.server.fake.get(self.path))

    def do_POST(self) -> None:
        arrived = time.time()
        body = self._body()
        status, data = self.server.fake.post(self.path, body, arrived)
        self._answer(status, data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, port: int, fake: Any) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake


class OpenAIFake:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls = 0
        self.lock = threading.Lock()

    def get(self, path: str) -> Any:
        return {"calls": self.calls}

    def post(self, path: str, body: bytes, arrived: float) -> tuple[int, Any]:
        if not path.endswith("/chat/completions"):
            return 404, {"error": {"message": "not found"}}
        request = json.loads(body or b"{}")
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.latency)
        return 200, {
            "id": f"chatcmpl-bench-{n}",
            "object": "chat.completion",
            "created": int(arrived),
            "model": request.get("model", "gpt-4o-mini"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps(REPLY), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 350, "completion_tokens": 40, "total_tokens": 390},
        }


class GraphFake:
    def __init__(self, latency: float, status_webhook: str, app_secret: str, posters: int) -> None:
        self.latency = latency
        self.sends: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.status_webhook = status_webhook
        self.app_secret = app_secret.encode()
        self.status_posted = 0
        self.status_failed = 0
        self._due: list[tuple[float, int, bytes]] = []
        self._due_lock = threading.Condition()
        self._ready: collections.deque[bytes] = collections.deque()
        self._ready_cond = threading.Condition()
        if status_webhook:
            threading.Thread(target=self._schedule_loop, daemon=True).start()
            for _ in range(posters):
                threading.Thread(target=self._post_loop, daemon=True).start()

    def get(self, path: str) -> Any:
        if path.startswith("/sends"):
            with self.lock:
                return list(self.sends)
        with self.lock:
            return {
                "sends": len(self.sends),
                "status_posted": self.status_posted,
                "status_failed": self.status_failed,
            }

    def post(self, path: str, body: bytes, arrived: float) -> tuple[int, Any]:
        if not path.endswith("/messages"):
            return 404, {"error": {"message": "Unknown path", "code": 100}}
        payload = json.loads(body or b"{}")
        time.sleep(self.latency)
        wamid = f"wamid.BENCH{next(self.ids):09d}"
        to = payload.get("to", "")
        with self.lock:
            self.sends.append(
                {
                    "arrived": arrived,
                    "answered": time.time(),
                    "to": to,
                    "type": payload.get("type"),
                    "wamid": wamid,
                }
            )
        if self.status_webhook:
            self._schedule_statuses(wamid, to.lstrip("+"))
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": wamid}],
        }

    def _schedule_statuses(self, wamid: str, recipient: str) -> None:
        now = time.time()
        # Meta's usual rhythm: sent at once, delivered a moment later, read after a while.
        for delay, status in ((0.05, "sent"), (0.5, "delivered"), (2.0, "read")):
            body = json.dumps(
                common.meta_webhook(
                    statuses=[
                        {
                            "id": wamid,
                            "status": status,
                            "timestamp": str(int(now + delay)),
                            "recipient_id": recipient,
                        }
                    ]
                )
            ).encode()
            with self._due_lock:
                heapq.heappush(self._due, (now + delay, next(self.ids), body))
                self._due_lock.notify()

    def _schedule_loop(self) -> None:
        while True:
            with self._due_lock:
                while not self._due or self._due[0][0] > time.time():
                    wait = (self._due[0][0] - time.time()) if self._due else None
                    self._due_lock.wait(timeout=wait)
                _, _, body = heapq.heappop(self._due)
            with self._ready_cond:
                self._ready.append(body)
                self._ready_cond.notify()

    def _post_loop(self) -> None:
        while True:
            with self._ready_cond:
                while not self._ready:
                    self._ready_cond.wait()
                body = self._ready.popleft()
            signature = "sha256=" + hmac.new(self.app_secret, body, hashlib.sha256).hexdigest()
            request = urllib.request.Request(
                self.status_webhook,
                data=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    ok = response.status == 200
            except (urllib.error.URLError, OSError):
                ok = False
            with self.lock:
                if ok:
                    self.status_posted += 1
                else:
                    self.status_failed += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["openai", "graph"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, required=True)
    parser.add_argument("--status-webhook", default="", help="Sara's Meta webhook URL (graph only)")
    parser.add_argument("--app-secret", default="bench-app-secret")
    parser.add_argument("--posters", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    for url in (args.status_webhook,):
        if url and not url.startswith("http://127.0.0.1:"):
            raise SystemExit("the fakes only talk to 127.0.0.1")
    if args.kind == "openai":
        fake: Any = OpenAIFake(args.latency)
    else:
        fake = GraphFake(args.latency, args.status_webhook, args.app_secret, args.posters)
    server = _Server(args.port, fake)
    # Bounded: the fake goes away by itself even if whoever started it never stops it.
    threading.Timer(args.max_seconds, server.shutdown).start()
    print(f"{args.kind} fake on 127.0.0.1:{args.port}, latency {args.latency}s", flush=True)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
