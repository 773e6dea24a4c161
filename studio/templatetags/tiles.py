"""Grid tiles: {% tiles list %}, {% tiles list oob=True %} and {% tile g %}.

The markup lives in templates/studio/gallery/_tiles.jinja. It is a Jinja2
template because a project page draws up to 150 tiles and a poll up to 50:
through Django's engine a tile cost about 0.2 ms, most of a page's server time
(bench B5, B6b). A list of tiles is one Jinja2 render (a loop), since starting
a render costs about what a tile does. Jinja2 escapes every value itself.

Each tile shows the team's clients' marks (picks, rejects, ratings, comments
on review links); see `client_marks_attach`.
"""

from django import template
from django.template import engines
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from ..review.selectors import client_marks_attach

register = template.Library()


@register.simple_tag(takes_context=True)
def tiles(context, generations, oob: bool = False) -> SafeString:
    """The tiles of a grid or a page; `oob` marks them for out-of-band swaps (a poll)."""
    team_url = context.get("team_url") or reverse("team", args=[context["team"].slug])
    generations = list(generations)
    team = context.get("team")
    if team is not None and any(not hasattr(g, "client_marks") for g in generations):
        # Pages of many tiles attach the clients' marks for all of them in one
        # query before rendering; a tile or a grid re-rendered alone (a star, a
        # poll) gets them here, so a badge never drops off a swapped tile.
        client_marks_attach(team=team, generations=generations)
    template = engines["jinja2"].env.get_template("studio/gallery/_tiles.jinja")
    html = template.render(tiles=generations, oob=oob, team_url=team_url)
    return mark_safe(html)  # noqa: S308 - escaped by Jinja2's autoescape


@register.simple_tag(takes_context=True)
def tile(context, g, oob: bool = False) -> SafeString:
    return tiles(context, [g], oob=oob)
