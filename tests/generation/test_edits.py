"""Iterating on a picked image: edit it with words, vary it, chain edits, promote the result.

Real workers of both lanes and the offline renderer where the behaviour lives
in the lanes; one in-process lane run where a test only needs an image made.
"""

import hashlib

import pytest
from django.core.files.storage import default_storage

from billing.selectors import wallet_balance, wallets_reconcile
from generation.imaging import read_metadata
from generation.models import Batch, Generation, Kind, Status
from generation.services import (
    SubmitRefused,
    generation_edit,
    generation_promote,
    generation_vary,
)
from generation.tasks import run_lane

from .test_engine import FLASH_1K, fund, submit, wait_for

PRO_2K = 134
INSTRUCTIONS = ["make the light warmer", "remove the thing on the left", "add two moons"]


def pixels(generation) -> bytes:
    return default_storage.open(generation.asset.original.name).read()


def rendered_draft(team, member, **fields):
    """One finished Flash draft, rendered in this process."""
    batch = submit(team, member, count=1, seed=42, **fields)
    assert run_lane("flash") is not None
    return batch.generations.select_related("asset").get()


def assert_books_balance():
    assert all(check.ok for check in wallets_reconcile())


# --- with real workers --------------------------------------------------------------


@pytest.mark.slow
def test_an_edit_grid_renders_each_instruction_from_the_source(owner, team, both_lanes):
    fund(team, owner)
    drafts = submit(team, owner, count=1, seed=11)
    wait_for(drafts)
    source = drafts.generations.select_related("asset").get()

    batch = generation_edit(team=team, member=owner, source=source.pk, instructions=INSTRUCTIONS)
    assert (batch.kind, batch.source_id, batch.tier, batch.size) == (
        "edit",
        source.pk,
        "flash",
        "1K",
    )
    assert wallet_balance(team) == (100_000 - 4 * FLASH_1K, 3 * FLASH_1K)
    assert wait_for(batch) == [Status.SUCCEEDED] * 3

    edits = list(batch.generations.select_related("asset"))
    assert [g.instruction for g in edits] == INSTRUCTIONS
    hashes = {hashlib.sha256(pixels(g)).hexdigest() for g in edits}
    assert len(hashes) == 3 and source.asset.sha256 not in hashes
    for edit in edits:
        assert (edit.parent_id, edit.edge, edit.chain_turns) == (source.pk, Kind.EDIT, 1)
        assert (edit.asset.width, edit.asset.height) == (source.asset.width, source.asset.height)
        meta = read_metadata(pixels(edit))
        assert meta["parent"] == source.asset.sha256 and meta["instruction"] == edit.instruction
    assert wallet_balance(team) == (100_000 - 4 * FLASH_1K, 0)
    assert_books_balance()


@pytest.mark.slow
def test_a_variation_grid_keeps_the_source_and_gets_new_seeds(owner, team, both_lanes):
    fund(team, owner)
    drafts = submit(team, owner, count=1, seed=12)
    wait_for(drafts)
    source = drafts.generations.get()

    subtle = generation_vary(team=team, member=owner, source=source.pk, strength="subtle", count=3)
    strong = generation_vary(team=team, member=owner, source=source.pk, strength="strong", count=2)
    assert wait_for(subtle) == [Status.SUCCEEDED] * 3
    assert wait_for(strong) == [Status.SUCCEEDED] * 2
    for batch, strength in ((subtle, "subtle"), (strong, "strong")):
        assert (batch.kind, batch.strength, batch.source_id) == ("variation", strength, source.pk)
        images = list(batch.generations.all())
        assert all(g.parent_id == source.pk and g.edge == Kind.VARIATION for g in images)
        assert all(g.prompt == source.prompt for g in images)
        assert len({g.seed for g in images} | {source.seed}) == len(images) + 1
    assert wallet_balance(team) == (100_000 - 6 * FLASH_1K, 0)
    assert_books_balance()


