"""Running a campaign: permutations into batches, its budget, pause and resume, CSV import."""

import time

import pytest

from billing.selectors import wallet_balance
from generation.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_pause,
    campaign_progress,
    campaign_resume,
    parse_campaign_csv,
    parse_permutation_request,
    permutations_submit,
)
from generation.models import Batch, Generation, Status
from generation.requests import InvalidRequest
from generation.services import SubmitRefused

from .conftest import fund, render_all

FLASH_1K = 67
FORM = {"prompt": "{red|blue|green} teapot on {linen|marble|slate|oak}", "tier": "flash",
        "size": "1K", "aspect": "1:1", "count": "1"}  # fmt: skip


def submit(team, member, campaign=None, **fields):
    request = parse_permutation_request({**FORM, **fields})
    return permutations_submit(team=team, member=member, requests=[request], campaign=campaign)


def test_a_permutation_prompt_becomes_one_batch_per_fifty_images(team, owner):
    fund(team, owner)
    batches = submit(team, owner, count="5")  # 12 variants × 5 = 60 images
    assert [b.count for b in batches] == [50, 10]
    first = Generation.objects.filter(batch=batches[0]).order_by("index").first()
    assert first.prompt == "red teapot on linen"
    assert first.axes == {"choice 1": "red", "choice 2": "linen"}
    assert batches[0].prompt == FORM["prompt"]
    assert wallet_balance(team)[1] == 60 * FLASH_1K


def test_each_size_is_its_own_batch_priced_at_its_size(team, owner):
    fund(team, owner)
    batches = submit(team, owner, prompt="a fox", sizes="512, 1K", aspects="1:1 4:5 9:16")
    assert sorted((b.size, b.count) for b in batches) == [("1K", 3), ("512", 3)]
    aspects = set(Generation.objects.filter(batch__in=batches).values_list("aspect", flat=True))
    assert aspects == {"1:1", "4:5", "9:16"}


def test_a_campaign_over_its_budget_is_refused_and_nothing_is_held(team, owner):
    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=12 * FLASH_1K)
    submit(team, owner, campaign)  # 12 images: exactly the budget
    held = wallet_balance(team)
    with pytest.raises(SubmitRefused) as refused:
        submit(team, owner, campaign, prompt="one more teapot")
    assert refused.value.code == "credits" and "has 0 of its 804 left" in refused.value.message
    assert wallet_balance(team) == held
    assert Batch.objects.filter(campaign=campaign).count() == 1


def test_progress_counts_images_and_credits_across_batches(team, owner):
    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    submit(team, owner, campaign, count="5")
    render_all()
    progress = campaign_progress(campaign)
    assert (progress.done, progress.total, progress.batches) == (60, 60, 2)
    assert progress.spending.spent == 60 * FLASH_1K and progress.spending.held == 0
    assert progress.spending.left == 10_000 - 60 * FLASH_1K
    assert progress.state == "finished"


