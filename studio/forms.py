from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, UserCreationForm
from django.core.exceptions import ValidationError

from . import throttle
from .models import Role


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)


class RoleForm(forms.Form):
    """The role for an invite or a member: ownership moves only by transfer."""

    role = forms.ChoiceField(choices=[(Role.MEMBER, "Member"), (Role.ADMIN, "Admin")])


class SignUpForm(UserCreationForm):
    class Meta:
        model = get_user_model()
        fields = ("username", "email")


class PasswordLimits:
    """Counts a password check against the sign-in limits in studio/throttle.py
    before the password is checked. A refused attempt is a form error, with
    the refusal kept in `refusal` for the view to answer 429 and Retry-After.
    """

    refusal: throttle.Throttled | None = None

    def counted(self, username: str, check):
        """`check()` (which raises for a wrong password) as one attempt of `username`."""
        address = throttle.client_address(self.request)
        try:
            throttle.signin_attempt(username=username, address=address)
        except throttle.Throttled as refusal:
            self.refusal = refusal
            raise ValidationError(refusal.message, code="throttled") from None
        checked = check()
        throttle.signin_succeeded(username=username, address=address)
        return checked


class ThrottledSignIn(PasswordLimits):
    """The site's sign-in and the admin's, so neither is a way around the other."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        return self.counted(username, super().clean)


class SignInForm(ThrottledSignIn, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignIn, AdminAuthenticationForm):
    pass


class OldPasswordLimits(PasswordLimits):
    """Makes a password change's old-password check count as a sign-in
    attempt: a stolen session must not be a way to guess the password (and,
    with it, change it and end every other session)."""

    def __init__(self, user, *args, request, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        return self.counted(self.user.get_username(), super().clean_old_password)


class PasswordChangeWithLimitsForm(OldPasswordLimits, PasswordChangeForm):
    pass


class AdminPasswordChangeWithLimitsForm(OldPasswordLimits, AdminPasswordChangeForm):
    pass
