"""Content hashes that identify prompts, texts and pairs independently of database ids."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def messages_hash(messages: list[dict]) -> str:
    return sha256_text(canonical_json([{"role": m["role"], "content": m["content"]} for m in messages]))


def pair_hash(prompt_hash: str, text_a: str, text_b: str) -> str:
    return pair_hash_of_hashes(prompt_hash, sha256_text(text_a), sha256_text(text_b))


def pair_hash_of_hashes(prompt_hash: str, text_hash_a: str, text_hash_b: str) -> str:
    """`pair_hash` from text hashes already at hand (bulk imports hash each text once)."""
    # Unordered: (x, y) and (y, x) are the same pair for duplicate detection.
    first, second = sorted((text_hash_a, text_hash_b))
    return sha256_text(f"{prompt_hash}:{first}:{second}")
