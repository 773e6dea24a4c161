"""Roles: what an owner, an admin, a member and a stranger may do to a team.

The matrix below is the README's "Roles" table, tried through the pages:
each action is posted by each persona against a thing that is not theirs
(a teammate's project, grid and images; another admin; the owner), and
either it is done or it is refused (403 with a reason, 404 for a
stranger) with nothing changed. The services enforce it; the pages only
pass the refusal on.
"""

import html
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.urls import reverse

from billing.models import MemberCap, Wallet
from billing.selectors import wallet_balance
from billing.services import member_cap_set
from generation.models import Batch, Generation, Project, Status
from studio.api.tokens import api_token_create
from studio.models import ApiToken, Invite, Membership, Role, Team
from studio.services import invite_create
from tests.conftest import make_user
from tests.gallery.conftest import fund, submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    # Twenty accounts a test: hashing at full strength would be most of the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    """A funded team: owner olivia, admins ada and abe, members theo and mia.

    mia made a project and a queued grid in it (two images, one archived);
    the owner set a cap on ada and left a member invite pending.
    """

    team: Team
    people: dict
    project: Project
    batch: Batch
    image: Generation
    archived_image: Generation
    invite: Invite


def _member(team, username, role):
    user = make_user(username)
    Membership.objects.create(team=team, user=user, role=role)
    return user


@pytest.fixture
def world(owner, team, teammate, stranger) -> World:
    ada = _member(team, "ada", Role.ADMIN)
    abe = _member(team, "abe", Role.ADMIN)
    mia = _member(team, "mia", Role.MEMBER)
    fund(team, owner)
    project = Project.objects.create(team=team, name="Mia's board", created_by=mia)
    batch = submit(team, mia, project, count=2)
    image, archived_image = batch.generations.order_by("index")
    Generation.objects.filter(pk=archived_image.pk).update(archived=True)
    member_cap_set(team=team, member=ada, period="month", tier="", credits=5_000)
    invite_create(team=team, created_by=owner)
    people = {"owner": owner, "admin": ada, "member": teammate, "stranger": stranger}
    people.update(ada=ada, abe=abe, mia=mia)
    return World(team, people, project, batch, image, archived_image, Invite.objects.get())


def _membership(world, name):
    return Membership.objects.get(team=world.team, user=world.people[name])


def _role(world, name):
    return Membership.objects.filter(team=world.team, user=world.people[name]).first()


@dataclass(frozen=True)
class Action:
    name: str
    request: Callable[[World], tuple[str, dict]]
    done: Callable[[World], bool]
    allowed: frozenset
    # What the 403 says to the highest refused role (an admin where only the
    # owner may, a member where admins may); lower roles are told it is the owner's.
    refusal: str


OWNER = frozenset({"owner"})
MANAGERS = frozenset({"owner", "admin"})
NOBODY = frozenset()


def _url(name, world, *args):
    return reverse(name, args=[world.team.slug, *args])


ACTIONS = [
    Action(
        "rename a teammate's project",
        lambda w: (_url("project-rename", w, w.project.pk), {"name": "Renamed"}),
        lambda w: Project.objects.get(pk=w.project.pk).name == "Renamed",
        MANAGERS,
        "or the person who made it",
    ),
    Action(
        "archive a teammate's project",
        lambda w: (_url("project-archive", w, w.project.pk), {"archived": "1"}),
        lambda w: Project.objects.get(pk=w.project.pk).archived,
        MANAGERS,
        "or the person who made it",
    ),
    Action(
        "cancel a teammate's grid",
        lambda w: (_url("batch-cancel", w, w.batch.pk), {}),
        lambda w: w.batch.generations.filter(status=Status.CANCELED).exists(),
        MANAGERS,
        "only your own grids",
    ),
    Action(
        "archive a teammate's image",
        lambda w: (_url("images-archive", w), {"ids": [w.image.pk]}),
        lambda w: Generation.objects.get(pk=w.image.pk).archived,
        MANAGERS,
        "only your own images",
    ),
    Action(
        "restore a teammate's archived image",
        lambda w: (_url("images-restore", w), {"ids": [w.archived_image.pk]}),
        lambda w: not Generation.objects.get(pk=w.archived_image.pk).archived,
        MANAGERS,
        "only your own images",
    ),
    Action(
        "invite a member",
        lambda w: (_url("team-invite", w), {"role": "member"}),
        lambda w: Invite.objects.filter(team=w.team).count() == 2,
        MANAGERS,
        "and admins",
    ),
    Action(
        "invite an admin",
        lambda w: (_url("team-invite", w), {"role": "admin"}),
        lambda w: Invite.objects.filter(team=w.team, role=Role.ADMIN).exists(),
        OWNER,
        "owner",
    ),
    Action(
        "withdraw a pending invite",
        lambda w: (_url("invite-revoke", w, w.invite.pk), {}),
        lambda w: not Invite.objects.filter(pk=w.invite.pk).exists(),
        MANAGERS,
        "and admins",
    ),
    Action(
        "remove a member",
        lambda w: (_url("member-remove", w, _membership(w, "mia").pk), {}),
        lambda w: _role(w, "mia") is None,
        MANAGERS,
        "and admins",
    ),
    Action(
        "remove another admin",
        lambda w: (_url("member-remove", w, _membership(w, "abe").pk), {}),
        lambda w: _role(w, "abe") is None,
        OWNER,
        "owner",
    ),
    Action(
        "remove the owner",
        lambda w: (_url("member-remove", w, _membership(w, "owner").pk), {}),
        lambda w: _role(w, "owner") is None,
        NOBODY,
        "",
    ),
    Action(
        "make a member an admin",
        lambda w: (_url("member-role", w, _membership(w, "mia").pk), {"role": "admin"}),
        lambda w: _role(w, "mia").role == Role.ADMIN,
        OWNER,
        "owner can change roles",
    ),
    Action(
        "make an admin a member",
        lambda w: (_url("member-role", w, _membership(w, "abe").pk), {"role": "member"}),
        lambda w: _role(w, "abe").role == Role.MEMBER,
        OWNER,
        "owner can change roles",
    ),
    Action(
        "transfer ownership",
        lambda w: (_url("owner-transfer", w, _membership(w, "mia").pk), {}),
        lambda w: _role(w, "mia").role == Role.OWNER,
        OWNER,
        "owner can transfer ownership",
    ),
    Action(
        "delete the team",
        lambda w: (_url("team-delete", w), {"confirmation": w.team.name}),
        lambda w: Team.objects.get(pk=w.team.pk).deleted_at is not None,
        OWNER,
        "owner can delete the team",
    ),
    Action(
        "cap a member",
        lambda w: (
            _url("billing-caps", w),
            {"member": w.people["mia"].pk, "period": "day", "tier": "", "credits": "100"},
        ),
        lambda w: MemberCap.objects.filter(member=w.people["mia"]).exists(),
        MANAGERS,
        "and admins",
    ),
    Action(
        "cap another admin",
        lambda w: (
            _url("billing-caps", w),
            {"member": w.people["abe"].pk, "period": "day", "tier": "", "credits": "100"},
        ),
        lambda w: MemberCap.objects.filter(member=w.people["abe"]).exists(),
        OWNER,
        "limits for members only",
    ),
    Action(
        "cap the owner at 0",
        lambda w: (
            _url("billing-caps", w),
            {"member": w.people["owner"].pk, "period": "day", "tier": "", "credits": "0"},
        ),
        lambda w: MemberCap.objects.filter(member=w.people["owner"]).exists(),
        OWNER,
        "limits for members only",
    ),
    Action(
        "lift the cap the owner set on an admin",
        lambda w: (
            _url("billing-caps", w),
            {"member": w.people["ada"].pk, "period": "month", "tier": "", "credits": ""},
        ),
        lambda w: not MemberCap.objects.filter(member=w.people["ada"]).exists(),
        OWNER,
        "limits for members only",
    ),
    Action(
        "set the team budget to 0",
        lambda w: (
            _url("billing-settings", w),
            {"low_balance_threshold": "5000", "monthly_budget": "0"},
        ),
        lambda w: Wallet.objects.get(team=w.team).monthly_budget == 0,
        OWNER,
        "owner can change the team's monthly budget",
    ),
    Action(
        "move the low-balance alert",
        lambda w: (_url("billing-settings", w), {"low_balance_threshold": "1234"}),
        lambda w: Wallet.objects.get(team=w.team).low_balance_threshold == 1234,
        MANAGERS,
        "and admins",
    ),
]
PERSONAS = ["owner", "admin", "member", "stranger"]


@pytest.mark.parametrize(
    ("action", "persona"),
    [(action, persona) for action in ACTIONS for persona in PERSONAS],
    ids=[f"{action.name} as {persona}" for action in ACTIONS for persona in PERSONAS],
)
def test_role_matrix(action, persona, world, client_for):
    url, data = action.request(world)
    response = client_for(world.people[persona]).post(url, data)
    if persona == "stranger":
        assert response.status_code == 404
    elif persona in action.allowed:
        assert response.status_code == 302, response.content.decode()[:500]
    else:
        assert response.status_code == 403
        first_refused = "admin" if action.allowed == OWNER else "member"
        expected = action.refusal if persona == first_refused or not action.allowed else "owner"
        assert expected in html.unescape(response.content.decode())
    assert action.done(world) == (persona in action.allowed)


def test_the_admin_cannot_cap_themselves_off_either(world):
    from django.core.exceptions import PermissionDenied

    ada = world.people["ada"]
    with pytest.raises(PermissionDenied, match="members only"):
        member_cap_set(
            team=world.team, member=ada, period="month", tier="", credits=10**9, actor=ada
        )
    assert MemberCap.objects.get(member=ada).credits == 5_000


# --- a member changes what is theirs ---------------------------------------------------


def test_a_member_renames_archives_and_restores_their_own_project(world, client_for):
    theo = world.people["member"]
    client = client_for(theo)
    mine = Project.objects.create(team=world.team, name="Theo's board", created_by=theo)
    assert (
        client.post(_url("project-rename", world, mine.pk), {"name": "Lookbook"}).status_code == 302
    )
    assert (
        client.post(_url("project-archive", world, mine.pk), {"archived": "1"}).status_code == 302
    )
    assert (
        client.post(_url("project-archive", world, mine.pk), {"archived": "0"}).status_code == 302
    )
    mine.refresh_from_db()
    assert (mine.name, mine.archived) == ("Lookbook", False)


def test_a_member_cancels_and_archives_their_own_grid(world, client_for):
    theo = world.people["member"]
    batch = submit(world.team, theo, world.project, count=2)
    client = client_for(theo)
    ids = list(batch.generations.values_list("pk", flat=True))
    assert client.post(_url("images-archive", world), {"ids": ids}).status_code == 302
    assert batch.generations.filter(archived=True).count() == 2
    assert client.post(_url("batch-cancel", world, batch.pk), {}).status_code == 302
    assert set(batch.generations.values_list("status", flat=True)) == {Status.CANCELED}


def test_a_selection_with_one_teammate_image_is_refused_whole(world, client_for):
    theo = world.people["member"]
    mine = submit(world.team, theo, world.project, count=2)
    ids = [*mine.generations.values_list("pk", flat=True), world.image.pk]
    response = client_for(theo).post(_url("images-archive", world), {"ids": ids}, **HTMX)
    assert response.status_code == 403
    assert response["HX-Reswap"] == "none"
    body = response.content.decode()
    assert 'id="messages" hx-swap-oob' in body and "1 of these is a teammate&#x27;s" in body
    assert not Generation.objects.filter(pk__in=ids, archived=True).exists()


# --- archived images come back ----------------------------------------------------------


def test_archived_images_are_listed_and_restored(owner, world, client_for):
    client = client_for(owner)
    history = _url("history", world)
    assert client.post(_url("images-archive", world), {"ids": [world.image.pk]}).status_code == 302
    page = client.get(history, {"archived": "1"}).content.decode()
    assert "Archived images" in page and "Restore</button>" in page
    assert f'id="tile-{world.image.pk}"' in page and f'id="tile-{world.archived_image.pk}"' in page

    ids = [world.image.pk, world.archived_image.pk]
    response = client.post(_url("images-restore", world), {"ids": ids}, **HTMX)
    body = response.content.decode()
    assert "2 images restored" in body
    assert all(f'id="tile-{pk}" hx-swap-oob="delete"' in body for pk in ids)
    assert not Generation.objects.filter(pk__in=ids, archived=True).exists()
    grid = client.get(_url("project", world, world.project.pk)).content.decode()
    assert all(f'id="tile-{pk}"' in grid for pk in ids)
    project_page = client.get(_url("project", world, world.project.pk)).content.decode()
    assert f'href="{history}?archived=1"' in project_page


# --- managing the team --------------------------------------------------------------------


def test_removing_a_member_cancels_their_queued_images_and_releases_the_credits(
    owner, world, client_for
):
    mia = world.people["mia"]
    token = api_token_create(user=mia, team=world.team, name="pipeline")[0]
    second = submit(world.team, mia, None, count=3)
    theirs = Generation.objects.filter(member=mia)
    available, held = wallet_balance(world.team)
    assert held == 5 * 67 and theirs.filter(status=Status.QUEUED).count() == 5

    client = client_for(owner)
    response = client.post(_url("member-remove", world, _membership(world, "mia").pk))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "mia was removed from the team. 5 of their queued images were canceled" in page
    assert wallet_balance(world.team) == (available + held, 0)
    assert set(theirs.values_list("status", flat=True)) == {Status.CANCELED}
    assert (
        Batch.objects.filter(pk__in=[world.batch.pk, second.pk]).exclude(canceled_at=None).count()
        == 2
    )
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert client_for(mia).get(_url("team", world)).status_code == 404
    call_command("reconcile")


def test_ownership_moves_and_the_old_owner_stays_an_admin(owner, world, client_for):
    mia = world.people["mia"]
    client_for(owner).post(_url("owner-transfer", world, _membership(world, "mia").pk))
    assert _role(world, "mia").role == Role.OWNER
    assert _role(world, "owner").role == Role.ADMIN
    assert Membership.objects.filter(team=world.team, role=Role.OWNER).count() == 1
    # The old owner now has an admin's rights only.
    refused = client_for(owner).post(
        _url("member-role", world, _membership(world, "abe").pk), {"role": "member"}
    )
    assert refused.status_code == 403
    page = client_for(mia).get(_url("team-members", world)).content.decode()
    assert "Delete this team" in page and "Make admin" in page


def test_pending_invites_are_listed_and_withdrawn(owner, world, client_for):
    page = client_for(owner).get(_url("team-members", world)).content.decode()
    assert f'id="invite-{world.invite.pk}"' in page and "Withdraw" in page
    member_page = client_for(world.people["member"]).get(_url("team-members", world))
    assert "Pending invites" not in member_page.content.decode()

    client_for(world.people["admin"]).post(_url("invite-revoke", world, world.invite.pk))
    assert not Invite.objects.exists()


def test_members_page_offers_each_role_its_controls(owner, world, client_for):
    def controls(persona):
        return client_for(world.people[persona]).get(_url("team-members", world)).content.decode()

    owner_page, admin_page, member_page = controls("owner"), controls("admin"), controls("member")
    assert owner_page.count(">Remove</button>") == 4  # everyone but the owner
    assert "Make owner" in owner_page and '<select name="role"' in owner_page
    assert admin_page.count(">Remove</button>") == 2  # the two members
    assert "Make admin" not in admin_page and "Make owner" not in admin_page
    assert "Admin invites are the owner" in admin_page and "Delete this team" not in admin_page
    assert ">Remove</button>" not in member_page and "Invite someone" not in member_page


def test_deleting_a_team_needs_its_name_and_forfeits_the_credits(owner, world, client_for):
    client = client_for(owner)
    page = client.get(_url("team-members", world)).content.decode()
    available, held = wallet_balance(world.team)
    assert f"The {available + held:,} credits left in its wallet are forfeited" in page
    assert "not refunded" in page

    wrong = client.post(_url("team-delete", world), {"confirmation": "northlight"})
    assert wrong.status_code == 403 and "Type the team" in wrong.content.decode()
    assert Team.objects.get(pk=world.team.pk).deleted_at is None

    response = client.post(_url("team-delete", world), {"confirmation": world.team.name})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    team = Team.objects.get(pk=world.team.pk)
    assert team.deleted_at is not None and not team.memberships.exists()
    assert not Invite.objects.filter(team=team).exists()
    wallet = Wallet.objects.get(team=team)
    assert wallet.frozen and wallet.held == 0 and wallet.available == available + held
    assert not Generation.objects.filter(team=team, status=Status.QUEUED).exists()
    for persona in ("owner", "admin", "member"):
        assert client_for(world.people[persona]).get(_url("team", world)).status_code == 404
    call_command("reconcile")


def test_a_submit_that_outlives_its_membership_is_refused(world):
    from generation.services import SubmitRefused

    mia = world.people["mia"]
    Membership.objects.filter(team=world.team, user=mia).delete()
    with pytest.raises(SubmitRefused, match="no longer a member"):
        submit(world.team, mia, world.project, count=1)
    assert Generation.objects.filter(member=mia).count() == 2
