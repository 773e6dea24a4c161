from django.contrib import admin

from .models import ApiToken, Invite, Membership, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created", "deleted_at"]
    list_filter = [("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["team", "role", "created_by", "created", "expires", "used_at"]
    exclude = ["token_hash"]
    readonly_fields = ["used_at", "used_by"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens can be seen and revoked here; the secret itself is never stored."""

    list_display = ["name", "user", "team", "hint", "created", "last_used_at", "revoked_at"]
    list_filter = ["team"]
    search_fields = ["name", "user__username", "hint"]
    exclude = ["token_hash"]
    readonly_fields = ["user", "team", "hint", "created", "last_used_at"]

    def has_add_permission(self, request):
        return False  # tokens are made by their owners, who see the secret once
