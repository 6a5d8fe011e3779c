"""A decoder-only, pre-LN, char-level transformer language model (GPT-style, Radford et al. 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from optforge.engine.routing import mark_role

HEAD_DIM = 64  # the usual head size (GPT-2, nanoGPT); the default head count follows from it


def default_heads(width: int) -> int:
    """The largest head count <= width / 64 that divides ``width`` (at least 1)."""
    heads = max(1, width // HEAD_DIM)
    while width % heads:
        heads -= 1
    return heads


class Block(nn.Module):
    """``x + attn(ln(x))`` then ``x + mlp(ln(x))``, with causal attention via scaled_dot_product_attention.

    ``attn_scale`` is the softmax temperature: ``None`` is 1/sqrt(head_dim) (standard); μP uses 1/head_dim.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: int, attn_scale: float | None) -> None:
        super().__init__()
        self.heads, self.attn_scale = heads, attn_scale
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        # No biases in the linear layers (as in modern LMs): they add vector parameters but no quality.
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.fc = nn.Linear(width, mlp_ratio * width, bias=False)
        self.fc_out = nn.Linear(mlp_ratio * width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, seq, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.attn_scale)
        x = x + self.proj(y.transpose(1, 2).reshape(batch, seq, width))
        return x + self.fc_out(F.gelu(self.fc(self.ln2(x))))


class Transformer(nn.Module):
    """Token + learned position embeddings (``input``) -> ``depth`` blocks -> final LayerNorm -> ``readout``.

    Maps token ids ``(N, T)`` to next-token logits ``(N, T, vocab)``, for ``T <= seq_len``. The readout
    is not tied to the embedding, so μP can give it its own init and multiplier.
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        *,
        width: int,
        depth: int,
        heads: int | None = None,
        mlp_ratio: int = 4,  # GPT-2's MLP expansion
        attn_scale: float | None = None,
        output_mult: float = 1.0,
    ) -> None:
        super().__init__()
        heads = heads or default_heads(width)
        self.token = mark_role(nn.Embedding(vocab_size, width), "input")
        self.position = mark_role(nn.Embedding(seq_len, width), "input")
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, attn_scale) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.readout = mark_role(nn.Linear(width, vocab_size, bias=False), "readout")
        self.output_mult = output_mult

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.token(tokens) + self.position(positions)
        for block in self.blocks:
            h = block(h)
        h = self.ln_f(h)
        return self.readout(h * self.output_mult if self.output_mult != 1.0 else h)
