"""Grid tiles and star buttons: {% tile g %}, {% tile g oob=True %}, {% star g %}.

The markup lives in templates/studio/gallery/_tile.jinja and _star.jinja. They
are Jinja2 templates because a project page draws up to 150 tiles and a poll
up to 50: through Django's engine a tile cost about 0.2 ms, most of a page's
server time (bench B5, B6b); Jinja2 compiles a template to Python once and
renders one in a few hundredths of that. Jinja2 escapes every value itself.
"""

from django import template
from django.template import engines
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def _jinja(name: str):
    return engines["jinja2"].env.get_template(name)


def _team_url(context) -> str:
    return context.get("team_url") or reverse("team", args=[context["team"].slug])


def _render(name: str, context, **values) -> SafeString:
    values.update(team_url=_team_url(context), csrf_token=str(context["csrf_token"]))
    return mark_safe(_jinja(name).render(values))  # noqa: S308 - Jinja2 escaped it


@register.simple_tag(takes_context=True)
def star(context, generation, in_tile: bool = False) -> SafeString:
    return _render("studio/gallery/_star.jinja", context, g=generation, in_tile=in_tile)


@register.simple_tag(takes_context=True)
def tile(context, g, oob: bool = False) -> SafeString:
    """One grid tile; `oob` marks it for an out-of-band swap in a poll answer."""
    return _render("studio/gallery/_tile.jinja", context, g=g, oob=oob)
