"""Forms for the billing page and the admin's top-up action."""

import uuid

from django import forms
from django.conf import settings

from .models import MemberCap
from .services import Refusal, parse_top_up_amount


class TopUpForm(forms.Form):
    amount = forms.CharField(label="Credits", max_length=20)
    note = forms.CharField(label="Note", max_length=300)
    # Rendered once with the form: a double submit reuses it and credits once.
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["request_key"].initial = uuid.uuid4().hex
        self.fields["amount"].help_text = f"1 to {settings.TOP_UP_CEILING:,}"

    def clean_amount(self):
        try:
            return parse_top_up_amount(self.cleaned_data["amount"])
        except Refusal as refusal:
            raise forms.ValidationError(refusal.message)

    def clean_note(self):
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError("Say why these credits are given.")
        return note


class CapForm(forms.Form):
    member = forms.ChoiceField()
    period = forms.ChoiceField(choices=MemberCap.Period.choices)
    tier = forms.ChoiceField(
        choices=[("", "All tiers"), ("flash", "Flash"), ("pro", "Pro")], required=False
    )
    credits = forms.IntegerField(
        min_value=0, max_value=10**12, required=False, help_text="Empty removes the cap."
    )

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [(str(user.pk), user.username) for user in members]


class WalletSettingsForm(forms.Form):
    low_balance_threshold = forms.IntegerField(min_value=0, max_value=10**12, label="Warn below")
    monthly_budget = forms.IntegerField(
        min_value=0, max_value=10**12, required=False, label="Team budget a month"
    )

    def __init__(self, *args, budget_editable=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not budget_editable:
            # Read-only, not disabled: the current value is posted back unchanged.
            self.fields["monthly_budget"].widget.attrs["readonly"] = True
            self.fields["monthly_budget"].help_text = "Only the owner changes the budget."


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False)
    member = forms.ChoiceField(required=False)

    def __init__(self, *args, kinds=(), members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", "All kinds"), *kinds]
        self.fields["member"].choices = [("", "Everyone")] + [
            (str(user.pk), user.username) for user in members
        ]
