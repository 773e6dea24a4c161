"""Cross-team probes: every URL pattern, with the first team's real ids, as outsiders.

The crawler walks `django.urls.get_resolver()` itself, so a page added later
is probed without anyone remembering to list it.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve
from PIL import Image

from billing.selectors import wallet_balance
from generation.models import Generation, Status
from generation.services import generation_promote, reference_upload
from generation.tasks import run_lane
from studio.models import Membership, Role
from tests.conftest import make_user

from .conftest import fund, submit

SECRET_PROMPT = "zanzibar-quokka-4471 under neon"
BASE_DIR = Path(__file__).resolve().parents[2]


# --- the first team's data -----------------------------------------------------------


def png_bytes(color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def victim(owner, team, teammate, db):
    """The first team with a rendered grid, a promotion, a project, a reference, an invite
    and a review link its client has marked up."""
    from generation.models import Project
    from studio.review.services import review_comment_add, review_link_create, review_mark_set
    from studio.services import invite_create

    fund(team, owner)
    project = Project.objects.create(team=team, name="Secret Project Orca", created_by=owner)
    reference, _ = reference_upload(team=team, member=owner, name="hero-ref", data=png_bytes())
    draft = submit(team, owner, count=2, prompt=SECRET_PROMPT, reference_ids=[reference.pk])
    draft.project = project
    draft.save(update_fields=["project"])
    while run_lane("flash"):
        pass
    ids = list(draft.generations.values_list("pk", flat=True))
    promotion = generation_promote(team=team, member=owner, generation_ids=ids[:1], size="2K")
    while run_lane("pro"):
        pass
    assert not Generation.objects.exclude(status=Status.SUCCEEDED).exists()
    token = invite_create(team=team, created_by=owner)
    link, review_token = review_link_create(
        team=team, created_by=owner, title="Orca client round", generation_ids=ids
    )
    item = link.items.first()
    review_mark_set(item=item, client_name="Client Carla", verdict="pick")
    review_comment_add(item=item, client_name="Client Carla", body="secret note 5519")
    return {
        "team": team,
        "project": project,
        "reference": reference,
        "batches": [draft, promotion],
        "token": token,
        "review_token": review_token,
    }


def snapshot(team) -> dict:
    """Everything an outsider's request might change."""
    from billing.models import Hold, LedgerEntry, MemberCap, Price, Wallet
    from generation.models import Batch, Project, Reference
    from studio.models import ReviewComment, ReviewEvent, ReviewLink, ReviewMark

    team.refresh_from_db()
    wallet = Wallet.objects.filter(team=team).values().first()
    return {
        "team": (team.name, team.slug),
        "members": sorted(Membership.objects.filter(team=team).values_list("user_id", "role")),
        "wallet": wallet,
        "balance": wallet_balance(team),
        "ledger": LedgerEntry.objects.count(),
        "holds": Hold.objects.count(),
        "caps": sorted(MemberCap.objects.values_list("member_id", "period", "tier", "credits")),
        "prices": sorted(Price.objects.values_list("tier", "size", "credits")),
        "batches": sorted(Batch.objects.values_list("pk", "canceled_at")),
        "generations": sorted(
            Generation.objects.values_list("pk", "status", "starred", "archived")
        ),
        "projects": sorted(Project.objects.values_list("pk", "name", "archived")),
        "references": sorted(Reference.objects.values_list("pk", "name")),
        "review_links": sorted(
            ReviewLink.objects.filter(team=team).values_list(
                "pk", "title", "kind", "revoked_at", "downloads", "download_limit"
            )
        ),
        "review_marks": sorted(
            ReviewMark.objects.filter(item__link__team=team).values_list("pk", "verdict", "rating")
        ),
        "review_comments": ReviewComment.objects.filter(item__link__team=team).count(),
        "review_events": ReviewEvent.objects.filter(link__team=team).count(),
    }


# --- walking the URL patterns --------------------------------------------------------


def leaf_chains(patterns, chain=()):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from leaf_chains(entry.url_patterns, chain + (entry,))
        elif isinstance(entry, URLPattern):
            yield chain + (entry,)


