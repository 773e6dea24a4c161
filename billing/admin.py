"""Billing in the Django admin: prices, packs, wallets, and a read-only ledger.

Teams get a "Top up credits" action. It is added to the team admin that the
studio app registers, so the studio app does not need to know about billing.
"""

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from studio.models import Team

from .forms import TopUpForm
from .models import CreditPack, Hold, LedgerEntry, Price, Purchase, StripeEvent, Wallet
from .services import Refusal, wallet_top_up


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money records are written by billing.services only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """Blank provider and model: the tier's default. A provider (and model) row overrides it."""

    list_display = ["tier", "size", "provider_display", "model_display", "credits"]
    list_editable = ["credits"]
    list_filter = ["tier", "provider"]
    search_fields = ["provider", "model"]
    fields = ["tier", "size", "provider", "model", "credits"]

    @admin.display(description="provider", ordering="provider")
    def provider_display(self, obj):
        return obj.provider or "any"

    @admin.display(description="model", ordering="model")
    def model_display(self, obj):
        return obj.model or "any"


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["name", "credits", "price", "currency", "active"]
    list_editable = ["active"]


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = [
        "team",
        "available",
        "held",
        "frozen",
        "low_balance_threshold",
        "monthly_budget",
    ]
    list_filter = ["frozen"]
    search_fields = ["team__name", "team__slug"]
    fields = [
        "team",
        "available",
        "held",
        "frozen",
        "frozen_reason",
        "low_balance_threshold",
        "monthly_budget",
    ]
    readonly_fields = ["team", "available", "held"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # Never write back the balance read when the form was opened.
        obj.save(
            update_fields=["frozen", "frozen_reason", "low_balance_threshold", "monthly_budget"]
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created",
        "wallet",
        "kind",
        "available_delta",
        "held_delta",
        "member",
        "tier",
        "size",
        "actor",
        "note",
    ]
    list_filter = ["kind", "tier"]
    search_fields = ["wallet__team__name", "idempotency_key", "note"]
    list_select_related = ["wallet__team", "member", "actor"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = [
        "key",
        "wallet",
        "member",
        "tier",
        "size",
        "unit_price",
        "count",
        "captured",
        "released",
    ]
    search_fields = ["key"]


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = [
        "created",
        "wallet",
        "pack",
        "credits",
        "amount",
        "status",
        "amount_refunded",
        "disputed",
    ]
    list_filter = ["status"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received", "event_id", "type"]


@admin.action(description="Top up credits", permissions=["change"])
def top_up_credits(modeladmin, request, queryset):
    """Ask for an amount and a note, then credit each chosen team once."""
    if "apply" in request.POST:
        form = TopUpForm(request.POST)
        if form.is_valid():
            for team in queryset:
                try:
                    wallet_top_up(
                        team=team,
                        amount=form.cleaned_data["amount"],
                        actor=request.user,
                        note=form.cleaned_data["note"],
                        idempotency_key=f"admin:{team.pk}:{form.cleaned_data['request_key']}",
                    )
                except Refusal as refusal:
                    modeladmin.message_user(request, refusal.message, messages.ERROR)
                    return None
            modeladmin.message_user(
                request,
                f"Added {form.cleaned_data['amount']:,} credits to {queryset.count()} team(s).",
                messages.SUCCESS,
            )
            return None
    else:
        form = TopUpForm()
    return TemplateResponse(
        request,
        "billing/admin_top_up.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Top up credits",
            "teams": queryset,
            "form": form,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        },
        status=400 if form.is_bound else 200,
    )


def _add_team_action() -> None:
    team_admin = admin.site.get_model_admin(Team)
    if top_up_credits not in (team_admin.actions or ()):
        team_admin.actions = (*(team_admin.actions or ()), top_up_credits)


_add_team_action()