def test_a_paused_campaign_stays_queued_until_resumed(team, owner):
    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    submit(team, owner, campaign)
    plain = submit(team, owner, prompt="{a|b} owl")
    campaign_pause(campaign=campaign)
    render_all()
    # The lane ran the other grid and skipped the paused campaign's jobs.
    assert set(Generation.objects.filter(batch__in=plain).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    assert campaign_progress(campaign).queued == 12
    campaign_resume(campaign=campaign)
    render_all()
    assert campaign_progress(campaign).done == 12


def test_canceling_a_campaign_releases_every_queued_image(team, owner):
    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    submit(team, owner, campaign, count="5")
    assert campaign_cancel(campaign=campaign) == 60
    assert wallet_balance(team)[1] == 0
    with pytest.raises(SubmitRefused):
        submit(team, owner, campaign)


def test_campaign_names_and_budgets_are_checked(team, owner):
    campaign_create(team=team, member=owner, name="Teapots", budget="1,000")
    with pytest.raises(InvalidRequest) as refused:
        campaign_create(team=team, member=owner, name="Teapots", budget="ten")
    assert set(refused.value.errors) == {"budget"}
    with pytest.raises(InvalidRequest) as refused:
        campaign_create(team=team, member=owner, name="Teapots", budget=5)
    assert "already has a campaign" in refused.value.errors["name"]


DEFAULTS = {"tier": "flash", "size": "1K", "aspect": "1:1", "count": "1"}


def test_a_csv_becomes_one_request_per_row():
    data = (
        b"prompt,size,aspect,seed,count\n"
        b"a red fox,,,,\n"
        b"a {grey|white} owl,512,9:16,42,2\n"
        b"\n"
        b'"a bear, asleep",2K,,,3\n'
    )
    requests = parse_campaign_csv(data, DEFAULTS)
    assert [r.total for r in requests] == [1, 4, 3]
    owl = requests[1]
    assert (owl.base.size, owl.base.aspect, owl.base.seed, owl.base.seed_locked) == (
        "512", "9:16", 42, True
    )  # fmt: skip
    assert requests[2].variants[0].prompt == "a bear, asleep"


def test_a_csv_with_bad_rows_names_each_line_and_nothing_is_made(team, owner):
    data = (
        b"prompt,size,aspect,seed,count\n"
        b"a red fox,,,,\n"
        b"a {grey|white owl,,,,\n"
        b",1K,,,\n"
        b"a bear,9K,7:3,,\n"
    )
    with pytest.raises(InvalidRequest) as refused:
        parse_campaign_csv(data, DEFAULTS)
    message = refused.value.errors["csv"]
    assert "Line 3:" in message and "never closed" in message
    assert "Line 4: Write a prompt first." in message
    assert "Line 5:" in message and "9K" not in message and "renders at" in message
    assert "Line 2" not in message
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "data, words",
    [
        (b"size,aspect\n1K,1:1\n", "“prompt” column"),
        (b"prompt,style\nfox,noir\n", "Unknown column “style”"),
        (b"prompt\n", "no prompts"),
        ("prompt\nrenard\n".encode("utf-16"), "not UTF-8"),
    ],
)
def test_a_csv_of_the_wrong_shape_is_refused(data, words):
    with pytest.raises(InvalidRequest) as refused:
        parse_campaign_csv(data, DEFAULTS)
    assert words in refused.value.errors["csv"]


@pytest.mark.slow
def test_pause_and_resume_with_real_lane_workers(team, owner, lane_workers, monkeypatch):
    from generation import lanes

    # Twelve images count as a large submit here: a worker fans their tokens out.
    monkeypatch.setattr(lanes, "FAN_OUT_AT", 5)
    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    campaign_pause(campaign=campaign)
    submit(team, owner, campaign)
    lane_workers.start("flash")
    # Every token is taken and finds nothing it may run.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and lanes_queue_length():
        time.sleep(0.2)
    time.sleep(1)
    assert campaign_progress(campaign).queued == 12
    assert lanes.fairest_queued("flash") is None
    campaign_resume(campaign=campaign)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and campaign_progress(campaign).done < 12:
        time.sleep(0.3)
    progress = campaign_progress(campaign)
    assert progress.done == 12 and progress.spending.spent == 12 * FLASH_1K
    assert wallet_balance(team)[1] == 0


@pytest.mark.slow
def test_a_large_submit_is_fanned_out_by_a_worker_and_renders(team, owner, lane_workers,
                                                               monkeypatch):  # fmt: skip
    from generation import lanes

    monkeypatch.setattr(lanes, "FAN_OUT_AT", 5)
    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    submit(team, owner, campaign)
    # The request sent one message, not twelve tokens.
    assert lanes_queue_length() == 1
    lane_workers.start("flash")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and campaign_progress(campaign).done < 12:
        time.sleep(0.3)
    assert campaign_progress(campaign).done == 12
    assert "generation.tasks.fan_out" in (lane_workers.log_dir / "worker-flash.log").read_text()


def lanes_queue_length() -> int:
    from studio.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen("flash")


# --- the pages ----------------------------------------------------------------------


def test_members_see_a_campaign_and_strangers_do_not(team, owner, teammate, stranger, client_for):
    from django.urls import reverse

    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    submit(team, owner, campaign)
    url = reverse("campaign", args=[team.slug, campaign.pk])
    page = client_for(teammate).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert '0</strong> of <span class="total">12' in html and "804</span> held" in html
    # The 3 × 4 permutation is drawn as a table named by its values.
    assert 'data-rows="3" data-columns="4"' in html and '<th scope="row">green</th>' in html
    assert client_for(stranger).get(url).status_code == 404
    listing = client_for(teammate).get(reverse("campaigns", args=[team.slug])).content.decode()
    assert "Teapots" in listing and "0 of 12" in listing


