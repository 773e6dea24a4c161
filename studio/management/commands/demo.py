"""Create (once) the demo team and its owner, and print how to sign in.

In development (DEBUG on) the demo owner is also site staff, so the first
person to try the studio can add credits on the Billing page and open
/admin/ without creating another account; with DEBUG off it is an owner
like any other.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from studio.models import Membership, Role, Team
from studio.services import team_create

DEMO_TEAM = "Demo Studio"
DEMO_USER = "demo"
DEMO_CREDITS = 50_000


class Command(BaseCommand):
    help = "Create the demo team with an owner account and credits; print the sign-in."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.SITE_URL, help="Where the studio is served.")

    def handle(self, *args, url, **options):
        signin_file = settings.DATA_DIR / "demo-signin.txt"
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.filter(username=DEMO_USER).first()
            if user is None or not signin_file.exists():
                password = secrets.token_urlsafe(12)
                if user is None:
                    user = User.objects.create_user(DEMO_USER, email="demo@localhost")
                user.set_password(password)
                user.save()
                signin_file.write_text(password)
                signin_file.chmod(0o600)
            team = Team.objects.filter(name=DEMO_TEAM, memberships__user=user).first()
            if team is None:
                team = team_create(name=DEMO_TEAM, owner=user)
                self._grant_starting_credits(team, user)
            Membership.objects.filter(team=team, user=user).update(role=Role.OWNER)
            staff = settings.DEBUG
            User.objects.filter(pk=user.pk).update(is_staff=staff, is_superuser=staff)
        password = signin_file.read_text().strip()
        credits = (
            f"  {DEMO_USER} is site staff here (development): add credits on the team's\n"
            f"  Billing page ({url}/t/{team.slug}/billing/) or in {url}/admin/\n"
            if staff
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Contact Sheet is starting at {url}/\n"
                f"  Sign in as  {DEMO_USER}  with password  {password}\n"
                f"  (team: {DEMO_TEAM}; the password is kept in {signin_file})\n"
                f"{credits}"
            )
        )

    def _grant_starting_credits(self, team, user):
        from billing.services import wallet_top_up

        wallet_top_up(
            team=team,
            amount=DEMO_CREDITS,
            actor=user,
            note="Demo credits",
            idempotency_key=f"demo-credits:{team.pk}",
        )