def _regex_part(regex: str, value_for) -> list[str]:
    """Fill the named groups of a regex route (the admin's) with values."""
    regex = regex.lstrip("^").rstrip("$").replace("\\Z", "")
    parts, i, fills = [], 0, []
    while True:
        start = regex.find("(?P<", i)
        if start < 0:
            parts.append(regex[i:])
            break
        parts.append(regex[i:start])
        name = regex[start + 4 : regex.index(">", start)]
        depth, j = 0, start
        while True:
            if regex[j] == "(" and regex[j - 1 : j] != "\\":
                depth += 1
            elif regex[j] == ")" and regex[j - 1 : j] != "\\":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        body = regex[regex.index(">", start) + 1 : j]
        if re.fullmatch(r"[\w|]+", body):
            fills.append([body.split("|")[0]])
        else:
            fills.append(value_for(name, "str"))
        parts.append(None)
        i = j + 1
    literal = [p.replace("\\", "") if p is not None else None for p in parts]
    paths = []
    for combo in itertools.product(*fills) if fills else [()]:
        values = iter(combo)
        paths.append("".join(p if p is not None else str(next(values)) for p in literal))
    return paths


def _route_part(route: str, value_for) -> list[str]:
    slots = re.findall(r"<(?:(\w+):)?(\w+)>", route)
    if not slots:
        return [route]
    choices = [value_for(name, conv or "str") for conv, name in slots]
    paths = []
    for combo in itertools.product(*choices):
        values = iter(combo)
        paths.append(re.sub(r"<(?:\w+:)?\w+>", lambda _m, v=values: str(next(v)), route))
    return paths


def paths_for(chain, value_for, limit=24) -> list[str]:
    pieces = []
    for entry in chain:
        pattern = entry.pattern
        text = str(pattern)
        if hasattr(pattern, "regex") and pattern.__class__.__name__ == "RegexPattern":
            pieces.append(_regex_part(pattern.regex.pattern, value_for))
        else:
            pieces.append(_route_part(text, value_for))
    return ["/" + "".join(combo) for combo in itertools.islice(itertools.product(*pieces), limit)]


def values_for(victim):
    team = victim["team"]
    generations = list(Generation.objects.filter(team=team).order_by("pk"))
    ids = {g.pk for g in generations}
    ids |= {g.batch_id for g in generations} | {g.asset_id for g in generations if g.asset_id}
    ids |= {victim["project"].pk, victim["reference"].pk, team.pk}
    ids = sorted(ids)

    def value_for(name: str, conv: str) -> list:
        if name == "slug" or name.endswith("slug"):
            return [team.slug]
        if conv == "int" or name in ("pk", "id") or name.endswith(("_id", "_pk")):
            return ids
        if name == "kind":
            return ["original", "preview", "thumb"]
        if name == "token":
            # The invite and review tokens are capabilities an outsider does not
            # have (their holders may see the team's name): probe with guesses.
            return ["not-" + victim["token"][4:], victim["review_token"][::-1]]
        if name in ("object_id",) or conv == "path":
            return [str(i) for i in ids[:4]]
        return ["original", "zip", "csv"]

    return value_for


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def media_fingerprints(root) -> tuple[set[str], list[bytes]]:
    digests, samples = set(), []
    for path in Path(root).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            digests.add(hashlib.sha256(data).hexdigest())
            samples.append(data[200:264])  # past the format header: this image's own bytes
    return digests, samples


