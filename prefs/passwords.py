"""A changed password revokes the account's API tokens, whichever form or command changed it.

Django calls password_changed() on every entry of AUTH_PASSWORD_VALIDATORS each time a user
is saved with a new password: the admin's forms, `changepassword`, `create_user --password`,
the account page. Hooking in there puts the rule in one place instead of in every door; a door
that offers to keep the tokens saves inside prefs.services.users.keeping_tokens(). It checks
nothing itself, and its help text tells whoever picks a password what will happen.
"""

from __future__ import annotations


class RevokeTokensOnPasswordChange:
    def validate(self, password, user=None):
        return None

    def password_changed(self, password, user=None):
        from prefs.services.users import tokens_revoke_on_password_change

        if user is not None:
            tokens_revoke_on_password_change(user=user)

    def get_help_text(self):
        return "Changing a password signs out the account's API clients: its API tokens are revoked."