@pytest.mark.slow
def test_a_chain_of_three_edits_promoted_to_pro_keeps_its_lineage(owner, team, both_lanes):
    from generation.selectors import edit_chain, version_tree

    fund(team, owner)
    drafts = submit(team, owner, count=1, seed=13)
    wait_for(drafts)
    node = draft = drafts.generations.get()
    chain = []
    for number, words in enumerate(["make it blue", "add a sun at the top", "darker"], start=1):
        batch = generation_edit(team=team, member=owner, source=node.pk, instructions=[words])
        assert wait_for(batch) == [Status.SUCCEEDED]
        node = batch.generations.get()
        assert (node.chain_turns, node.parent_id) == (number, (chain or [draft])[-1].pk)
        chain.append(node)
    assert edit_chain(node) == chain

    promotion = generation_promote(team=team, member=owner, generation_ids=[node.pk], size="2K")
    assert promotion.kind == "promotion"
    assert wait_for(promotion, timeout=120) == [Status.SUCCEEDED]
    pro = promotion.generations.select_related("asset").get()
    assert (pro.parent_id, pro.edge) == (node.pk, Kind.PROMOTION)
    assert read_metadata(pixels(pro))["parent"] == node.asset.sha256

    # Walking up from the Pro render reaches the draft through every edit.
    lineage, walker = [], pro
    while walker.parent_id:
        walker = Generation.objects.get(pk=walker.parent_id)
        lineage.append(walker.pk)
    assert lineage == [c.pk for c in reversed(chain)] + [draft.pk]

    tree = version_tree(team=team, pk=pro.pk)
    assert tree.root.generation.pk == draft.pk
    assert [n.generation.pk for n in tree.nodes] == [draft.pk, *(c.pk for c in chain), pro.pk]
    assert [n.instruction for n in tree.nodes[1:4]] == ["make it blue", "add a sun at the top",
                                                        "darker"]  # fmt: skip
    assert wallet_balance(team) == (100_000 - 4 * FLASH_1K - PRO_2K, 0)
    assert_books_balance()


# --- the cache ----------------------------------------------------------------------


def test_an_identical_edit_is_served_from_the_cache_free(owner, team, transactional_db):
    fund(team, owner)
    source = rendered_draft(team, owner)
    first = generation_edit(team=team, member=owner, source=source.pk, instructions=["add a moon"])
    assert run_lane("flash") is not None
    spent = wallet_balance(team)
    assert spent == (100_000 - 2 * FLASH_1K, 0)

    again = generation_edit(team=team, member=owner, source=source.pk, instructions=["add a moon"])
    copy = again.generations.get()
    original = first.generations.get()
    assert copy.cached and copy.status == Status.SUCCEEDED and copy.asset_id == original.asset_id
    assert (copy.credits_held, again.credits_quoted) == (0, 0)
    assert wallet_balance(team) == spent

    # Another instruction, or a fresh render, is a new image and is paid for.
    other = generation_edit(team=team, member=owner, source=source.pk, instructions=["add a sun"])
    fresh = generation_edit(
        team=team, member=owner, source=source.pk, instructions=["add a moon"], fresh=True
    )
    assert not other.generations.get().cached and not fresh.generations.get().cached
    assert wallet_balance(team)[1] == 2 * FLASH_1K
    assert_books_balance()


def test_an_edit_of_the_same_words_in_another_chain_is_not_the_cached_one(
    owner, team, transactional_db
):
    fund(team, owner)
    source = rendered_draft(team, owner)
    generation_edit(team=team, member=owner, source=source.pk, instructions=["add a moon"])
    run_lane("flash")
    one = generation_edit(team=team, member=owner, source=source.pk, instructions=["blue"])
    run_lane("flash")
    edited = one.generations.get()
    chained = generation_edit(
        team=team, member=owner, source=edited.pk, instructions=["add a moon"]
    )
    assert not chained.generations.get().cached


# --- refusals: a clear reason, nothing held, nothing queued ------------------------------


def assert_nothing_happened(team, batches_before, generations_before):
    assert Batch.objects.count() == batches_before
    assert Generation.objects.count() == generations_before
    assert wallet_balance(team)[1] == 0


@pytest.mark.parametrize(
    ("instructions", "says"),
    [
        ([], "Write what to change"),
        (["   ", ""], "Write what to change"),
        (["x" * 10_001], "10,001 characters; the limit is 10,000"),
        (["make it red"] * 51, "51 instructions; the limit is 50"),
    ],
)
def test_bad_instructions_are_refused(owner, team, transactional_db, instructions, says):
    fund(team, owner)
    source = rendered_draft(team, owner)
    before = Batch.objects.count(), Generation.objects.count()
    with pytest.raises(SubmitRefused) as refused:
        generation_edit(team=team, member=owner, source=source.pk, instructions=instructions)
    assert says in refused.value.message and refused.value.code == "invalid"
    assert "instructions" in refused.value.errors
    assert_nothing_happened(team, *before)