@pytest.mark.slow
def test_outsiders_get_nothing_of_the_first_team_from_any_url(victim, stranger, settings):
    team = victim["team"]
    outsider_member = make_user("oscar")
    Membership.objects.create(team=stranger.teams.get(), user=outsider_member, role=Role.MEMBER)
    secrets_text = [team.name, SECRET_PROMPT, "Secret Project Orca", "hero-ref"]
    secrets_text += ["Orca client round", "Client Carla", "secret note 5519"]
    digests, samples = media_fingerprints(settings.MEDIA_ROOT)
    assert digests, "the first team has stored images"
    generation_ids = [str(pk) for pk in Generation.objects.values_list("pk", flat=True)]
    post_data = {
        "name": "Taken over", "note": "x", "amount": "1000", "credits": "1", "period": "month",
        "tier": "flash", "size": "2K", "aspect": "1:1", "count": "1", "prompt": "probe",
        "generation_ids": generation_ids, "ids": generation_ids, "role": "owner",
        "low_balance_threshold": "1", "monthly_budget": "1", "pack": "1", "starred": "1",
    }  # fmt: skip
    before = snapshot(team)
    value_for = values_for(victim)

    tried_patterns, requests_made, skipped = 0, 0, []
    for chain in leaf_chains(get_resolver().url_patterns):
        paths = []
        for path in paths_for(chain, value_for):
            try:
                resolve(path)
            except Resolver404:
                continue
            paths.append(path)
        if not paths:
            skipped.append(str(chain[-1].pattern))
            continue
        tried_patterns += 1
        for user in (stranger, outsider_member, None):
            for path in paths:
                for method in ("get", "post"):
                    client = Client()
                    if user is not None:
                        client.force_login(user)
                    response = getattr(client, method)(
                        path, post_data if method == "post" else None
                    )
                    requests_made += 1
                    where = f"{method.upper()} {path} as {user or 'anonymous'}"
                    # /healthz answers 503 by design when no lane worker is up.
                    assert response.status_code < 500 or path == "/healthz", where
                    content = body_of(response)
                    text = content.decode("utf-8", "replace")
                    for secret in secrets_text:
                        assert secret not in text, f"{where} shows {secret!r}"
                    assert hashlib.sha256(content).hexdigest() not in digests, where
                    assert not any(sample and sample in content for sample in samples), where
    assert snapshot(team) == before, "an outsider's request changed the first team's state"
    print(
        f"\nisolation crawler: {tried_patterns} URL patterns tried, {requests_made} requests; "
        f"patterns without fillable arguments: {skipped}"
    )
    assert tried_patterns >= 15


# --- review links: a link reaches its own images, nothing of any other team ---------------


def _review_chains():
    return [
        chain
        for chain in leaf_chains(get_resolver().url_patterns)
        if "".join(str(entry.pattern) for entry in chain).startswith("r/")
    ]


def test_a_review_link_of_one_team_reveals_nothing_of_another(
    victim, stranger, settings, monkeypatch
):
    """The stranger's team shares its own image; every review URL, filled with that
    real token and every number (its places and the first team's ids), shows
    nothing of the first team. Revoked, the same URLs are all 404."""
    from studio.review.services import review_link_create, review_link_deliver, review_link_revoke

    team = victim["team"]
    digests, samples = media_fingerprints(settings.MEDIA_ROOT)
    secrets_text = [team.name, SECRET_PROMPT, "Secret Project Orca", "Orca client round",
                    "Client Carla", "secret note 5519"]  # fmt: skip
    theirs = stranger.teams.get()
    fund(theirs, stranger)
    batch = submit(theirs, stranger, count=2, prompt="an unrelated teapot")
    while run_lane("flash"):
        pass
    link, token = review_link_create(
        team=theirs, created_by=stranger, title="Their round",
        generation_ids=list(batch.generations.values_list("pk", flat=True)),
    )  # fmt: skip
    review_link_deliver(link=link)  # originals and the ZIP are reachable too
    before = snapshot(team)
    numbers = [0, 1, 2, 3] + sorted(
        Generation.objects.filter(team=team).values_list("pk", flat=True)
    )
    kinds = ["thumb", "preview", "original", "zip"]

    def value_for(name, conv):
        if name == "token":
            return [token]
        if name == "kind":
            return kinds
        return numbers

    probed = []
    for chain in _review_chains():
        probed.extend(paths_for(chain, value_for, limit=500))
    assert len(probed) > 40
    post_data = {"verdict": "pick", "rating": "5", "body": "hi", "name": "Probe", "x": "", "y": ""}
    for user in (None, stranger):
        client = Client()
        if user is not None:
            client.force_login(user)
        client.post(f"/r/{token}/name/", {"name": "Probe"})
        for path in probed:
            for method in ("get", "post"):
                response = getattr(client, method)(path, post_data if method == "post" else None)
                where = f"{method.upper()} {path} as {user or 'anonymous'}"
                assert response.status_code < 500, where
                content = body_of(response)
                text = content.decode("utf-8", "replace")
                for secret in secrets_text:
                    assert secret not in text, f"{where} shows {secret!r}"
                assert hashlib.sha256(content).hexdigest() not in digests, where
                assert not any(sample and sample in content for sample in samples), where
    assert snapshot(team) == before

    print(
        f"\nreview probe: {len(probed)} review URLs, each GET and POST by 2 clients, then revoked"
    )
    # Guessed tokens are rate-limited per address; here every request must say 404 itself.
    monkeypatch.setattr("studio.throttle.REVIEW_MISSES_PER_MINUTE", 10**6)
    review_link_revoke(link=link)
    client = Client()
    for path in probed:
        for method in ("get", "post"):
            response = getattr(client, method)(path, post_data if method == "post" else None)
            # 405: a POST to a page that only answers GET, refused before the token is read.
            assert response.status_code in (404, 405), (method, path, response.status_code)


