"""Grid tiles and star buttons, written by functions instead of templates.

A project page draws up to 150 tiles and a poll up to 50. Through the
template engine a tile cost about 0.2 ms, most of a page's server time
(bench B5, B6b); here it costs a few hundredths of that.

Escaping rule: the only free text in a tile is the prompt and the error,
and both go through `escape`. Everything else interpolated is an integer,
a team's URL prefix (a slug), a status or an aspect ratio that validation
limited to known values, or the CSRF token (letters and digits).

    {% load tiles %}{% tile g %}  {% tile g oob=True %}  {% star g %}
"""

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

STATE_TEXT = {"running": "Rendering…", "canceled": "Canceled"}
CACHED_PILL = '<span class="pill cached" title="Served from the cache at no charge">cached</span>'


def _team_url(context) -> str:
    return context.get("team_url") or reverse("team", args=[context["team"].slug])


def _star_form(generation, team_url: str, csrf_token: str) -> str:
    starred = generation.starred
    url = f"{team_url}star/{generation.pk}/"
    return (
        f'<form class="star-form" method="post" action="{url}" hx-post="{url}" '
        f'hx-swap="outerHTML"><input type="hidden" name="csrfmiddlewaretoken" '
        f'value="{escape(csrf_token)}"><input type="hidden" name="starred" '
        f'value="{0 if starred else 1}"><button type="submit" '
        f'class="star{" on" if starred else ""}" aria-pressed="{"true" if starred else "false"}" '
        f'title="Star (S)" data-star><span aria-hidden="true">★</span>'
        f'<span class="sr-only">Star</span></button></form>'
    )


@register.simple_tag(takes_context=True)
def star(context, generation) -> SafeString:
    return mark_safe(_star_form(generation, _team_url(context), str(context["csrf_token"])))


def _picture(g, url: str) -> str:
    if g.status == "succeeded":
        return f'<img src="{url}thumb/" alt="{escape(g.prompt)}" decoding="async" loading="lazy">'
    if g.status == "queued":
        place = getattr(g, "place", None)
        where = f" · #{place} in lane" if place else ""
        return f'<span class="tile-state">Queued{where}</span>'
    if g.status in STATE_TEXT:
        return f'<span class="tile-state">{STATE_TEXT[g.status]}</span>'
    reason = escape(g.error or "No reason was given.")
    return (
        f'<span class="tile-state tile-problem"><strong>{escape(g.get_status_display())}'
        f"</strong> {reason}</span>"
    )


def _bar(g, team_url: str, url: str, csrf_token: str) -> str:
    seed = f'<span class="tile-seed mono" title="Seed">{g.seed}</span>'
    cached = CACHED_PILL if g.cached else ""
    if g.status != "succeeded":
        return seed + cached
    actions = ""
    if g.tier == "flash":
        promote = f"{team_url}selection/promote/?ids={g.pk}"
        actions += (
            f'<a href="{promote}" hx-get="{promote}" hx-target="#dialog-body" '
            f'title="Promote to Pro">Pro</a>'
        )
    if g.parent_id:
        actions += f'<a href="{team_url}compare/{g.pk}/" title="Compare with the draft">Compare</a>'
    reuse = f"{team_url}reuse/{g.pk}/"
    actions += (
        f'<a href="{reuse}" hx-get="{reuse}" hx-target="#composer" hx-swap="outerHTML" '
        f'title="Use these settings in the composer">Reuse</a>'
        f'<a href="{url}" title="Open">Open</a>'
    )
    return (
        f'<label class="pick" title="Select (shift-click for a range)"><input type="checkbox" '
        f'name="ids" value="{g.pk}" form="selection" data-pick '
        f'aria-label="Select image {g.index + 1}"></label>'
        f"{_star_form(g, team_url, csrf_token)}{seed}{cached}"
        f'<span class="tile-actions">{actions}</span>'
    )


@register.simple_tag(takes_context=True)
def tile(context, g, oob: bool = False) -> SafeString:
    """One grid tile; `oob` marks it for an out-of-band swap in a poll answer."""
    team_url = _team_url(context)
    url = f"{team_url}images/{g.pk}/"
    done = g.status == "succeeded"
    classes = f"tile state-{g.status}"
    if g.cached:
        classes += " is-cached"
    if g.starred:
        classes += " is-starred"
    version = f"{g.status}-{g.changed_at.timestamp()}-{getattr(g, 'place', None) or ''}"
    swap = ' hx-swap-oob="true"' if oob else ""
    opens = " data-open" if done else ""
    return mark_safe(
        f'<figure class="{classes}" id="tile-{g.pk}" data-version="{version}"{swap}>'
        f'<a class="tile-image ar-{g.aspect.replace(":", "")}" href="{url}"{opens}>'
        f"{_picture(g, url)}</a>"
        f'<figcaption class="tile-bar">{_bar(g, team_url, url, str(context["csrf_token"]))}'
        f"</figcaption></figure>"
    )
