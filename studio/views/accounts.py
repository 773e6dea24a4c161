"""Sign-in, sign-out, joining through an invite."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ..forms import PasswordChangeWithLimitsForm, SignInForm, SignUpForm
from ..services import InviteError, invite_accept, invite_find


def refused_when_throttled(response):
    """Answer 429 with Retry-After when a sign-in form was refused by a limit.

    Both sign-in pages (ours and the admin's) are Django's LoginView, whose
    refusal is a TemplateResponse with the form still in its context.
    """
    form = (getattr(response, "context_data", None) or {}).get("form")
    refusal = getattr(form, "refusal", None)
    if refusal is not None:
        response.status_code = 429
        response["Retry-After"] = str(refusal.retry_after)
    return response


class SignInView(LoginView):
    """Django's login view, with the sign-in limits of studio/throttle.py."""

    template_name = "studio/signin.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        return refused_when_throttled(super().post(request, *args, **kwargs))


class PasswordChange(PasswordChangeView):
    """Django's password change. Its form_valid keeps this session signed in
    (update_session_auth_hash); every other session of the person ends,
    because Django checks each session's copy of the password hash on use."""

    template_name = "studio/password.html"
    form_class = PasswordChangeWithLimitsForm
    success_url = "/account/password/done/"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def post(self, request, *args, **kwargs):
        return refused_when_throttled(super().post(request, *args, **kwargs))


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