# --- roles: members cannot move money or change the rules -------------------------------


def test_members_cannot_top_up_or_change_caps_or_prices(victim, owner, teammate):
    team = victim["team"]
    before = snapshot(team)
    client = Client()
    client.force_login(teammate)
    slug = team.slug
    attempts = [
        (f"/t/{slug}/billing/top-up/", {"amount": "100000", "note": "free money"}),
        (f"/t/{slug}/billing/caps/", {"member": str(teammate.pk), "period": "month",
                                     "tier": "", "credits": "999999"}),
        (f"/t/{slug}/billing/settings/", {"low_balance_threshold": "0", "monthly_budget": ""}),
    ]  # fmt: skip
    for path, data in attempts:
        response = client.post(path, data)
        assert response.status_code in (403, 404), (path, response.status_code)
    for path in ("/admin/billing/price/", "/admin/billing/wallet/", "/admin/"):
        response = client.get(path)
        assert response.status_code in (302, 403, 404), path
        assert "Northlight" not in response.content.decode()
    assert snapshot(team) == before


# --- CSRF ---------------------------------------------------------------------------------


def test_csrf_protects_every_state_changing_view(victim, owner, stranger):
    """Every pattern, POSTed by the owner without a token: 403, nothing changed.

    Only the Stripe webhook is exempt (it proves itself by signature instead).
    """
    team = victim["team"]
    value_for = values_for(victim)
    before = snapshot(team)
    exempt = {"stripe/webhook/"}
    checked = 0
    for chain in leaf_chains(get_resolver().url_patterns):
        route = "".join(str(entry.pattern) for entry in chain)
        if route in exempt:
            continue
        for path in paths_for(chain, value_for, limit=2):
            try:
                resolve(path)
            except Resolver404:
                continue
            client = Client(enforce_csrf_checks=True)
            client.force_login(owner)
            response = client.post(path, {"amount": "100", "note": "x", "name": "Renamed"})
            # The token API ignores session cookies altogether: a browser's
            # session (and so a forged cross-site post) is not signed in there.
            refused = (401, 403, 404, 405) if route.startswith("api/v1/") else (403, 404, 405)
            assert response.status_code in refused, (path, response.status_code)
            checked += 1
    assert checked >= 10
    assert snapshot(team) == before


# --- headers and cookies ------------------------------------------------------------------


def test_security_headers_and_a_csp_without_inline_scripts(client, owner, team):
    client.force_login(owner)
    response = client.get(f"/t/{team.slug}/")
    csp = response["Content-Security-Policy"]
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    # No inline <script> bodies in the page itself.
    html = response.content.decode()
    for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.S):
        assert "src=" in match.group(1) and not match.group(2).strip(), match.group(0)[:200]


PRODUCTION_PROBE = """
import django, json
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/healthz", secure=True)
print(json.dumps({
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "hsts_header": response.headers.get("Strict-Transport-Security", ""),
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
}))
"""


def test_production_settings_have_secure_cookies_and_hsts(tmp_path):
    import json

    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "testserver,studio.example.com",
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "REDIS_URL": django_settings.REDIS_URL,
    }
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["session_secure"] and found["csrf_secure"] and found["ssl_redirect"]
    assert found["hsts"] >= 31536000
    assert "max-age=" in found["hsts_header"]
