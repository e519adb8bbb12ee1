"""Log-probabilities of responses, with each prompt computed once for all of its responses.

A *packed row* holds one prompt followed by K responses to it (K = 2 for a DPO pair: chosen and
rejected). A 4-D attention mask lets each response see the prompt and itself but not its
siblings, and the position ids restart after the prompt for every response, so each response's
log-probabilities are exactly those of ``prompt + response`` run alone — but the prompt's tokens
go through the model once instead of K times (on Anthropic HH, prompts are ~76% of a pair's
tokens). The LM head runs only at the positions that predict a response token.

Heavy imports (torch) are fine here: only the engine's training and scoring code imports this
module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tuning.engine.loading import input_device


@dataclass
class PackedBatch:
    """Tensors for one forward pass over packed rows (see the module docstring)."""

    input_ids: torch.Tensor  # [B, T] right-padded
    position_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, 1, T, T] bool, True = may attend
    source_row: torch.Tensor  # [N] batch row of the hidden state that predicts each response token
    source_pos: torch.Tensor  # [N] its position
    targets: torch.Tensor  # [N] the response token ids
    segment: torch.Tensor  # [N] which response (row * K + k) each token belongs to
    num_segments: int
    lengths: torch.Tensor  # [num_segments] response lengths in tokens
    real_tokens: int  # tokens that are not padding

    def to(self, device: str | torch.device) -> PackedBatch:
        moved = {
            name: (value.to(device) if isinstance(value, torch.Tensor) else value)
            for name, value in self.__dict__.items()
        }
        return PackedBatch(**moved)


def pack(
    groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
    *,
    pad_token_id: int,
    share_prompt: bool = True,
) -> PackedBatch:
    """Build one batch from ``(prompt_ids, [response_ids, ...])`` groups.

    Responses are numbered in order (group by group), and that number is their ``segment``.

    With ``share_prompt=False`` every response becomes its own padded row holding its own copy of
    the prompt (plain causal attention): the layout TRL uses, kept for models whose attention
    cannot take a custom mask.
    """
    if not groups or any(not responses for _, responses in groups):
        raise ValueError("a packed batch needs at least one group, each with a response")
    if share_prompt:
        rows = [(list(prompt), [list(r) for r in responses]) for prompt, responses in groups]
    else:
        rows = [(list(prompt), [list(r)]) for prompt, responses in groups for r in responses]

    lengths_per_row = [len(p) + sum(len(r) for r in rs) for p, rs in rows]
    width = max(lengths_per_row)
    batch = len(rows)
    input_ids = torch.full((batch, width), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((batch, width), dtype=torch.long)
    # Segment of each packed position: 0 = prompt, 1..K = response k, -1 = padding.
    segment_of = torch.full((batch, width), -1, dtype=torch.long)
    source_row, source_pos, targets, segment, seg_lengths = [], [], [], [], []
    seg_index = 0
    for b, (prompt, responses) in enumerate(rows):
        p = len(prompt)
        input_ids[b, :p] = torch.tensor(prompt, dtype=torch.long)
        position_ids[b, :p] = torch.arange(p)
        segment_of[b, :p] = 0
        start = p
        for number, response in enumerate(responses, start=1):
            n = len(response)
            input_ids[b, start : start + n] = torch.tensor(response, dtype=torch.long)
            position_ids[b, start : start + n] = torch.arange(p, p + n)
            segment_of[b, start : start + n] = number
            # Token t of a response is predicted by the hidden state just before it: the prompt's
            # last token for t = 0, the response's previous token after that.
            for t in range(n):
                source_row.append(b)
                source_pos.append(p - 1 if t == 0 else start + t - 1)
            targets.extend(response)
            segment.extend([seg_index] * n)
            seg_lengths.append(n)
            seg_index += 1
            start += n

    query = segment_of.unsqueeze(2)  # [B, T, 1]
    key = segment_of.unsqueeze(1)  # [B, 1, T]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    # A token sees earlier tokens of the prompt and of its own response, never a sibling's.
    visible = (key == 0) | (key == query)
    mask = causal & visible & (key >= 0) & (query >= 0)
    # A padding query attends to itself only, so its softmax has something to normalise.
    mask |= torch.eye(width, dtype=torch.bool) & (query < 0)
    return PackedBatch(
        input_ids=input_ids,
        position_ids=position_ids,
        attention_mask=mask.unsqueeze(1),
        source_row=torch.tensor(source_row, dtype=torch.long),
        source_pos=torch.tensor(source_pos, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        segment=torch.tensor(segment, dtype=torch.long),
        num_segments=seg_index,
        lengths=torch.tensor(seg_lengths, dtype=torch.long),
        real_tokens=int(sum(lengths_per_row)),
    )


def backbone_and_head(model: Any) -> tuple[Any, Any]:
    """The transformer body and the LM head of a causal LM, looking through a PeftModel."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(base, base.base_model_prefix)
    return body, base.get_output_embeddings()


