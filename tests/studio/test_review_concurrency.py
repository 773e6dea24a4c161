"""A delivery's download limit under clients racing for the last downloads.

Real concurrent transactions, one database connection per thread (hence
`transaction=True`); run it on PostgreSQL with DATABASE_URL as well.
"""

import pytest

from generation.models import Project
from studio.models import ReviewEvent, ReviewLink
from studio.review.services import ReviewRefused, review_download_claim, review_link_create
from tests.billing.test_concurrency import run_threads
from tests.gallery.conftest import fund, render_all, submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_twelve_clients_racing_for_three_downloads_get_exactly_three(team, owner):
    fund(team, owner)
    project = Project.objects.create(team=team, name="Race", created_by=owner)
    batch = submit(team, owner, project, count=1)
    render_all()
    link, _ = review_link_create(
        team=team, created_by=owner, title="Finals", kind="delivery", download_limit=3,
        generation_ids=list(batch.generations.values_list("pk", flat=True)),
    )  # fmt: skip

    def claim(i):
        try:
            review_download_claim(link=link, client_name=f"client {i}")
            return "downloaded"
        except ReviewRefused as refused:
            return refused.status

    results = run_threads(12, claim)
    assert sorted(results, key=str) == [403] * 9 + ["downloaded"] * 3
    assert ReviewLink.objects.get(pk=link.pk).downloads == 3
    assert ReviewEvent.objects.filter(link=link, kind="download").count() == 3
