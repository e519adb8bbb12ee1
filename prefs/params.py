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