def _mask_for(model: Any, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    implementation = getattr(model.config, "_attn_implementation", "sdpa")
    if implementation == "sdpa":
        return mask
    # Eager attention adds the mask to the scores: 0 where allowed, the dtype's minimum elsewhere.
    additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return additive.masked_fill(~mask, torch.finfo(dtype).min)


def hidden_at_sources(model: Any, batch: PackedBatch) -> torch.Tensor:
    """Final hidden states at the positions that predict response tokens -> [N, hidden]."""
    body, _ = backbone_and_head(model)
    dtype = next(model.parameters()).dtype
    outputs = body(
        input_ids=batch.input_ids,
        attention_mask=_mask_for(model, batch.attention_mask, dtype),
        position_ids=batch.position_ids,
        use_cache=False,
    )
    hidden = outputs.last_hidden_state
    # On a model split over cards the last layer may sit on another card than the input.
    return hidden[batch.source_row.to(hidden.device), batch.source_pos.to(hidden.device)]


def response_logits(model: Any, batch: PackedBatch) -> torch.Tensor:
    """Next-token logits (fp32) at each response token's position -> [N, vocab]."""
    _, head = backbone_and_head(model)
    return head(hidden_at_sources(model, batch)).float()


# Without gradients, the LM head runs over at most this many positions at a time, so scoring many
# long responses never holds more than ~0.8 GB of fp32 logits (4096 x 49152 vocabulary).
_HEAD_CHUNK = 4096


def sequence_logps(model: Any, batch: PackedBatch) -> torch.Tensor:
    """Summed log-probability of every response in the batch -> [num_segments] (fp32)."""
    if torch.is_grad_enabled() or batch.targets.numel() <= _HEAD_CHUNK:
        logits = response_logits(model, batch)
        token_logps = -F.cross_entropy(logits, batch.targets.to(logits.device), reduction="none")
    else:
        _, head = backbone_and_head(model)
        hidden = hidden_at_sources(model, batch)
        chunks = []
        for i in range(0, hidden.shape[0], _HEAD_CHUNK):
            logits = head(hidden[i : i + _HEAD_CHUNK]).float()
            targets = batch.targets[i : i + _HEAD_CHUNK].to(logits.device)
            chunks.append(-F.cross_entropy(logits, targets, reduction="none"))
        token_logps = torch.cat(chunks)
    sums = torch.zeros(batch.num_segments, dtype=token_logps.dtype, device=token_logps.device)
    return sums.index_add(0, batch.segment.to(token_logps.device), token_logps)


def supports_shared_prompt(model: Any) -> bool:
    """Whether the model's attention takes the custom 4-D mask prompt sharing needs."""
    implementation = getattr(model.config, "_attn_implementation", "sdpa")
    return implementation in ("sdpa", "eager")


def length_grouped(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (longest first), so little of a batch is padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def pair_logps(
    model: Any,
    pairs: Sequence[Any],
    *,
    pad_token_id: int,
    batch_size: int = 8,
    share_prompt: bool = True,
    on_batch: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of each pair's chosen and rejected response -> two [len(pairs)] tensors.

    ``pairs`` are EncodedPair-like (``prompt``, ``chosen``, ``rejected`` id lists). ``on_batch``
    is called after each batch with (done, total) — the caller's hook for progress and stopping.
    """
    device = input_device(model)
    chosen = torch.zeros(len(pairs), dtype=torch.float32)
    rejected = torch.zeros(len(pairs), dtype=torch.float32)
    batches = length_grouped([p.packed_length for p in pairs], batch_size)
    for number, indices in enumerate(batches, start=1):
        groups = [(pairs[i].prompt, [pairs[i].chosen, pairs[i].rejected]) for i in indices]
        batch = pack(groups, pad_token_id=pad_token_id, share_prompt=share_prompt).to(device)
        logps = sequence_logps(model, batch).cpu()
        chosen[indices] = logps[0::2]
        rejected[indices] = logps[1::2]
        if on_batch is not None:
            on_batch(number, len(batches))
    return chosen, rejected
