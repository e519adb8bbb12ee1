"""API token authentication, with the token and its user read in one plain query.

It runs on every API request, so it skips the query building DRF's version repeats each time
(`Token.objects.select_related("user").get(key=...)`); the answers are the same.
"""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from prefs.sql import columns_of, fetch_instance

_USER_BY_KEY_SQL = "SELECT {columns} FROM {user} u JOIN {token} t ON t.user_id = u.{pk} WHERE t.key = %s"


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        user = _user_by_key(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)


def _user_by_key(key: str):
    return fetch_instance(get_user_model(), _user_by_key_sql(), [key])


@functools.cache
def _user_by_key_sql() -> str:
    User = get_user_model()
    return _USER_BY_KEY_SQL.format(
        columns=columns_of(User, "u"), user=User._meta.db_table, token=Token._meta.db_table, pk=User._meta.pk.column
    )
