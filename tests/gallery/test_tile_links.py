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
