"""Grid tiles build their links from the team's URL prefix instead of reversing
each one; these must stay the paths the URL patterns serve."""

from django.urls import reverse


def test_tile_paths_match_the_url_patterns():
    slug, pk = "northlight", 42
    team_url = reverse("team", args=[slug])
    assert f"{team_url}images/{pk}/" == reverse("image", args=[slug, pk])
    assert f"{team_url}images/{pk}/thumb/" == reverse("generation-image", args=[slug, pk, "thumb"])
    assert f"{team_url}selection/promote/" == reverse("promote-confirm", args=[slug])
    assert f"{team_url}compare/{pk}/" == reverse("compare", args=[slug, pk])
    assert f"{team_url}reuse/{pk}/" == reverse("image-reuse", args=[slug, pk])
    assert f"{team_url}star/{pk}/" == reverse("image-star", args=[slug, pk])


def test_free_text_in_a_tile_is_escaped():
    from django.template import Context, Template
    from django.utils import timezone

    from generation.models import Generation

    hostile = '"><script>alert(1)</script>'
    context = {"team_url": "/t/northlight/", "csrf_token": "abc123"}
    template = Template("{% load tiles %}{% tile g %}")
    done = Generation(
        pk=7,
        index=0,
        seed=1,
        status="succeeded",
        tier="flash",
        aspect="16:9",
        prompt=hostile,
        changed_at=timezone.now(),
    )
    failed = Generation(
        pk=8,
        index=1,
        seed=2,
        status="failed",
        tier="flash",
        aspect="1:1",
        prompt="fox",
        error=hostile,
        changed_at=timezone.now(),
    )
    for generation in (done, failed):
        html = template.render(Context({**context, "g": generation}))
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
