"""Ids read from query strings and forms."""

from __future__ import annotations

# The largest primary key a 64-bit signed column holds.
MAX_ID = 2**63 - 1


def is_id(raw: object) -> bool:
    """True for a string that can be a database id: ASCII digits, no larger than MAX_ID.

    `str.isdigit()` alone also accepts "²" and other Unicode digits that `int()` refuses, and
    a number past 64 bits makes SQLite raise OverflowError; both used to be 500s.
    """
    return isinstance(raw, str) and raw.isascii() and raw.isdigit() and int(raw) <= MAX_ID


class IdConverter:
    """`<id:name>` in URL patterns: a database id, so a path past 64 bits is a plain 404.

    Django's `<int:...>` matches any run of digits; a key past MAX_ID then reached the database
    and failed there (OverflowError on SQLite, out of range on PostgreSQL) as a 500.
    """

    # At most 19 digits (MAX_ID has 19); to_python refuses the few 19-digit values past it, and
    # Django treats that ValueError as "this pattern does not match".
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(f"{value} is past the largest id")
        return number

    def to_url(self, value) -> str:
        return str(value)
