from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from .models import Role


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=[(Role.MEMBER, "Member"), (Role.ADMIN, "Admin")])


class SignUpForm(UserCreationForm):
    class Meta:
        model = get_user_model()
        fields = ("username", "email")
