"""Supervised fine-tuning (SFT): learn to answer, not to write the question.

A chat example is one token sequence (labkit.chat). Trained as plain text,
the model would spend most of its loss on the user's passage and question.
SFT takes the loss only where the assistant speaks: every other target is
set to ``IGNORE_INDEX`` (-100), the value ``F.cross_entropy`` skips by
default, so labkit.train's ordinary loss (``lm_loss``) becomes the masked
one with no change. ``masked_lm_loss`` writes that mean out: the sum of the
answer tokens' cross-entropies over their number, in the whole batch (a long
answer weighs more than a short one).

Batches are padded, not packed: each row is one conversation, padded on the
right with ``<|end|>`` up to the longest row of the batch, and every padded
target is IGNORE_INDEX. Right padding needs no attention mask: under the
causal mask a real token only reads tokens before it, never the padding
after it (tested), and the padding's own predictions are ignored. Packing
several conversations into one row would let them attend to each other,
which labkit's GPT has no mask for.

``SFTData`` has the ``get_batch`` that ``labkit.train.train`` calls, so SFT is
the ordinary training loop on other data. ``mask_prompt=False`` trains on
every token (the comparison chapter 16 makes).

Trained on answers only, nothing holds the base model's first skill in
place, and it fades (chapter 16 measures it). ``stories`` mixes plain text
back in (rehearsal): each batch gets ``story_rows`` windows of
``story_len`` tokens from a TokenData, every target kept. The loss is one
mean over answer and story targets together, so their counts set the
weights: 16 conversations hold about 110 answer targets, the recipe's 4
windows of 128 tokens (labkit.recipes) 512 story targets.
Built in: notebooks/16_instruction_tuning.ipynb.
Leaves out on purpose: packing, multi-turn weighting, NEFTune noise.
"""

from __future__ import annotations

import torch

from labkit.chat import END, encode_chat
from labkit.instruct import QAExample, check_splits
from labkit.tokenizer import Tokenizer

IGNORE_INDEX = -100  # a target F.cross_entropy leaves out (its default)


def chat_messages(example: QAExample, answer: str | None = None) -> list[dict]:
    """The example as a conversation: the user's prompt, then the answer
    (the exact one unless another is given)."""
    return [
        {"role": "user", "content": example.prompt},
        {"role": "assistant", "content": example.answer if answer is None else answer},
    ]


def sft_pair(
    ids: list[int], mask: list[bool], mask_prompt: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of one conversation: x = ids[:-1], y = ids[1:] with
    every target the assistant did not write set to IGNORE_INDEX.

    Raises ValueError for fewer than 2 tokens or a mask of another length.
    Shapes: ids (n,) -> x (n - 1,), y (n - 1,)
    """
    if len(ids) < 2 or len(mask) != len(ids):
        raise ValueError(
            f"need at least 2 ids and one mask entry per id; got {len(ids)} ids, "
            f"{len(mask)} mask entries"
        )
    ids_t = torch.tensor(ids)
    y = ids_t[1:].clone()
    if mask_prompt:
        y[~torch.tensor(mask[1:])] = IGNORE_INDEX
    return ids_t[:-1], y


def pad_rows(
    rows: list[tuple[torch.Tensor, torch.Tensor]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (x, y) rows to the longest: x with pad_id, y with IGNORE_INDEX.

    Shapes: rows of (n_i,) -> x, y (B, max n_i)
    """
    T = max(len(x) for x, _ in rows)
    x = torch.full((len(rows), T), pad_id, dtype=torch.long)
    y = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)
    for b, (xb, yb) in enumerate(rows):
        x[b, : len(xb)] = xb
        y[b, : len(yb)] = yb
    return x, y


def masked_lm_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not IGNORE_INDEX.

    The same number as F.cross_entropy(logits.flatten(0, 1), y.flatten()),
    written out. Raises ValueError when every target is ignored.
    Shapes: logits (B, T, V), y (B, T) -> scalar
    """
    keep = y != IGNORE_INDEX  # (B, T)
    n = int(keep.sum())
    if n == 0:
        raise ValueError("every target is IGNORE_INDEX: no token to learn from")
    logp = logits.float().log_softmax(-1)  # (B, T, V)
    picked = logp.gather(-1, y.clamp(min=0)[..., None])[..., 0]  # (B, T)
    return -(picked * keep).sum() / n


class SFTData:
    """Conversations for ``labkit.train.train``: ``get_batch`` draws random
    examples of a split and pads them (see the module docstring).

    Every example is encoded once, up front; one that does not fit
    ``context_len + 1`` tokens (x holds context_len) raises ChatTooLong,
    and splits that share a story raise ValueError. With ``stories``, each
    batch also holds ``story_rows`` plain windows of its split.
    Shapes: get_batch -> x, y (B + story_rows, T') long, T' <= context_len.
    """

    def __init__(
        self,
        splits: dict[str, list[QAExample]],
        tokenizer: Tokenizer,
        context_len: int,
        mask_prompt: bool = True,
        stories=None,
        story_rows: int = 0,
        story_len: int = 64,
    ):
        check_splits(splits)
        missing = {"train", "val"} - set(splits)
        if missing:
            raise ValueError(f"SFTData needs a train and a val split; no {missing}")
        self.tokenizer, self.context_len = tokenizer, context_len
        self.vocab_size = tokenizer.vocab_size
        self.pad_id = tokenizer.special_tokens[END]
        self.mask_prompt = mask_prompt
        if story_rows and stories is None:
            raise ValueError(f"story_rows={story_rows} needs stories (a TokenData)")
        if story_rows and not 1 <= story_len <= context_len:
            raise ValueError(f"story_len={story_len} must be in 1..{context_len}")
        self.stories, self.story_rows, self.story_len = stories, story_rows, story_len
        self.rows = {}
        for name, examples in splits.items():
            if not examples:
                raise ValueError(f"split {name!r} is empty")
            self.rows[name] = [
                sft_pair(*encode_chat(chat_messages(ex), tokenizer, context_len + 1),
                         mask_prompt)
                for ex in examples
            ]  # fmt: skip

    def get_batch(
        self, split: str, batch_size: int, context_len: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """batch_size random conversations of a split, right-padded."""
        if split not in self.rows:
            raise ValueError(f"unknown split {split!r}; known: {list(self.rows)}")
        if context_len < self.context_len:
            raise ValueError(
                f"context_len={context_len} is shorter than the data's "
                f"{self.context_len}: the conversations were checked against it"
            )
        rows = self.rows[split]
        picks = torch.randint(len(rows), (batch_size,), generator=generator)
        chosen = [rows[i] for i in picks.tolist()]
        if self.story_rows:  # rehearsal: plain story windows, every target
            sx, sy = self.stories.get_batch(
                split, self.story_rows, self.story_len, generator
            )
            chosen += list(zip(sx, sy, strict=True))
        return pad_rows(chosen, self.pad_id)
