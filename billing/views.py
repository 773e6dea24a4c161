"""Billing pages: the team's credits, caps, usage, card purchases and the Stripe webhook."""

import csv

import stripe
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from studio.teams import team_for_member

from . import purchases, selectors
from .forms import CapForm, LedgerFilterForm, TopUpForm, WalletSettingsForm
from .models import CreditPack, LedgerEntry
from .periods import PERIODS
from .services import Refusal, member_cap_set, wallet_for, wallet_settings_set, wallet_top_up
from .webhooks import stripe_event_receive

LEDGER_PAGE_SIZE = 25


def _billing_access(request, slug):
    """Owners and admins manage billing; site staff may top up; members get 403."""
    access = team_for_member(request, slug)
    if not (access.manages_team or request.user.is_staff):
        raise PermissionDenied("Only the team's owners and admins can see billing.")
    return access


def _members(team):
    return get_user_model().objects.filter(memberships__team=team).order_by("username")


def _billing_context(request, access, **forms):
    team = access.team
    wallet = wallet_for(team)
    members = list(_members(team))
    filters = LedgerFilterForm(request.GET, kinds=LedgerEntry.Kind.choices, members=members)
    filters.is_valid()
    kind = filters.cleaned_data.get("kind", "")
    member = filters.cleaned_data.get("member", "")
    entries = selectors.ledger_entries(team, kind=kind, member_id=int(member) if member else None)
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "access": access,
        "wallet": wallet,
        "filters": filters,
        "filter_query": query.urlencode(),
        "page": page,
        "caps": selectors.member_caps(team),
        "usage": selectors.usage_report(team, period="month"),
        "limits": [(user, selectors.member_limits(team, user)) for user in members],
        "cap_form": forms.get("cap_form") or CapForm(members=members),
        "settings_form": forms.get("settings_form")
        or WalletSettingsForm(
            initial={
                "low_balance_threshold": wallet.low_balance_threshold,
                "monthly_budget": wallet.monthly_budget,
            }
        ),
        "top_up_form": (forms.get("top_up_form") or TopUpForm()) if request.user.is_staff else None,
        "packs": CreditPack.objects.filter(active=True)
        if purchases.stripe_enabled() and access.role == "owner"
        else [],
    }


@login_required
@require_GET
def billing_page(request, slug):
    access = _billing_access(request, slug)
    context = _billing_context(request, access)
    if request.htmx and request.htmx.target == "ledger":
        return render(request, "billing/_ledger.html", context)
    return render(request, "billing/billing.html", context)


@login_required
@require_GET
def balance_fragment(request, slug):
    access = team_for_member(request, slug)
    available, held = selectors.wallet_balance(access.team)
    return render(request, "billing/_balance.html", {"available": available, "held": held})


@login_required
@require_POST
def top_up(request, slug):
    access = team_for_member(request, slug)
    if not request.user.is_staff:
        raise PermissionDenied("Only site staff can add credits by hand.")
    form = TopUpForm(request.POST)
    if not form.is_valid():
        context = _billing_context(request, access, top_up_form=form)
        return render(request, "billing/billing.html", context, status=400)
    entry = wallet_top_up(
        team=access.team,
        amount=form.cleaned_data["amount"],
        actor=request.user,
        note=form.cleaned_data["note"],
        idempotency_key=f"page:{access.team.pk}:{form.cleaned_data['request_key']}",
    )
    messages.success(request, f"Added {entry.available_delta:,} credits.")
    return redirect("billing", slug=slug)


def _manager_only(request, slug):
    access = team_for_member(request, slug)
    if not access.manages_team:
        raise PermissionDenied("Only the team's owners and admins can change this.")
    return access


@login_required
@require_POST
def caps_set(request, slug):
    access = _manager_only(request, slug)
    members = list(_members(access.team))
    form = CapForm(request.POST, members=members)
    if not form.is_valid():
        context = _billing_context(request, access, cap_form=form)
        return render(request, "billing/billing.html", context, status=400)
    member = next(user for user in members if str(user.pk) == form.cleaned_data["member"])
    member_cap_set(
        team=access.team,
        member=member,
        period=form.cleaned_data["period"],
        tier=form.cleaned_data["tier"],
        credits=form.cleaned_data["credits"],
    )
    messages.success(request, f"Limit for {member.username} saved.")
    return redirect("billing", slug=slug)


