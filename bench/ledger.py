"""B8: the ledger under 16 concurrent clients, against a plain single-row update.

Sixteen separate processes (like sixteen web or worker processes) all hit
one team's wallet: the worst case for the row lock / write lock. Afterwards
the ledger must reconcile and every hold the clients counted must be there
and captured: no lost update.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .stats import Figure, Row, ratio_text, verdict

CLIENTS = 16
SECONDS = 2.5
GAP = 0.5


def b8_ledger(ctx, rounds: int = 3) -> list[Row]:
    from billing.models import Hold, Wallet
    from billing.selectors import wallet_balance, wallets_reconcile
    from billing.services import unit_price, wallet_for
    from studio.services import team_create

    studio = ctx.studio
    counter_wallet = wallet_for(team_create(name="Bench counter", owner=studio.teammate))
    counter_before = counter_wallet.low_balance_threshold
    available_before, held_before = wallet_balance(studio.team)
    holds_before = Hold.objects.count()
    modes = ",".join(["plain", "ledger"] * rounds)
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ledger_client",
                str(studio.team.pk),
                str(studio.owner.pk),
                str(counter_wallet.pk),
                str(i),
                str(SECONDS),
                str(GAP),
                modes,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(CLIENTS)
    ]
    try:
        for client in clients:
            if client.stdout.readline().strip() != "ready":
                raise RuntimeError("a ledger client did not start")
        start = time.time() + 0.5
        for client in clients:
            client.stdin.write(f"{start}\n")
            client.stdin.flush()
        reports = [json.loads(client.stdout.readline()) for client in clients]
    finally:
        for client in clients:
            client.wait(timeout=60)
    slots = list(zip(*reports, strict=True))  # one tuple of client reports per window
    rates = {"plain": [], "ledger": []}
    calls = {"plain": 0, "ledger": 0}
    for slot, window in enumerate(slots):
        mode = window[0]["mode"]
        window_start = start + slot * (SECONDS + GAP)
        elapsed = max(r["end"] for r in window) - window_start
        rates[mode].append(sum(r["ops"] for r in window) / elapsed)
        calls[mode] += sum(r["calls"] for r in window)

    # No lost update: the counter saw every plain update, the wallet moved by
    # exactly the captured holds, nothing is left held, and the ledger agrees.
    counter = Wallet.objects.get(pk=counter_wallet.pk).low_balance_threshold - counter_before
    price = unit_price(tier="flash", size="512")
    available, held = wallet_balance(studio.team)
    holds = Hold.objects.count() - holds_before
    problems = []
    if counter != calls["plain"]:
        problems.append(f"counter {counter} ≠ {calls['plain']} updates")
    if holds != calls["ledger"]:
        problems.append(f"{holds} holds ≠ {calls['ledger']} made")
    if available_before - available != calls["ledger"] * price or held != held_before:
        problems.append("wallet moved by other than the captured holds")
    if not all(check.ok for check in wallets_reconcile()):
        problems.append("reconcile failed")

    ours, base = Figure.of(rates["ledger"], "ops/s", 0), Figure.of(rates["plain"], "ops/s", 0)
    ratio = ours.median / base.median
    consistent = "no lost update, reconcile passes" if not problems else "; ".join(problems)
    return [
        Row(
            "B8",
            f"ledger: holds + captures per second, {CLIENTS} client processes, one wallet "
            f"({calls['ledger']} hold+capture pairs; {consistent})",
            str(ours),
            f"{base} plain single-row UPDATE (ORM)",
            ratio_text(ratio),
            "≥ 0.3× and no lost update",
            verdict(ratio >= 0.3 and not problems),
        )
    ]
