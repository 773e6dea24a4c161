"""Sign-in, sign-out, joining through an invite."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import throttle
from ..forms import SignUpForm
from ..services import InviteError, invite_accept, invite_find


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


class SignInView(LoginView):
    """Django's login view, throttled per address and per username."""

    template_name = "studio/signin.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = (request.POST.get("username") or "").strip().lower()[:150]
        try:
            throttle.hit(
                "signin-ip", _client_ip(request), limit=settings.SIGNIN_ATTEMPTS_PER_MINUTE * 4
            )
            throttle.hit("signin-user", username, limit=settings.SIGNIN_ATTEMPTS_PER_MINUTE)
        except throttle.Throttled as refusal:
            form = self.get_form()
            form.errors.clear()
            response = render(
                request,
                self.template_name,
                {"form": form, "throttle_message": refusal.message},
                status=429,
            )
            response["Retry-After"] = str(refusal.retry_after)
            return response
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            throttle.clear("signin-user", username)
        return response


@require_http_methods(["GET", "POST"])
def invite_join(request, token: str):
    try:
        invite = invite_find(token)
    except InviteError as error:
        return render(request, "studio/invite.html", {"error": str(error)}, status=404)

    if request.user.is_authenticated:
        if request.method == "POST":
            return _accept(request, token)
        return render(request, "studio/invite.html", {"invite": invite})

    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return _accept(request, token)
    return render(request, "studio/invite.html", {"invite": invite, "form": form})


def _accept(request, token):
    try:
        membership = invite_accept(token=token, user=request.user)
    except InviteError as error:
        return render(request, "studio/invite.html", {"error": str(error)}, status=410)
    messages.success(request, f"Welcome to {membership.team.name}.")
    return redirect("team", slug=membership.team.slug)
