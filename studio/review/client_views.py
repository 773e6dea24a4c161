"""The client's side of a review link: no account, only the token.

Every view starts from `_open`, which finds the live link for the token
(404 for a guessed, revoked or expired one, checked on every request) and,
for a password-protected link, whether this session has unlocked it. Images
are addressed by their place in the link, so a number that is not in the
link is a 404 and nothing else of the team is reachable from here.
"""

import functools
import os

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from .. import throttle
from ..views.downloads import zip_stream
from ..views.media import download_name
from . import files
from .models import NAME_MAX, ReviewKind
from .selectors import review_client_tiles, review_item, review_link_find, review_mark_of
from .services import (
    ReviewRefused,
    review_client_name,
    review_comment_add,
    review_download_claim,
    review_mark_set,
    review_password_matches,
    review_view_record,
)

SESSION_KEY = "review"
THUMB, PREVIEW, ORIGINAL = "thumb", "preview", "original"


def _headers(response):
    # Search engines keep out, and the token never leaves the site in a Referer.
    # Not `no-referrer`: under it browsers send `Origin: null` with the page's
    # own form posts, which the CSRF check must refuse; `same-origin` sends
    # nothing to any other site and lets the forms work.
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "same-origin"
    response.setdefault("Cache-Control", "private, no-store")
    return response


def _state(request, link) -> dict:
    return request.session.get(SESSION_KEY, {}).get(str(link.pk), {})


def _save_state(request, link, **changes) -> None:
    states = request.session.get(SESSION_KEY, {})
    states[str(link.pk)] = {**states.get(str(link.pk), {}), **changes}
    request.session[SESSION_KEY] = states


def _unlock_proof(link) -> str:
    # Tied to the password's hash: a new password locks every session out.
    return salted_hmac("review-unlock", link.password).hexdigest()[:24]


def _unlocked(request, link) -> bool:
    return not link.password or _state(request, link).get("unlocked") == _unlock_proof(link)


def _open(*, allow_locked=False, asks_password=False):
    """Find the link for `token`; pass it and the client's name to the view."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, token, *args, **kwargs):
            link = review_link_find(token)
            if link is None:
                try:
                    throttle.review_token_missed(address=throttle.client_address(request))
                except throttle.Throttled as throttled:
                    response = HttpResponse(throttled.message, status=429)
                    response["Retry-After"] = str(throttled.retry_after)
                    return _headers(response)
                return _not_found(request)
            if not allow_locked and not _unlocked(request, link):
                if asks_password:
                    return _headers(_password_page(request, link, token))
                return _not_found(request)
            client_name = _state(request, link).get("name", "")
            try:
                return _headers(view(request, link, token, client_name, *args, **kwargs))
            except Http404:
                return _not_found(request)

        return wrapper

    return decorate


def _not_found(request):
    # The site's plain 404, with the same headers: a dead link stays out of search engines too.
    return _headers(render(request, "404.html", status=404))


def _password_page(request, link, token, *, error="", status=200):
    return render(
        request,
        "studio/review/password.html",
        {"link": link, "token": token, "error": error},
        status=status,
    )


def _back(request, token, position=None):
    """Back where the form was posted from: the grid, or the image's page."""
    target = reverse("review-client", args=[token])
    if request.POST.get("back") == "image" and position:
        target = reverse("review-image", args=[token, position])
    elif position:
        target += f"#image-{position}"
    return redirect(target)


def _item_or_404(link, position):
    item = review_item(link=link, position=position)
    if item is None:
        raise Http404
    return item


def _shown(link, item):
    """The image the client sees in this place: the final once delivered."""
    return item.delivered if link.kind == ReviewKind.DELIVERY else item.generation


@require_GET
@_open(asks_password=True)
def client_page(request, link, token, client_name):
    state = _state(request, link)
    if not state.get("viewed"):
        # A view is a visit, not a reload: counted once per browser session.
        review_view_record(link=link, client_name=client_name)
        _save_state(request, link, viewed=True)
    tiles = review_client_tiles(link=link, client_name=client_name)
    context = {
        "link": link,
        "token": token,
        "client_name": client_name,
        "tiles": tiles,
        "picks": sum(1 for t in tiles if t.verdict == "pick"),
        "name_max": NAME_MAX,
    }
    return render(request, "studio/review/client.html", context)


@require_POST
@_open(allow_locked=True)
def client_unlock(request, link, token, client_name):
    address = throttle.client_address(request)
    try:
        # Counted before the password is checked, so parallel guesses cannot slip in.
        throttle.review_password_attempt(link_id=link.pk, address=address)
    except throttle.Throttled as throttled:
        response = _password_page(request, link, token, error=throttled.message, status=429)
        response["Retry-After"] = str(throttled.retry_after)
        return response
    if not link.password or not review_password_matches(
        link=link, password=request.POST.get("password", "")
    ):
        return _password_page(request, link, token, error="That password is not right.", status=403)
    throttle.review_password_succeeded(link_id=link.pk, address=address)
    request.session.cycle_key()
    _save_state(request, link, unlocked=_unlock_proof(link))
    return redirect("review-client", token)


