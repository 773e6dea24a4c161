"""One B8 client process.

    python -m bench.ledger_client TEAM_ID MEMBER_ID COUNTER_WALLET INDEX SECONDS GAP MODES

It sets up Django, prints "ready", reads the shared start time (epoch) from
stdin, then runs each mode in its own time window and prints JSON counts:
`plain` is one single-row UPDATE per transaction (through the ORM, on a
wallet row of another team, a field no check reads); `ledger` is hold_place
then hold_capture of one Flash 512 image (two ledger operations).
"""

import json
import sys
import time


def main(team_id, member_id, counter_wallet_id, index, seconds, gap, modes):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.db.models import F

    from billing.models import Wallet
    from billing.services import hold_capture, hold_place
    from studio.models import Team

    team = Team.objects.get(pk=team_id)
    member = get_user_model().objects.get(pk=member_id)

    def plain(n: int) -> int:
        with transaction.atomic():
            Wallet.objects.filter(pk=counter_wallet_id).update(
                low_balance_threshold=F("low_balance_threshold") + 1
            )
        return 1

    def ledger(n: int) -> int:
        key = f"b8:{index}:{n}"
        hold = hold_place(team=team, member=member, tier="flash", size="512", count=1, key=key)
        hold_capture(hold_id=hold.pk, images=1, key=f"{key}:capture")
        return 2

    print("ready", flush=True)
    start = float(sys.stdin.readline())
    results = []
    n = 0
    for slot, mode in enumerate(modes.split(",")):
        operation = plain if mode == "plain" else ledger
        window_start = start + slot * (seconds + gap)
        window_end = window_start + seconds
        while time.time() < window_start:
            time.sleep(0.001)
        ops = calls = 0
        while time.time() < window_end:
            ops += operation(n)
            calls += 1
            n += 1
        results.append({"mode": mode, "ops": ops, "calls": calls, "end": time.time()})
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]),
        int(args[1]),
        int(args[2]),
        int(args[3]),
        float(args[4]),
        float(args[5]),
        args[6],
    )
