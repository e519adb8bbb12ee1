"""Conversations as token ids: validating messages, applying the chat template, encoding rows.

Preference rows arrive in the ``trl-conversational`` shape: ``{"prompt": [messages], "chosen":
[assistant message], "rejected": [assistant message]}`` with an optional ``"weight"``. A response
is encoded the way TRL does it: the tokens that ``prompt + response`` adds after the prompt
rendered with its generation prompt, end-of-turn token included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuning.engine.errors import BadInput

ROLES = ("system", "user", "assistant", "tool")
TRUNCATION_MODES = ("truncate", "drop", "error")


def check_messages(messages: Any, where: str) -> list[dict]:
    """A list of ``{"role", "content"}`` messages, or BadInput saying what is wrong and where."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, list) or not messages:
        raise BadInput(f"{where}: expected a non-empty list of messages, got {type(messages).__name__}")
    clean = []
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise BadInput(f"{where}, message {number}: expected {{'role', 'content'}}, got {message!r:.80}")
        if message["role"] not in ROLES:
            raise BadInput(f"{where}, message {number}: unknown role {message['role']!r}")
        if not isinstance(message["content"], str):
            raise BadInput(f"{where}, message {number}: content must be text")
        clean.append({"role": message["role"], "content": message["content"]})
    return clean


def check_response(response: Any, where: str) -> list[dict]:
    """One assistant message (a bare string is accepted as its text)."""
    if isinstance(response, str):
        return [{"role": "assistant", "content": response}]
    messages = check_messages(response, where)
    if messages[-1]["role"] != "assistant":
        raise BadInput(f"{where}: the response must end with an assistant message")
    return messages


def with_system_prompt(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """Put ``system_prompt`` first; an existing system message keeps its text after it."""
    if not system_prompt:
        return messages
    if messages and messages[0]["role"] == "system":
        merged = f"{system_prompt}\n\n{messages[0]['content']}"
        return [{"role": "system", "content": merged}, *messages[1:]]
    return [{"role": "system", "content": system_prompt}, *messages]


def template_ids(tokenizer: Any, messages: list[dict], *, add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=add_generation_prompt
    )
    return list(encoded["input_ids"])


def prompt_ids(tokenizer: Any, messages: list[dict]) -> list[int]:
    """The prompt rendered up to the start of the assistant's answer."""
    return template_ids(tokenizer, messages, add_generation_prompt=True)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def split_completion(tokenizer: Any, prompt: list[dict], response: list[dict]) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) such that prompt + response renders the whole conversation.

    As in TRL, the response starts where the rendered prompt and the rendered conversation
    diverge, which is after the prompt for well-behaved templates.
    """
    p_ids = prompt_ids(tokenizer, prompt)
    full = template_ids(tokenizer, prompt + response, add_generation_prompt=False)
    cut = _common_prefix(p_ids, full)
    return p_ids[:cut], full[cut:]


def check_rows_present(rows: Any, what: str = "preference set") -> None:
    """BadInput unless ``rows`` is a non-empty list (checked before any model is loaded)."""
    if not isinstance(rows, list):
        raise BadInput(f"the {what} must be a list of rows, got {type(rows).__name__}")
    if not rows:
        raise BadInput(f"the {what} is empty: there is nothing to train or evaluate on")


@dataclass
class EncodedPair:
    """One preference row as token ids; ``index`` is its position in the caller's list."""

    index: int
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    weight: float = 1.0

    @property
    def packed_length(self) -> int:
        """Tokens in the prompt-shared packing: the prompt once, then both responses."""
        return len(self.prompt) + len(self.chosen) + len(self.rejected)


@dataclass
class EncodeReport:
    rows: int = 0
    kept: int = 0
    truncated: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "kept": self.kept,
            "truncated": len(self.truncated),
            "dropped": len(self.dropped),
            "truncated_rows": self.truncated[:50],
            "dropped_rows": self.dropped[:50],
        }


def encode_pairs(
    tokenizer: Any,
    rows: list[dict],
    *,
    max_length: int | None,
    truncation: str = "truncate",
    what: str = "preference set",
) -> tuple[list[EncodedPair], EncodeReport]:
    """Validate and encode preference rows.

    A row whose prompt + response exceeds ``max_length`` tokens is, by ``truncation``:
    "truncate" — the response is cut to fit (TRL's keep-start); a row whose prompt alone fills
    ``max_length`` cannot be cut and is dropped; "drop" — the row is left out; "error" — BadInput
    naming the rows. The report counts what happened so the caller can show it.
    """
    if truncation not in TRUNCATION_MODES:
        raise BadInput(f"truncation must be one of {', '.join(TRUNCATION_MODES)}, got {truncation!r}")
    check_rows_present(rows, what)
    report = EncodeReport(rows=len(rows))
    pairs: list[EncodedPair] = []
    too_long: list[tuple[int, int]] = []
    for index, row in enumerate(rows):
        where = f"{what}, row {index}"
        if not isinstance(row, dict) or not {"prompt", "chosen", "rejected"} <= set(row):
            raise BadInput(f"{where}: expected keys 'prompt', 'chosen' and 'rejected'")
        prompt = check_messages(row["prompt"], f"{where}, prompt")
        chosen = check_response(row["chosen"], f"{where}, chosen")
        rejected = check_response(row["rejected"], f"{where}, rejected")
        weight = float(row.get("weight", 1.0) if row.get("weight") is not None else 1.0)
        if not weight >= 0:
            raise BadInput(f"{where}: weight must be a number >= 0, got {row.get('weight')!r}")
        p_chosen, c_ids = split_completion(tokenizer, prompt, chosen)
        p_rejected, r_ids = split_completion(tokenizer, prompt, rejected)
        # Both responses continue the same prompt tokens (the shorter common prefix, like TRL).
        cut = min(len(p_chosen), len(p_rejected))
        p_ids = p_chosen[:cut]
        c_ids = p_chosen[cut:] + c_ids
        r_ids = p_rejected[cut:] + r_ids
        if not c_ids or not r_ids:
            raise BadInput(f"{where}: a response is empty after tokenisation")
        longest = len(p_ids) + max(len(c_ids), len(r_ids))
        if max_length is not None and longest > max_length:
            too_long.append((index, longest))
            if truncation == "drop" or len(p_ids) >= max_length:
                report.dropped.append(index)
                continue
            if truncation == "truncate":
                room = max_length - len(p_ids)
                c_ids, r_ids = c_ids[:room], r_ids[:room]
                report.truncated.append(index)
        pairs.append(EncodedPair(index, p_ids, c_ids, r_ids, weight))
    if truncation == "error" and too_long:
        listed = ", ".join(f"row {i} ({n} tokens)" for i, n in too_long[:10])
        more = f" and {len(too_long) - 10} more" if len(too_long) > 10 else ""
        raise BadInput(
            f"{len(too_long)} row(s) of the {what} are longer than max_length={max_length} tokens: "
            f"{listed}{more}; raise max_length or choose truncation 'truncate' or 'drop'"
        )
    if not pairs:
        raise BadInput(
            f"the {what} is empty after dropping {len(report.dropped)} row(s) longer than "
            f"max_length={max_length} tokens"
        )
    report.kept = len(pairs)
    return pairs, report