@require_POST
@_open()
def client_name_set(request, link, token, client_name):
    try:
        name = review_client_name(request.POST.get("name", ""))
    except ReviewRefused as refused:
        return HttpResponse(refused.message, status=400, content_type="text/plain")
    _save_state(request, link, name=name)
    return redirect("review-client", token)


def _may_write(request, link, client_name):
    if not client_name:
        raise ReviewRefused("Tell the studio who you are first: type your name at the top.")
    try:
        throttle.review_write(link_id=link.pk, address=throttle.client_address(request))
    except throttle.Throttled as throttled:
        raise ReviewRefused(throttled.message, status=429)


@require_GET
@_open()
def client_image(request, link, token, client_name, position):
    item = _item_or_404(link, position)
    count = link.items.count()
    context = {
        "link": link,
        "token": token,
        "client_name": client_name,
        "item": item,
        "shown": _shown(link, item),
        "mark": review_mark_of(item=item, client_name=client_name) if client_name else None,
        "comments": list(item.comments.all()),
        "previous": position - 1 if position > 1 else None,
        "next": position + 1 if position < count else None,
        "count": count,
        "ratings": range(1, 6),
    }
    return render(request, "studio/review/image.html", context)


def _refusal(refused: ReviewRefused):
    return HttpResponse(refused.message, status=refused.status, content_type="text/plain")


@require_POST
@_open()
def client_mark(request, link, token, client_name, position):
    item = _item_or_404(link, position)
    try:
        _may_write(request, link, client_name)
        review_mark_set(
            item=item,
            client_name=client_name,
            verdict=request.POST.get("verdict"),
            rating=request.POST.get("rating"),
        )
    except ReviewRefused as refused:
        return _refusal(refused)
    return _back(request, token, position)


@require_POST
@_open()
def client_comment(request, link, token, client_name, position):
    item = _item_or_404(link, position)
    try:
        _may_write(request, link, client_name)
        review_comment_add(
            item=item,
            client_name=client_name,
            body=request.POST.get("body", ""),
            x=request.POST.get("x"),
            y=request.POST.get("y"),
        )
    except ReviewRefused as refused:
        return _refusal(refused)
    return _back(request, token, position)


def _file_name(link, item, generation) -> str:
    if link.show_prompts:
        return download_name(generation)
    return f"{slugify(link.title)[:60] or 'image'}_{item.position:03d}.png"


@require_GET
@_open()
def client_media(request, link, token, client_name, position, kind):
    item = _item_or_404(link, position)
    generation = _shown(link, item)
    asset = generation.asset
    if kind == THUMB:
        name = asset.thumbnail.name
    elif kind == PREVIEW:
        name = asset.preview.name
    elif kind == ORIGINAL and link.kind == ReviewKind.DELIVERY:
        etag = f'"{asset.sha256}-original-{int(link.show_prompts)}"'
        # A browser revalidating a file it already has is not a new download.
        if request.headers.get("If-None-Match") != etag:
            try:
                review_download_claim(link=link, client_name=client_name, item=item)
            except ReviewRefused as refused:
                return _refusal(refused)
        return files.serve(
            request,
            asset.original.name,
            etag,
            strip_text=not link.show_prompts,
            attachment=_file_name(link, item, generation),
        )
    else:
        raise Http404
    if link.watermark and link.kind == ReviewKind.REVIEW:
        name = files.watermarked(asset, kind, name, link.team.name)
        return files.serve(request, name, f'"{os.path.basename(name)}"', strip_text=False)
    return files.serve(
        request, name, f'"{asset.sha256}-{kind}-{int(link.show_prompts)}"', strip_text=True
    )


@require_POST
@_open()
def client_download(request, link, token, client_name):
    """The ZIP of the finals: one download against the limit, counted before it starts."""
    if link.kind != ReviewKind.DELIVERY:
        raise Http404
    try:
        review_download_claim(link=link, client_name=client_name)
    except ReviewRefused as refused:
        return _refusal(refused)
    items = list(link.items.select_related("generation__asset", "final__asset"))
    names, generations = {}, []
    for item in items:
        generation = item.delivered
        if generation.asset_id is None:
            continue
        names[generation.pk] = _file_name(link, item, generation)
        generations.append(generation)
    stream = zip_stream(
        generations,
        name_for=lambda g: names[g.pk],
        # The manifest lists prompts and seeds: only for a link that shows them.
        read=None if link.show_prompts else files.png_without_text,
        manifest=link.show_prompts,
    )
    response = StreamingHttpResponse(stream, content_type="application/zip")
    filename = f"{slugify(link.title)[:60] or 'delivery'}.zip"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
