"""A local, stateful stand-in for the Stripe API behind Checkout, and Stripe-signed webhooks.

`FakeStripe` serves on 127.0.0.1 the endpoints Contact Sheet calls, the way
Stripe does (form-encoded requests, JSON objects, lists, errors), so
stripe-python's real client talks to it through `base_addresses`:

    POST /v1/checkout/sessions                      create (idempotency keys honoured)
    GET  /v1/checkout/sessions/<id>                 retrieve
    GET  /v1/checkout/sessions?payment_intent=pi_…  list the session of a payment
    GET  /v1/payment_intents/<id>, /v1/charges/<id> retrieve

It keeps sessions, payment intents, charges and disputes, and the tests move
them the way a buyer, the card network or the studio's own Stripe dashboard
would (`pay`, `refund`, `dispute`). Each move returns the object exactly as
the webhook event about it carries it, so a test can deliver the events in
the order Stripe happens to send them, which is not the order they happened
in. `signed_event` builds that webhook delivery with the SDK's own types and
signing scheme (`stripe.Event.construct_from`, `WebhookSignature`).

`fail_next` makes the next requests fail the ways a real network to Stripe
does, after Stripe has done the work: an answer that is not JSON, a
connection closed before the answer, or an answer too late.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import stripe

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


def _missing(kind: str) -> tuple[int, dict]:
    return 404, {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such {kind}",
        }
    }


class FakeStripe:
    def __init__(self):
        self.sessions: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.requests: list[dict] = []
        self.faults: list[str] = []
        self.stall_seconds = 1.0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict) -> None:
                fault = fake.faults.pop(0) if fake.faults else None
                if fault == "stall":
                    # Handled, but the answer comes later than the client waits.
                    time.sleep(fake.stall_seconds)
                if fault == "close":
                    # The request was handled but the connection drops before the
                    # answer, as a reset or a timeout on the way back does.
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "unauthorized":
                    # A revoked or mistyped secret key.
                    status, body = (
                        401,
                        {
                            "error": {
                                "type": "invalid_request_error",
                                "message": "Invalid API Key provided: sk_test_****fake",
                            }
                        },
                    )
                data = json.dumps(body).encode()
                if fault == "garbage":
                    # What a proxy or a cut-off response hands the SDK: status 200, no JSON.
                    data = b"<html><body>upstream sent an invalid response</body></html>"
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
                self._reply(*fake.create_session(form, self.headers.get("Idempotency-Key")))

            def do_GET(self):
                fake.requests.append(
                    {"method": "GET", "path": self.path, "headers": dict(self.headers)}
                )
                self._reply(*fake.get(self.path))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeStripe:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, *faults: str) -> None:
        """The next answers fail, one fault each: "garbage", "close", "stall", "unauthorized"."""
        self.faults.extend(faults)

    def get(self, target: str) -> tuple[int, dict]:
        url = urlsplit(target)
        if url.path == "/v1/checkout/sessions":
            # Stripe lists sessions newest first and filters them by payment intent:
            # the documented way back from a charge to the Checkout Session that made it.
            query = dict(parse_qsl(url.query))
            found = [
                session
                for session in reversed(self.sessions.values())
                if "payment_intent" not in query
                or session["payment_intent"] == query["payment_intent"]
            ]
            limit = int(query.get("limit", 10))
            return 200, {
                "object": "list",
                "url": "/v1/checkout/sessions",
                "has_more": len(found) > limit,
                "data": [self._public(session) for session in found[:limit]],
            }
        stores = {
            "checkout/sessions": (self.sessions, "checkout.session"),
            "payment_intents": (self.payment_intents, "payment_intent"),
            "charges": (self.charges, "charge"),
        }
        match = re.fullmatch(r"/v1/([\w/]+)/([\w-]+)", url.path)
        store, kind = stores.get(match.group(1), ({}, "object")) if match else ({}, "object")
        found = store.get(match.group(2)) if match else None
        return (200, self._public(found)) if found else _missing(kind)

    def create_session(self, form: dict, idempotency_key: str | None) -> tuple[int, dict]:
        with self.lock:
            # Stripe keeps the first answer to an idempotency key and replays it.
            if idempotency_key and idempotency_key in self.by_idempotency_key:
                return 200, self._public(self.sessions[self.by_idempotency_key[idempotency_key]])
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
                # Since API version 2022-08-01 a payment-mode session has no payment
                # intent until the buyer confirms: nothing earlier can name it.
                "payment_intent": None,
                "success_url": form["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id),
                "url": f"{self.url}/pay/{session_id}",
                "_payment_intent_metadata": (form.get("payment_intent_data") or {}).get(
                    "metadata", {}
                ),
            }
            self.sessions[session_id] = session
            if idempotency_key:
                self.by_idempotency_key[idempotency_key] = session_id
            return 200, self._public(session)

    @staticmethod
    def _public(obj: dict) -> dict:
        return {key: value for key, value in obj.items() if not key.startswith("_")}

    def _confirm(self, session_id: str, payment_status: str) -> dict:
        session = self.sessions[session_id]
        intent_id = f"pi_{session_id[8:]}"
        charge_id = f"ch_{session_id[8:]}"
        self.payment_intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "currency": session["currency"],
            "status": "succeeded" if payment_status == "paid" else "processing",
            "latest_charge": charge_id,
            "metadata": session["_payment_intent_metadata"],
        }
        # A charge carries its payment intent, never the Checkout Session; the
        # session's metadata is not copied onto it either.
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": session["amount_total"],
            "amount_refunded": 0,
            "refunded": False,
            "disputed": False,
            "currency": session["currency"],
            "paid": payment_status == "paid",
            "payment_intent": intent_id,
            "metadata": {},
        }
        session.update(status="complete", payment_status=payment_status, payment_intent=intent_id)
        return self._public(session)

    def pay(self, session_id: str) -> dict:
        """The buyer pays by card: the session completes, paid, with its payment intent."""
        with self.lock:
            return self._confirm(session_id, "paid")

    def pay_later(self, session_id: str) -> dict:
        """The buyer chooses a delayed method (a bank debit): complete, still unpaid."""
        with self.lock:
            return self._confirm(session_id, "unpaid")

    def clear(self, session_id: str) -> dict:
        """A delayed payment clears (checkout.session.async_payment_succeeded)."""
        with self.lock:
            session = self.sessions[session_id]
            session["payment_status"] = "paid"
            self.payment_intents[session["payment_intent"]]["status"] = "succeeded"
            self.charges[self.payment_intents[session["payment_intent"]]["latest_charge"]][
                "paid"
            ] = True
            return self._public(session)

    def _charge_of(self, session_id: str) -> dict:
        intent = self.payment_intents[self.sessions[session_id]["payment_intent"]]
        return self.charges[intent["latest_charge"]]

    def refund(self, session_id: str, amount: int) -> dict:
        """Refund part of a paid session's charge; the charge.refunded object comes back.

        `amount_refunded` is the charge's running total, as Stripe reports it.
        """
        with self.lock:
            charge = self._charge_of(session_id)
            charge["amount_refunded"] = min(charge["amount"], charge["amount_refunded"] + amount)
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            return copy.deepcopy(charge)

    def dispute(self, session_id: str) -> dict:
        """The card holder disputes the charge; the charge.dispute.created object comes back."""
        with self.lock:
            charge = self._charge_of(session_id)
            charge["disputed"] = True
            dispute_id = f"dp_{next(_ids)}"
            self.disputes[dispute_id] = {
                "id": dispute_id,
                "object": "dispute",
                "amount": charge["amount"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "reason": "fraudulent",
                "status": "needs_response",
            }
            return copy.deepcopy(self.disputes[dispute_id])


def stripe_event(event_type: str, obj: dict, *, event_id: str | None = None) -> stripe.Event:
    """One event as the SDK itself models it. A retry of a delivery keeps its event id."""
    return stripe.Event.construct_from(
        {
            "id": event_id or f"evt_{next(_ids)}",
            "object": "event",
            "api_version": "2025-03-31.basil",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": copy.deepcopy(obj)},
        },
        None,
    )


def signed_event(
    event_type: str, obj: dict, secret: str, *, event_id: str | None = None, timestamp=None
) -> tuple[str, str]:
    """(body, Stripe-Signature header) for one webhook delivery."""
    body = json.dumps(stripe_event(event_type, obj, event_id=event_id).to_dict(for_json=True))
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return body, header
