"""Teams and who belongs to them.

A team is a studio workspace; everything a person can see is scoped to the
teams they are a member of. Roles rank owner > admin > member; what each may
do is the table in the README's "Roles" section, enforced by the services.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


# Owners and admins run the team; generation and billing check these same strings.
MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    created = models.DateTimeField(default=timezone.now)
    # Deleting a team closes it rather than dropping its rows: the ledger and
    # Stripe purchases must outlive it (they protect the wallet), so the team
    # keeps its records, loses every member and answers 404 to everyone.
    deleted_at = models.DateTimeField(null=True, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def manages_team(self) -> bool:
        return self.role in MANAGER_ROLES

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InviteQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(used_at__isnull=True, expires__gt=timezone.now())


class Invite(models.Model):
    """A one-time link that adds whoever opens it to a team.

    Only the token's hash is stored, so a database dump cannot be used to
    join a team.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = InviteQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Invite to {self.team} as {self.role}"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(24)

    @staticmethod
    def hash_token(token: str) -> str:
        return _hash_token(token)

    @staticmethod
    def default_expiry():
        return timezone.now() + timedelta(days=settings.INVITE_VALID_DAYS)


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A person's key to one team's API, for scripts and pipelines.

    Only the sha256 of the token is stored; the token itself is shown once
    when it is made. It works only while its person is still a member of
    the team, so leaving a team (or being removed) retires every token.
    """

    PREFIX = "cs_"
    # last_used_at moves at most this often: a busy pipeline should not
    # cost a database write per request.
    TOUCH_SECONDS = 60

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so a person can tell their tokens apart.
    hint = models.CharField(max_length=12)
    created = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…) for {self.team}"

    @classmethod
    def new_token(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def hash_token(token: str) -> str:
        return _hash_token(token)


# Client review lives in its own modules; imported here so its models belong to this app.
from .review.models import (  # noqa: E402, F401
    ReviewComment,
    ReviewEvent,
    ReviewItem,
    ReviewLink,
    ReviewMark,
)
