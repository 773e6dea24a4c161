"""What a person may ask for, and the words they get when they ask for too much."""

import io

import pytest
from PIL import Image

from generation.imaging import UnusableImage, clean_upload
from generation.requests import InvalidRequest, parse_batch_request

GOOD = {"prompt": "a red fox", "tier": "flash", "size": "1K", "aspect": "16:9", "count": "4"}


def errors_for(**changes):
    with pytest.raises(InvalidRequest) as refused:
        parse_batch_request({**GOOD, **changes})
    return refused.value.errors


def test_a_good_request_parses():
    request = parse_batch_request({**GOOD, "seed": "1234"})
    assert (request.tier, request.size, request.aspect, request.count) == ("flash", "1K", "16:9", 4)
    assert request.seed == 1234 and request.seed_locked


def test_a_random_seed_is_chosen_when_none_is_given():
    assert not parse_batch_request(GOOD).seed_locked


def test_control_characters_are_removed_and_whitespace_trimmed():
    request = parse_batch_request({**GOOD, "prompt": "  fox\x00 in\x1b snow \x7f "})
    assert request.prompts == ("fox in snow",)


def test_one_prompt_per_line_builds_a_grid_across_prompts():
    request = parse_batch_request(
        {**GOOD, "prompt": "fox\n\nowl\nbear", "per_line": "on", "count": "3"}
    )
    assert request.prompts == ("fox", "owl", "bear") and request.total == 9


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"prompt": ""}, "prompt", "Write a prompt"),
        ({"prompt": " \x00\x01 "}, "prompt", "Write a prompt"),
        ({"prompt": "x" * 10_001}, "prompt", "limit is 10,000"),
        ({"count": "0"}, "count", "between 1 and 50"),
        ({"count": "51"}, "count", "between 1 and 50"),
        ({"count": "-1"}, "count", "between 1 and 50"),
        ({"count": "abc"}, "count", "whole number"),
        ({"tier": "ultra"}, "tier", "Flash or Pro"),
        ({"size": "8K"}, "size", "512, 1K, 2K, 4K"),
        ({"tier": "pro", "size": "512", "count": "1"}, "size", "Pro renders at 1K, 2K, 4K"),
        ({"tier": "pro", "count": "9"}, "count", "between 1 and 8"),
        ({"aspect": "7:3"}, "aspect", "does not offer"),
        ({"tier": "pro", "aspect": "8:1", "count": "1"}, "aspect", "Pro does not offer"),
        ({"seed": "lucky"}, "seed", "whole number"),
        ({"seed": "-5"}, "seed", "between 0"),
        ({"prompt": "a\nb\nc", "per_line": "on", "count": "20"}, "count", "limit is 50"),
    ],
)
def test_bad_requests_say_what_is_wrong(changes, field, words):
    assert words in errors_for(**changes)[field]


def test_fifteen_references_are_too_many():
    with pytest.raises(InvalidRequest) as refused:
        parse_batch_request(GOOD, reference_ids=[str(i) for i in range(1, 16)])
    assert "at most 14" in refused.value.errors["references"]


def png(width=64, height=48, mode="RGB"):
    out = io.BytesIO()
    Image.new(mode, (width, height), (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


def test_an_upload_is_re_encoded_and_hashed():
    upload = clean_upload(png())
    assert (upload.width, upload.height) == (64, 48)
    assert upload.mime_type == "image/jpeg" and len(upload.sha256) == 64
    assert clean_upload(png()).sha256 == upload.sha256


@pytest.mark.parametrize(
    "data, words",
    [
        (b"%PDF-1.4 not an image", "not an image"),
        (png()[:60], "damaged or incomplete"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "not an image",
        ),
    ],
)
def test_unusable_uploads_are_refused(data, words):
    with pytest.raises(UnusableImage, match=words):
        clean_upload(data)


def test_a_decompression_bomb_is_refused_before_decoding():
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, "PNG")  # 100 megapixels, a few kB
    with pytest.raises(UnusableImage, match="megapixels"):
        clean_upload(bomb.getvalue())


def test_a_sixty_megabyte_file_is_refused_by_size():
    with pytest.raises(UnusableImage, match="up to 20 MB"):
        clean_upload(b"\x89PNG" + b"\0" * (60 * 1024 * 1024))


@pytest.mark.parametrize("value", ["²", "٣x", "-1", "1e3", "", " ", "9" * 19, "abc"])
def test_odd_ids_are_not_ids(value):
    from generation.requests import parse_id

    assert parse_id(value) is None


def test_ids_are_parsed_and_limited():
    from generation.requests import parse_ids

    assert parse_ids(["3", "²", "x", "7", "12"], limit=2) == [3, 7]


def test_ids_stop_at_the_databases_integers():
    from generation.requests import ID_MAX, parse_id

    assert parse_id(str(ID_MAX)) == ID_MAX
    assert parse_id(str(ID_MAX + 1)) is None
    assert parse_id(10**30) is None


def test_a_reference_id_past_the_databases_integers_is_unknown_not_an_overflow():
    assert errors_for_references([str(2**63)]) == {"references": "Unknown reference image."}


def errors_for_references(ids):
    with pytest.raises(InvalidRequest) as refused:
        parse_batch_request(GOOD, ids)
    return refused.value.errors


@pytest.mark.parametrize(
    "value, words",
    [
        ("9999-12-31", "between 1900-01-01 and 2999-12-31"),
        ("0001-01-01", "between 1900-01-01 and 2999-12-31"),
        ("2024-02-30", "YYYY-MM-DD"),
        ("yesterday", "YYYY-MM-DD"),
    ],
)
def test_days_at_the_edge_of_the_calendar_are_refused_in_words(value, words):
    from generation.requests import parse_day

    with pytest.raises(ValueError, match=words):
        parse_day(value)


def test_ordinary_days_parse():
    from datetime import date

    from generation.requests import parse_day

    assert parse_day(" 2026-03-01 ") == date(2026, 3, 1)
    assert parse_day("") is None
