"""One error shape for the whole API.

`{"detail": "..."}` always; validation problems add `"errors": [{"field", "message"}]` (and
`"line"` for file imports), so clients can point at the exact place.
"""

from __future__ import annotations

import json

from rest_framework import exceptions
from rest_framework.views import exception_handler


def _flatten(detail, prefix: str = "") -> list[dict]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            field = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(value, "" if key == "non_field_errors" else field))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [{"field": prefix, "message": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            out.extend(_flatten(item, f"{prefix}[{index}]"))
        return out
    return [{"field": prefix, "message": str(detail)}]


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, exceptions.ParseError) and isinstance(cause, json.JSONDecodeError):
        # Point at the place in the body, as import errors do: line and column, 1-based.
        response.data = {
            "detail": f"Malformed JSON at line {cause.lineno}, column {cause.colno}: {cause.msg}.",
            "errors": [{"line": cause.lineno, "column": cause.colno, "field": "", "message": cause.msg}],
        }
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        summary = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        response.data = {"detail": f"Invalid input: {summary}", "errors": errors}
    return response