def test_an_instruction_of_exactly_the_limit_is_taken(owner, team, transactional_db):
    fund(team, owner)
    source = rendered_draft(team, owner)
    batch = generation_edit(team=team, member=owner, source=source.pk, instructions=["x" * 10_000])
    assert batch.generations.get().instruction == "x" * 10_000


def test_an_unfinished_image_cannot_be_edited_or_varied(owner, team, db):
    fund(team, owner)
    queued = submit(team, owner, count=1).generations.get()
    before = Batch.objects.count(), Generation.objects.count()
    held = wallet_balance(team)[1]
    for attempt in (
        lambda: generation_edit(team=team, member=owner, source=queued.pk, instructions=["red"]),
        lambda: generation_vary(team=team, member=owner, source=queued.pk, strength="subtle"),
    ):
        with pytest.raises(SubmitRefused) as refused:
            attempt()
        assert refused.value.code == "invalid"
        assert "only finished images can be edited or varied" in refused.value.message
    assert (Batch.objects.count(), Generation.objects.count()) == before
    assert wallet_balance(team)[1] == held


def test_another_teams_image_is_not_found(owner, team, stranger, transactional_db):
    fund(team, owner)
    source = rendered_draft(team, owner)
    theirs = stranger.teams.get()
    fund(theirs, stranger)
    before = Batch.objects.count(), Generation.objects.count()
    for attempt in (
        lambda: generation_edit(
            team=theirs, member=stranger, source=source.pk, instructions=["red"]
        ),
        lambda: generation_vary(team=theirs, member=stranger, source=source.pk, strength="strong"),
        lambda: generation_edit(team=theirs, member=stranger, source="99999", instructions=["x"]),
        lambda: generation_edit(team=theirs, member=stranger, source="abc", instructions=["x"]),
    ):
        with pytest.raises(SubmitRefused) as refused:
            attempt()
        assert refused.value.code == "not_found"
    assert_nothing_happened(theirs, *before)


def test_a_chain_stops_at_its_limit_and_says_so(owner, team, transactional_db, settings):
    settings.EDIT_CHAIN_MAX_TURNS = 2
    fund(team, owner)
    node = rendered_draft(team, owner)
    for words in ("red", "add a moon"):
        batch = generation_edit(team=team, member=owner, source=node.pk, instructions=[words])
        run_lane("flash")
        node = batch.generations.get()
    before = Batch.objects.count(), Generation.objects.count()
    held = wallet_balance(team)
    with pytest.raises(SubmitRefused) as refused:
        generation_edit(team=team, member=owner, source=node.pk, instructions=["darker"])
    assert "chain of 2 edits" in refused.value.message and refused.value.code == "invalid"
    assert (Batch.objects.count(), Generation.objects.count()) == before
    assert wallet_balance(team) == held
    # A variation of the last edit starts afresh, and its edits make a new chain.
    vary = generation_vary(team=team, member=owner, source=node.pk, strength="subtle", count=1)
    run_lane("flash")
    fresh = generation_edit(
        team=team, member=owner, source=vary.generations.get().pk, instructions=["darker"]
    )
    assert fresh.generations.get().chain_turns == 1


def test_edit_settings_are_checked(owner, team, transactional_db):
    fund(team, owner)
    source = rendered_draft(team, owner, size="512")
    extreme = rendered_draft(team, owner, aspect="8:1")
    before = Batch.objects.count(), Generation.objects.count()
    cases = [
        (dict(source=source.pk, instructions=["red"], tier="ultra"), "Choose Flash or Pro."),
        (dict(source=source.pk, instructions=["red"], tier="pro", size="512"), "Pro renders at"),
        (dict(source=extreme.pk, instructions=["red"], tier="pro"), "Pro does not render 8:1"),
    ]
    for arguments, says in cases:
        with pytest.raises(SubmitRefused) as refused:
            generation_edit(team=team, member=owner, **arguments)
        assert says in refused.value.message
    for strength, count, says in (("medium", 2, "subtle or strong"), ("subtle", 0, "between 1")):
        with pytest.raises(SubmitRefused) as refused:
            generation_vary(
                team=team, member=owner, source=source.pk, strength=strength, count=count
            )
        assert says in refused.value.message
    assert_nothing_happened(team, *before)
    # A 512 draft edited on Pro renders at Pro's smallest size, priced as Pro 1K.
    pro = generation_edit(team=team, member=owner, source=source.pk, instructions=["red"],
                          tier="pro")  # fmt: skip
    assert (pro.tier, pro.size, pro.credits_quoted) == ("pro", "1K", 134)