def test_only_the_starter_or_a_manager_pauses_a_campaign(team, owner, teammate, client_for):
    from django.urls import reverse

    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    url = reverse("campaign-pause", args=[team.slug, campaign.pk])
    assert client_for(teammate).post(url).status_code == 403
    assert client_for(owner).post(url).status_code == 302
    campaign.refresh_from_db()
    assert campaign.paused_at is not None
    client_for(owner).post(reverse("campaign-resume", args=[team.slug, campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.paused_at is None


def test_a_submit_past_the_budget_answers_402_and_holds_nothing(team, owner, client_for):
    from django.urls import reverse

    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=100)
    url = reverse("campaign-submit", args=[team.slug, campaign.pk])
    response = client_for(owner).post(url, {**FORM, "action": "prompt"})
    assert response.status_code == 402
    assert "has 100 of its 100 left" in response.content.decode()
    assert wallet_balance(team)[1] == 0 and not Batch.objects.exists()


def test_a_csv_upload_with_a_bad_row_answers_400_naming_it(team, owner, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    url = reverse("campaign-submit", args=[team.slug, campaign.pk])
    bad = SimpleUploadedFile("p.csv", b"prompt,count\nfox,2\nowl,zero\n", "text/csv")
    response = client_for(owner).post(url, {**FORM, "action": "csv", "csv": bad})
    assert response.status_code == 400 and "Line 3:" in response.content.decode()
    good = SimpleUploadedFile("p.csv", b"prompt,count\nfox,2\nowl,3\n", "text/csv")
    response = client_for(owner).post(url, {**FORM, "action": "csv", "csv": good})
    assert response.status_code == 302
    assert campaign_progress(campaign).total == 5


def test_the_matrix_reads_axes_in_the_prompts_order_whatever_order_the_keys_come_back():
    """PostgreSQL's jsonb returns an object's keys shortest first ("seed" before "choice 1")."""
    from types import SimpleNamespace

    from studio.templatetags.matrix import matrix_of

    tiles = [
        SimpleNamespace(axes={"seed": "7", "aspect": a, "choice 2": m, "choice 1": c})
        for c in ("red", "blue") for m in ("linen", "oak") for a in ("1:1", "4:5")
    ]  # fmt: skip
    matrix = matrix_of(tiles)
    assert (matrix.row_axis, matrix.column_axis) == ("choice 1", "choice 2")
    assert matrix.rows == ["red", "blue"] and matrix.columns == ["linen", "oak"]


def test_the_composer_prices_and_submits_a_permutation(team, owner, client_for):
    from django.urls import reverse

    from generation.models import Project

    fund(team, owner)
    project = Project.objects.create(team=team, name="Spring", created_by=owner)
    fields = {**FORM, "aspects": "1:1, 4:5, 9:16", "prompt": "{red|blue} teapot"}
    price = client_for(owner).get(reverse("composer-price", args=[team.slug]), fields)
    assert "6 prompts → 6 × Flash" in price.content.decode()
    assert f"= {6 * FLASH_1K} credits" in price.content.decode()
    bad = client_for(owner).get(reverse("composer-price", args=[team.slug]),
                                {**fields, "prompt": "{red|blue teapot"})  # fmt: skip
    assert "position 1" in bad.content.decode()
    response = client_for(owner).post(
        reverse("batch-submit", args=[team.slug, project.pk]), fields, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert Generation.objects.filter(batch__project=project).count() == 6
    html = response.content.decode()
    assert 'data-rows="2" data-columns="3"' in html and '<th scope="col">9:16</th>' in html


def test_the_progress_panel_polls_until_the_campaign_is_finished(team, owner, client_for):
    from django.urls import reverse

    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=10_000)
    submit(team, owner, campaign)
    url = reverse("campaign", args=[team.slug, campaign.pk])
    panel = client_for(owner).get(url, HTTP_HX_REQUEST="true").content.decode()
    assert panel.lstrip().startswith('<dl class="campaign-progress') and "every 2s" in panel
    render_all()
    panel = client_for(owner).get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "12</strong> of" in panel and "every 2s" not in panel
