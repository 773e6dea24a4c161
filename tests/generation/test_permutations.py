"""Writing one prompt for many: choice groups, escapes, list axes, counts and the cap."""

import pytest

from generation.campaigns import parse_permutation_request, permutation_jobs
from generation.permutations import Axes, expand, parse_list, parse_template
from generation.requests import InvalidRequest

PLAIN = Axes(size="1K", aspect="1:1")


def prompts(text, axes=PLAIN, **kwargs):
    return [v.prompt for v in expand(text, axes, limit=2000, **kwargs)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a teapot", ["a teapot"]),
        ("{red|blue} teapot", ["red teapot", "blue teapot"]),
        (
            "{red|blue|green} teapot on {linen|marble}",
            [
                "red teapot on linen",
                "red teapot on marble",
                "blue teapot on linen",
                "blue teapot on marble",
                "green teapot on linen",
                "green teapot on marble",
            ],
        ),  # fmt: skip
        ("{ red | blue } fox", ["red fox", "blue fox"]),
        ("{solo} fox", ["solo fox"]),
        (r"a \{literal\} brace", ["a {literal} brace"]),
        (r"pipe \| and {a\|b|c}", ["pipe | and a|b", "pipe | and c"]),
        ("a | b outside a group", ["a | b outside a group"]),
        (r"back\slash stays", [r"back\slash stays"]),
    ],
)
def test_good_prompts_expand_to_every_combination(text, expected):
    assert prompts(text) == expected


@pytest.mark.parametrize(
    "text, words",
    [
        ("{red|blue teapot", ["position 1", "never closed"]),
        ("red} teapot", ["position 4", "closes no group"]),
        ("{red||blue}", ["position 1", "empty choice"]),
        ("{}", ["position 1", "empty choice"]),
        ("{red|}", ["empty choice"]),
        ("{red|{blue|green}}", ["nested", "position 6"]),
        (r"\{red|blue}", ["position 11", "closes no group"]),
    ],
)
def test_bad_prompts_are_refused_naming_the_position(text, words):
    with pytest.raises(InvalidRequest) as refused:
        parse_template(text)
    message = refused.value.errors["prompt"]
    for word in words:
        assert word in message


def test_each_expansion_records_its_axis_values():
    axes = Axes(size="1K", aspect="1:1", aspects=("1:1", "4:5", "9:16"))
    variants = expand("{red|blue} teapot", axes, limit=100)
    assert len(variants) == 6
    assert variants[1].axes == {"choice 1": "red", "aspect": "4:5"}
    assert (variants[1].prompt, variants[1].aspect) == ("red teapot", "4:5")


def test_sizes_ratios_and_seeds_are_axes_too():
    axes = Axes(size="1K", aspect="1:1", sizes=("512", "1K"), aspects=("1:1", "9:16"),
                seeds=(7, 8, 9))  # fmt: skip
    variants = expand("a fox", axes, limit=100)
    assert len(variants) == 12
    assert {(v.size, v.aspect, v.seed) for v in variants} == {
        (s, a, seed) for s in ("512", "1K") for a in ("1:1", "9:16") for seed in (7, 8, 9)
    }


def test_the_count_multiplies_and_the_cap_refuses_before_expanding():
    assert len(expand("{a|b|c|d}", PLAIN, count=5, limit=20)) == 4
    with pytest.raises(InvalidRequest) as refused:
        # 10^6 combinations: refused by counting, never built.
        expand("{0|1|2|3|4|5|6|7|8|9}" * 6, PLAIN, limit=2000)
    assert "1,000,000 images; the limit is 2,000" in refused.value.errors["prompt"]
    with pytest.raises(InvalidRequest):
        expand("{a|b|c|d}", PLAIN, count=6, limit=20)


def test_list_fields_take_commas_spaces_or_json_lists():
    assert parse_list("1:1, 4:5 9:16;1:1") == ("1:1", "4:5", "9:16")
    assert parse_list(["512", "1K"]) == ("512", "1K")
    assert parse_list("") == () and parse_list(None) == ()


FORM = {"prompt": "{red|blue|green} teapot", "tier": "flash", "size": "1K", "aspect": "1:1"}


def test_a_request_counts_its_images_and_keeps_each_prompt():
    request = parse_permutation_request({**FORM, "count": "2", "aspects": "1:1, 4:5, 9:16"})
    assert request.total == 18
    jobs = permutation_jobs(request)["1K"]
    assert len(jobs) == 18 and jobs[0].prompt == "red teapot"
    assert jobs[0].seed + 1 == jobs[1].seed and len({j.seed for j in jobs}) == 18


def test_a_request_past_the_configured_cap_is_refused(settings):
    settings.PERMUTATIONS_MAX = 10
    with pytest.raises(InvalidRequest) as refused:
        parse_permutation_request({**FORM, "count": "4"})
    assert "12 images; the limit is 10" in refused.value.errors["prompt"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"aspects": "1:1, 7:3"}, "aspects"),
        ({"sizes": "1K, 8K"}, "sizes"),
        ({"seeds": "1, two"}, "seeds"),
        ({"count": "0"}, "count"),
        ({"prompt": "{red|blue"}, "prompt"),
    ],
)
def test_bad_lists_are_named_by_field(changes, field):
    with pytest.raises(InvalidRequest) as refused:
        parse_permutation_request({**FORM, **changes})
    assert field in refused.value.errors