def test_an_edit_without_credits_is_refused_with_402(owner, team, transactional_db):
    fund(team, owner, amount=FLASH_1K)
    source = rendered_draft(team, owner)
    before = Batch.objects.count(), Generation.objects.count()
    with pytest.raises(SubmitRefused) as refused:
        generation_edit(team=team, member=owner, source=source.pk, instructions=["red"])
    assert refused.value.code == "credits"
    assert_nothing_happened(team, *before)


# --- a chain on Gemini, through a real worker --------------------------------------------


@pytest.fixture
def gemini(settings):
    from tests.fakes.gemini_server import FakeGemini

    with FakeGemini() as fake:
        settings.FLASH_PROVIDER = "gemini"
        settings.GEMINI_API_BASE = fake.url
        settings.GEMINI_API_KEY = fake.api_key
        yield fake


@pytest.mark.slow
def test_a_gemini_chain_sends_back_each_turn_with_its_signature(owner, team, gemini, lane_workers):
    # `gemini` first: the workers take their provider settings when they start.
    import base64

    lane_workers.start("flash")
    fund(team, owner)
    drafts = submit(team, owner, count=1, seed=21)
    wait_for(drafts)
    node = draft = drafts.generations.select_related("asset").get()
    assert draft.status == Status.SUCCEEDED, draft.error
    chain = []
    for words in ("make the sky stormy", "add a ship", "now at night"):
        batch = generation_edit(team=team, member=owner, source=node.pk, instructions=[words])
        assert wait_for(batch) == [Status.SUCCEEDED]
        node = batch.generations.select_related("asset").get()
        chain.append(node)
    third = gemini.generate_requests()[-1].body

    assert all(g.provider == "gemini" and g.thought_signature for g in chain)
    assert len({g.thought_signature for g in chain}) == 3
    contents = third["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    texts = [c["parts"][0].get("text") for c in contents if c["role"] == "user"]
    assert texts == ["make the sky stormy", "add a ship", "now at night"]
    first_image = base64.b64decode(contents[0]["parts"][1]["inline_data"]["data"])
    assert first_image == pixels(draft)
    for content, earlier in zip((contents[1], contents[3]), chain[:2], strict=True):
        (part,) = content["parts"]
        assert part["thoughtSignature"] == earlier.thought_signature
        assert base64.b64decode(part["inline_data"]["data"]) == pixels(earlier)
    assert wallet_balance(team) == (100_000 - 4 * FLASH_1K, 0)
    assert_books_balance()


def test_the_version_tree_is_read_in_two_queries_whatever_its_size(
    owner, team, transactional_db, django_assert_num_queries
):
    from generation.selectors import version_tree

    fund(team, owner)
    draft = rendered_draft(team, owner)
    generation_edit(team=team, member=owner, source=draft.pk, instructions=["red", "blue"])
    generation_vary(team=team, member=owner, source=draft.pk, strength="strong", count=3)
    while run_lane("flash"):
        pass
    leaf = Generation.objects.filter(edge=Kind.EDIT).first()
    with django_assert_num_queries(2):
        tree = version_tree(team=team, pk=leaf.pk)
        nodes = [(n.depth, n.generation.member.username, n.generation.batch.strength)
                 for n in tree.nodes]  # fmt: skip
    assert nodes[0] == (0, "olivia", "") and len(nodes) == 6
    assert {depth for depth, _, _ in nodes[1:]} == {1}
    assert version_tree(team=team, pk=leaf.pk).current_id == leaf.pk


def test_promotions_made_before_edits_existed_join_the_tree(owner, team, transactional_db):
    import importlib

    from django.apps import apps

    from generation.selectors import version_tree

    fund(team, owner)
    draft = rendered_draft(team, owner)
    promotion = generation_promote(team=team, member=owner, generation_ids=[draft.pk], size="2K")
    pro = promotion.generations.get()
    # As the rows stood before the migration: a parent, nothing else.
    Batch.objects.filter(pk=promotion.pk).update(kind="draft")
    Generation.objects.filter(pk=pro.pk).update(edge="draft", root=None)

    migration = importlib.import_module("generation.migrations.0004_edits_and_variations")
    migration.mark_promotions(apps, None)
    pro.refresh_from_db()
    assert (pro.edge, pro.root_id, Batch.objects.get(pk=promotion.pk).kind) == (
        "promotion", draft.pk, "promotion",
    )  # fmt: skip
    assert [n.generation.pk for n in version_tree(team=team, pk=draft.pk).nodes] == [
        draft.pk,
        pro.pk,
    ]
