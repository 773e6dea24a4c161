"""A local stand-in for Stripe's Checkout Session endpoints, and Stripe-signed webhooks.

`FakeStripe` answers `POST /v1/checkout/sessions` and
`GET /v1/checkout/sessions/<id>` on 127.0.0.1 the way Stripe does (form-encoded
requests, JSON sessions, idempotency keys honoured), so stripe-python's real
client talks to it through `base_addresses`. `signed_event` builds a webhook
body and a `Stripe-Signature` header with Stripe's real scheme:
`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the endpoint secret>`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

_ids = itertools.count(1)


def _nest(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts (lists stay dicts)."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


class FakeStripe:
    def __init__(self):
        self.sessions: dict[str, dict] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{next(_ids)}")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = _nest(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                fake.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "form": form,
                        "headers": dict(self.headers),
                    }
                )
                if self.path != "/v1/checkout/sessions":
                    return self._reply(404, {"error": {"type": "invalid_request_error"}})
                status, body = fake.create_session(form, self.headers.get("Idempotency-Key"))
                self._reply(status, body)

            def do_GET(self):
                fake.requests.append(
                    {"method": "GET", "path": self.path, "headers": dict(self.headers)}
                )
                match = re.fullmatch(r"/v1/checkout/sessions/([\w-]+)", self.path.split("?")[0])
                session = fake.sessions.get(match.group(1)) if match else None
                if session is None:
                    return self._reply(
                        404,
                        {
                            "error": {
                                "type": "invalid_request_error",
                                "code": "resource_missing",
                                "message": "No such checkout.session",
                            }
                        },
                    )
                self._reply(200, session)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeStripe:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def create_session(self, form: dict, idempotency_key: str | None) -> tuple[int, dict]:
        with self.lock:
            if idempotency_key and idempotency_key in self.by_idempotency_key:
                return 200, self.sessions[self.by_idempotency_key[idempotency_key]]
            if form.get("mode") != "payment" or "line_items" not in form:
                return 400, {"error": {"type": "invalid_request_error", "message": "Bad session"}}
            item = form["line_items"]["0"]
            amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
            session_id = f"cs_test_{next(_ids)}"
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "open",
                "payment_status": "unpaid",
                "client_reference_id": form.get("client_reference_id"),
                "metadata": form.get("metadata", {}),
                "amount_total": amount,
                "currency": item["price_data"]["currency"],
                "payment_intent": None,
                "success_url": form["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id),
                "url": f"{self.url}/pay/{session_id}",
            }
            self.sessions[session_id] = session
            if idempotency_key:
                self.by_idempotency_key[idempotency_key] = session_id
            return 200, session

    def pay(self, session_id: str) -> dict:
        """The buyer pays: the session completes with a payment intent."""
        session = self.sessions[session_id]
        session.update(
            status="complete", payment_status="paid", payment_intent=f"pi_{session_id[8:]}"
        )
        return session


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def signed_event(
    event_type: str, obj: dict, secret: str, *, event_id: str | None = None, timestamp=None
) -> tuple[str, str]:
    """(body, Stripe-Signature header) for one webhook delivery."""
    body = json.dumps(
        {
            "id": event_id or f"evt_{next(_ids)}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    )
    return body, signature_header(body, secret, timestamp)
