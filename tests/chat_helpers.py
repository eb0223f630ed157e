"""A tiny GPT over the chat tokenizer, shared by the SFT and DPO tests."""

import torch

from labkit.chat import chat_tokenizer
from labkit.model import GPT, GPTConfig

TOK = chat_tokenizer()  # bytes + <|user|> <|assistant|> <|end|>


def tiny_chat_model(seed: int = 0, d_model: int = 32, context_len: int = 128) -> GPT:
    """One block, two heads, seeded: small enough to train in a test."""
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=TOK.vocab_size, context_len=context_len,
                    n_layers=1, n_heads=2, d_model=d_model)  # fmt: skip
    return GPT(cfg)