@login_required
@require_POST
def settings_set(request, slug):
    access = _manager_only(request, slug)
    form = WalletSettingsForm(request.POST)
    if not form.is_valid():
        context = _billing_context(request, access, settings_form=form)
        return render(request, "billing/billing.html", context, status=400)
    wallet_settings_set(
        team=access.team,
        low_balance_threshold=form.cleaned_data["low_balance_threshold"],
        monthly_budget=form.cleaned_data["monthly_budget"],
    )
    messages.success(request, "Alert and budget saved.")
    return redirect("billing", slug=slug)


def _usage_scope(request, slug):
    """(access, member or None for the whole team, period)."""
    access = team_for_member(request, slug)
    period = request.GET.get("period", "month")
    if period not in PERIODS:
        period = "month"
    if not access.manages_team:
        return access, request.user, period
    member_id = request.GET.get("member", "")
    member = (
        _members(access.team).filter(pk=member_id).first()
        if member_id.isascii() and member_id.isdigit() and len(member_id) <= 18
        else None
    )
    return access, member, period


@login_required
@require_GET
def usage(request, slug):
    access, member, period = _usage_scope(request, slug)
    report = selectors.usage_report(access.team, period=period, member=member)
    return render(
        request,
        "billing/usage.html",
        {
            "access": access,
            "report": report,
            "period": period,
            "periods": PERIODS,
            "member": member,
            "members": _members(access.team) if access.manages_team else [],
            "limits": selectors.member_limits(access.team, request.user),
        },
    )


@login_required
@require_GET
def usage_csv(request, slug):
    access, member, period = _usage_scope(request, slug)
    report = selectors.usage_report(access.team, period=period, member=member)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="usage-{access.team.slug}-{period}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(["member", "tier", "size", "images", "cached images", "credits", "cache saved"])
    for row in report.rows:
        writer.writerow(
            [
                selectors.csv_safe(value)
                for value in (
                    row.member,
                    row.tier,
                    row.size,
                    row.images,
                    row.cached_images,
                    row.credits,
                    row.saved,
                )
            ]
        )
    return response


@login_required
@require_POST
def buy(request, slug):
    access = team_for_member(request, slug)
    if access.role != "owner":
        raise PermissionDenied("Only the team's owners can buy credits.")
    if not purchases.stripe_enabled():
        raise Http404("Card payments are not set up.")
    pack_id = request.POST.get("pack", "")
    if not (pack_id.isascii() and pack_id.isdigit() and len(pack_id) <= 18):
        raise Http404("Unknown credit pack.")
    pack = get_object_or_404(CreditPack, pk=pack_id, active=True)
    back = request.build_absolute_uri(reverse("billing", args=[slug]))
    try:
        checkout_url = purchases.purchase_start(
            team=access.team,
            pack=pack,
            buyer=request.user,
            success_url=request.build_absolute_uri(reverse("billing-bought", args=[slug])),
            cancel_url=back,
        )
    except Refusal as error:
        # Says what happened in words; the SDK's own text is in the log.
        messages.error(request, str(error))
        return redirect("billing", slug=slug)
    return redirect(checkout_url, permanent=False)


@login_required
@require_GET
def bought(request, slug):
    """Stripe sends the buyer back here; the payment is checked with Stripe, never trusted."""
    access = team_for_member(request, slug)
    session_id = request.GET.get("session_id", "")
    if not session_id.startswith("cs_") or not purchases.stripe_enabled():
        raise Http404
    try:
        session = purchases.checkout_session_fetch(session_id)
    except stripe.InvalidRequestError:
        raise Http404
    except stripe.StripeError:
        # Stripe is unreachable for now; the signed webhook credits the pack anyway.
        messages.info(
            request, "Your payment is being confirmed: the credits appear as soon as it clears."
        )
        return redirect("billing", slug=slug)
    if str(session.get("client_reference_id")) != str(access.team.pk):
        raise Http404
    try:
        credited = purchases.purchase_fulfil(session)
    except purchases.PurchaseError as error:
        messages.error(request, str(error))
        return redirect("billing", slug=slug)
    if credited:
        messages.success(request, "Payment received: your credits are in.")
    elif session.get("payment_status") == "paid":
        messages.info(request, "This payment was already credited.")
    else:
        messages.info(request, "Payment is processing: credits appear as soon as it clears.")
    return redirect("billing" if access.manages_team else "team", slug=slug)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    status, message = stripe_event_receive(
        payload=request.body, signature=request.headers.get("Stripe-Signature")
    )
    return HttpResponse(message, status=status, content_type="text/plain")
