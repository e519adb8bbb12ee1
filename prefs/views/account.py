"""A user's own page: change the password, revoke the API token."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.authtoken.models import Token

from prefs.services.users import token_revoke, user_password_change


class AccountPasswordForm(PasswordChangeForm):
    keep_tokens = forms.BooleanField(
        required=False,
        label="Keep my API tokens",
        help_text="Left unticked, scripts that use this account's API token must get a new one.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def account(request):
    form = AccountPasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        keep = form.cleaned_data["keep_tokens"]
        user_password_change(user=request.user, password=form.cleaned_data["new_password1"], keep_tokens=keep)
        # Other sessions end with the old password; this one stays signed in.
        update_session_auth_hash(request, request.user)
        messages.success(
            request, "Password changed." + ("" if keep else " Your API tokens were revoked.")
        )
        return redirect("prefs-account")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "prefs/account.html", {"form": form, "token": token})


@login_required
@require_POST
def account_token_revoke(request):
    if token_revoke(user=request.user):
        messages.success(request, "Your API token was revoked; clients that used it are refused from now on.")
    else:
        messages.info(request, "You had no API token.")
    return redirect("prefs-account")
