"""Gallery fixtures: a funded team with a project and finished grids rendered in-process."""

import pytest

from billing.services import wallet_top_up
from generation.models import Project
from generation.rendering import lane_run
from generation.requests import parse_batch_request
from generation.services import batch_submit

FUNDS = 200_000


def fund(team, actor, amount=FUNDS, key="gallery-test"):
    wallet_top_up(team=team, amount=amount, actor=actor, note="test", idempotency_key=key)


def submit(team, member, project, **fields):
    data = {"prompt": "ceramic teapot on linen", "tier": "flash", "size": "1K",
            "aspect": "4:3", "count": 3, **fields}  # fmt: skip
    return batch_submit(
        team=team, member=member, request=parse_batch_request(data), project=project
    )


def render_all(lane="flash"):
    """Run the lane's queued jobs in this process (the offline renderer, no workers)."""
    while lane_run(lane):
        pass


@pytest.fixture
def project(team, owner):
    fund(team, owner)
    return Project.objects.create(team=team, name="Spring campaign", created_by=owner)


@pytest.fixture
def grid(team, owner, project):
    batch = submit(team, owner, project, seed=500)
    render_all()
    return batch
