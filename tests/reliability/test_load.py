"""Load: 8 members submit grids and promotions for 60 s against the running studio.

A live server (real HTTP), real workers of both lanes, the offline renderer.
Each simulated member behaves like a person: submit a grid, watch it through
the poll fragment until it is done, sometimes promote a winner, repeat.
"""

from __future__ import annotations

import random
import re
import statistics
import threading
import time

import httpx
import pytest
from django.db import connection

from generation import lanes
from generation.models import Batch, Generation, Project, Status
from studio.models import Membership, Role
from tests.conftest import make_user

from .conftest import assert_books_balance, assert_every_job_settled, fund, wait_until_finished

DURATION = 60.0
MEMBERS = 8


def session_cookie(user) -> dict[str, str]:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


class Member(threading.Thread):
    def __init__(self, *, base, user, team, project, stop_at, seed):
        super().__init__(daemon=True)
        self.base, self.user, self.team, self.project = base, user, team, project
        self.stop_at = stop_at
        self.random = random.Random(seed)
        self.latencies: list[float] = []
        self.statuses: list[tuple[str, int]] = []
        self.batches: list[int] = []
        self.error: BaseException | None = None

    def run(self):
        try:
            self._run()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error
        finally:
            connection.close()  # this thread's database connection

    def _post(self, http, path, data):
        started = time.perf_counter()
        response = http.post(path, data=data, headers={"X-CSRFToken": http.cookies["csrftoken"]})
        self.latencies.append(time.perf_counter() - started)
        self.statuses.append((path, response.status_code))
        match = re.search(r"#grid-(\d+)", response.headers.get("location", ""))
        if match:
            self.batches.append(int(match.group(1)))
            return int(match.group(1))
        return None

    def _watch(self, http, batch_id, limit=15.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < min(deadline, self.stop_at + 5):
            response = http.get(f"/t/{self.team.slug}/batches/{batch_id}/poll/")
            self.statuses.append(("poll", response.status_code))
            if response.status_code == 286:
                return True
            time.sleep(0.5)
        return False

    def _run(self):
        slug = self.team.slug
        with httpx.Client(
            base_url=self.base, cookies=session_cookie(self.user), timeout=60
        ) as http:
            page = http.get(f"/t/{slug}/projects/{self.project.pk}/")
            self.statuses.append(("project", page.status_code))
            if "csrftoken" not in http.cookies:
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
                http.cookies.set("csrftoken", token.group(1))
            n = 0
            while time.monotonic() < self.stop_at:
                n += 1
                grid = {
                    "prompt": f"load test {self.user.username} take {n}",
                    "tier": "flash", "size": self.random.choice(["512", "1K"]),
                    "aspect": self.random.choice(["1:1", "16:9", "3:4"]),
                    "count": str(self.random.randint(2, 4)),
                }  # fmt: skip
                batch_id = self._post(http, f"/t/{slug}/projects/{self.project.pk}/submit/", grid)
                if batch_id is None or not self._watch(http, batch_id):
                    continue
                if self.random.random() < 0.35 and time.monotonic() < self.stop_at:
                    winner = (
                        Generation.objects.filter(batch_id=batch_id, status=Status.SUCCEEDED)
                        .values_list("pk", flat=True)
                        .first()
                    )
                    if winner:
                        promoted = self._post(
                            http,
                            f"/t/{slug}/selection/promote/go/",
                            {"ids": [winner], "size": "2K"},
                        )
                        if promoted:
                            self._watch(http, promoted, limit=20.0)
                time.sleep(self.random.uniform(0.2, 0.8))


@pytest.mark.slow
def test_eight_members_for_a_minute(owner, team, stranger, both_lanes, live_server, settings):
    settings.SUBMITS_PER_MINUTE = 1000
    teams = [team, stranger.teams.get()]
    for t, actor in zip(teams, (owner, stranger), strict=True):
        fund(t, actor, amount=5_000_000)
    users = []
    for i in range(MEMBERS):
        user = make_user(f"member{i}")
        Membership.objects.create(team=teams[i % 2], user=user, role=Role.MEMBER)
        users.append(user)
    projects = {t.pk: Project.objects.create(team=t, name="Load", created_by=owner) for t in teams}

    started = time.monotonic()
    stop_at = started + DURATION
    members = [
        Member(base=live_server.url, user=u, team=teams[i % 2], project=projects[teams[i % 2].pk],
               stop_at=stop_at, seed=i)
        for i, u in enumerate(users)
    ]  # fmt: skip
    for member in members:
        member.start()
    for member in members:
        member.join(timeout=DURATION + 60)
    window_end = time.monotonic()
    succeeded_in_window = Generation.objects.filter(status=Status.SUCCEEDED).count()

    for member in members:
        assert member.error is None, repr(member.error)
        assert not member.is_alive()
    statuses = [s for m in members for s in m.statuses]
    server_errors = [s for s in statuses if s[1] >= 500]
    assert not server_errors, server_errors[:10]
    submitted = {pk for m in members for pk in m.batches}
    assert submitted, "no batch was submitted"

    batches = list(Batch.objects.filter(pk__in=submitted))
    wait_until_finished(batches, timeout=150, sweep=True, every=1.0)
    lanes.sweep()

    # Nothing lost: every batch has all its images, each ended and settled once.
    for batch in batches:
        assert batch.generations.count() == batch.count, batch.pk
    assert not Generation.objects.filter(status__in=[Status.QUEUED, Status.RUNNING]).exists()
    assert not Generation.objects.filter(status=Status.FAILED).exists(), list(
        Generation.objects.filter(status=Status.FAILED).values_list("error", flat=True)[:3]
    )
    assert_every_job_settled(batches)
    assert_books_balance()

    latencies = sorted(latency for m in members for latency in m.latencies)
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    minutes = (window_end - started) / 60
    images = Generation.objects.filter(status=Status.SUCCEEDED).count()
    print(
        f"\nload: {MEMBERS} members, {len(submitted)} batches "
        f"({sum(1 for b in batches if b.is_promotion)} promotions), {images} images; "
        f"{succeeded_in_window / minutes:.0f} images/min during the run; "
        f"submit latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms; {len(statuses)} requests, 0 server errors"
    )
