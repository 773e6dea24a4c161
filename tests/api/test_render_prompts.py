"""The render_prompts command: a file of prompts in, grids rendered by real workers, PNGs out."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation.imaging import read_metadata
from generation.models import Batch, Generation, Project
from studio.management.commands.render_prompts import read_prompts

from .conftest import fund, render_all


def run(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    call_command("render_prompts", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def prompts_file(tmp_path: Path, text: str, name="spring.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_or_blank_line_separated_blocks():
    assert read_prompts("a fox\n# a comment\n  a hare  \n\n") == ["a fox", "a hare"]
    text = "a castle on a hill,\nat dusk\n\n# skip\na lighthouse\nin fog\n"
    assert read_prompts(text) == ["a castle on a hill,\nat dusk", "a lighthouse\nin fog"]
    assert read_prompts("\n# nothing\n\n") == []


@pytest.mark.django_db
def test_every_prompt_is_checked_before_anything_is_submitted(owner, team, tmp_path):
    fund(team, owner)
    path = prompts_file(tmp_path, "a fox\n" + "x" * 10_001 + "\n")
    with pytest.raises(CommandError) as refused:
        run(path, team=team.slug, user="olivia", tier="flash", size="3K", count=4, wait=False)
    message = str(refused.value)
    assert "Nothing was submitted" in message
    assert "prompt 2: The prompt is 10,001 characters" in message
    assert "--size: Flash renders at 512, 1K, 2K, 4K." in message
    assert not Batch.objects.exists()


@pytest.mark.django_db
def test_only_members_of_the_team_can_submit(owner, stranger, team, tmp_path):
    path = prompts_file(tmp_path, "a fox\n")
    with pytest.raises(CommandError, match="not a member"):
        run(path, team=team.slug, user="sam", wait=False)
    with pytest.raises(CommandError, match="no team"):
        run(path, team="nowhere", user="olivia", wait=False)
    assert not Batch.objects.exists()


@pytest.mark.django_db
def test_a_credit_refusal_is_printed_in_words_and_stops_the_run(owner, team, tmp_path):
    fund(team, owner, amount=67 * 4 + 10)  # enough for one grid of four Flash 1K images
    path = prompts_file(tmp_path, "a fox\na hare\na stoat\n")
    with pytest.raises(CommandError) as refused:
        run(path, team=team.slug, user="olivia", size="1K", count=4, wait=False)
    message = str(refused.value)
    assert message.startswith("Submitted 1 of 3 grids; grid 2 was refused:")
    assert "credits" in message
    assert Batch.objects.count() == 1


@pytest.mark.django_db
def test_no_wait_submits_into_a_project_named_after_the_file(owner, team, tmp_path):
    fund(team, owner)
    path = prompts_file(tmp_path, "a fox\na hare\n", name="woodland.txt")
    out, _ = run(path, team=team.slug, user="olivia", count=3, aspect="16:9", wait=False)
    project = Project.objects.get(team=team, name="woodland")
    batches = list(Batch.objects.order_by("pk"))
    assert [b.prompt for b in batches] == ["a fox", "a hare"]
    assert all(b.project == project and b.count == 3 and b.aspect == "16:9" for b in batches)
    assert f"batches {batches[0].pk}, {batches[1].pk}" in out
    # A second run files into the same project.
    run(path, team=team.slug, user="olivia", count=1, wait=False)
    assert Project.objects.filter(team=team, name="woodland").count() == 1


@pytest.mark.django_db
def test_waits_and_downloads_in_process(owner, team, tmp_path, monkeypatch):
    """The waiting loop and the download, with the lane run in this process."""
    fund(team, owner)
    path = prompts_file(tmp_path, "a fox\n")
    monkeypatch.setattr("time.sleep", lambda seconds: render_all())
    out, err = run(path, team=team.slug, user="olivia", count=2, out=tmp_path / "renders")
    assert "2/2 finished · 2 done · 0 failed" in err
    assert "Downloaded 2 images" in out


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_end_to_end_with_real_workers(owner, team, tmp_path, both_lanes):
    fund(team, owner)
    text = "a paper boat on a pond\n\na brass lamp,\nwarm light\n"
    path = prompts_file(tmp_path, text, name="stills.txt")
    renders = tmp_path / "renders"
    out, err = run(
        path, team=team.slug, user="olivia", tier="flash", size="512", aspect="16:9",
        count=3, seed=1000, out=renders, poll=0.2, timeout=120,
    )  # fmt: skip
    assert "Downloaded 6 images" in out, out
    # The progress bar on stderr ends complete.
    assert err.strip().splitlines()[-1].endswith("6/6 finished · 6 done · 0 failed · 0 waiting")
    batches = list(Batch.objects.order_by("pk"))
    assert len(batches) == 2
    folders = sorted(p for p in renders.iterdir())
    assert [f.name for f in folders] == [
        f"{batches[0].pk}-a-paper-boat-on-a-pond",
        f"{batches[1].pk}-a-brass-lamp-warm-light",
    ]
    for batch, folder in zip(batches, folders, strict=True):
        description = json.loads((folder / "batch.json").read_text())
        assert description["prompt"] == batch.prompt and len(description["images"]) == 3
        for entry in description["images"]:
            generation = Generation.objects.get(pk=entry["id"])
            png = (folder / entry["file"]).read_bytes()
            meta = read_metadata(png)
            assert meta["seed"] == generation.seed == entry["seed"]
            assert meta["prompt"] == batch.prompt and meta["tier"] == "flash"
            assert meta["size"] == "512" and meta["aspect"] == "16:9"
            assert entry["file"].endswith(f"_seed{generation.seed}_flash-512_{generation.pk}.png")
    assert sorted(Generation.objects.values_list("seed", flat=True)) == [
        1000, 1000, 1001, 1001, 1002, 1002,
    ]  # fmt: skip


@pytest.mark.django_db
def test_prompts_with_choices_go_into_a_campaign_under_its_budget(owner, team, tmp_path):
    from generation.campaigns import campaign_create

    fund(team, owner)
    campaign = campaign_create(team=team, member=owner, name="Teapots", budget=2_000)
    path = prompts_file(tmp_path, "{red|blue|green} teapot on {linen|marble}\na fox\n")
    out, _ = run(str(path), "--team", team.slug, "--user", owner.username, "--count", "1",
                 "--campaign", "Teapots", "--no-wait")  # fmt: skip
    assert "(7 images)" in out
    assert Generation.objects.filter(batch__campaign=campaign).count() == 7
    # Past the budget: nothing more is submitted, and the command says why.
    with pytest.raises(CommandError) as refused:
        run(str(path), "--team", team.slug, "--user", owner.username, "--count", "5",
            "--campaign", "Teapots", "--no-wait")  # fmt: skip
    assert "left" in str(refused.value) and campaign.batches.count() == 2
    with pytest.raises(CommandError, match="no campaign “Nope”"):
        run(str(path), "--team", team.slug, "--user", owner.username, "--campaign", "Nope")


@pytest.mark.django_db
def test_a_campaign_run_downloads_each_image_with_its_axes(owner, team, tmp_path, monkeypatch):
    from generation.campaigns import campaign_create

    fund(team, owner)
    campaign_create(team=team, member=owner, name="Teapots", budget=2_000)
    monkeypatch.setattr(
        "studio.management.commands.render_prompts.Command._wait",
        lambda self, batches, options: render_all() or True,
    )
    path = prompts_file(tmp_path, "{red|blue} teapot\n")
    run(str(path), "--team", team.slug, "--user", owner.username, "--count", "1",
        "--campaign", "Teapots", "--out", str(tmp_path / "out"))  # fmt: skip
    described = json.loads(next((tmp_path / "out").glob("*/batch.json")).read_text())
    assert [i["axes"] for i in described["images"]] == [{"choice 1": "red"}, {"choice 1": "blue"}]
    assert all(i["file"] for i in described["images"])
