"""A PyTorch GPT with nanoGPT's module names, holding a CharGPT's weights: the independent reference
the NumPy model is checked against.

The modules and their state_dict names are nanoGPT's (transformer.wte, transformer.wpe,
transformer.h.{i}.ln_1, .attn.c_attn, .attn.c_proj, .ln_2, .mlp.c_fc, .mlp.c_proj,
transformer.ln_f, lm_head tied to wte), so `load_state_dict(CharGPT.to_torch(params), strict=True)`
loads our weights, and a nanoGPT checkpoint's "model" loads into it. Attention runs through
F.scaled_dot_product_attention(is_causal=True) as nanoGPT's does on PyTorch 2, or written out
(softmax of masked scores) when dropout masks are given, so that a test can fix them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.models import ModelConfig
from core.models.gpt import CharGPT, Masks


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (nn.LayerNorm has no bias-free form in older PyTorch)."""

    def __init__(self, width: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        C = config.hidden
        self.c_attn = nn.Linear(C, 3 * C, bias=config.bias)
        self.c_proj = nn.Linear(C, C, bias=config.bias)
        self.n_head = config.heads

    def forward(self, x: torch.Tensor, att_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (a.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for a in (q, k, v))  # (B, nh, T, D)
        if att_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # written out, so the dropout mask on the probabilities can be a given one
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            future = torch.ones(T, T, dtype=torch.bool).triu(1)
            y = (scores.masked_fill(future, float("-inf")).softmax(dim=-1) * att_mask) @ v
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        C = config.hidden
        self.c_fc = nn.Linear(C, 4 * C, bias=config.bias)
        self.gelu = nn.GELU()  # the exact (erf) GELU, as nanoGPT
        self.c_proj = nn.Linear(4 * C, C, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.hidden, config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.hidden, config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, masks: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        if masks is None:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))
        att, attn_out, mlp_out = masks
        x = x + self.attn(self.ln_1(x), att) * attn_out
        return x + self.mlp(self.ln_2(x)) * mlp_out


class GPT(nn.Module):
    """nanoGPT's GPT, its names and its maths (dropout given as masks instead of nn.Dropout)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.hidden),
                "wpe": nn.Embedding(config.block, config.hidden),
                "h": nn.ModuleList([Block(config) for _ in range(config.layers)]),
                "ln_f": LayerNorm(config.hidden, config.bias),
            }
        )
        self.lm_head = nn.Linear(config.hidden, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied: one parameter, two names

    def forward(self, idx: torch.Tensor, masks: Masks | None = None) -> torch.Tensor:
        """Logits (B, T, V) for ids (B, T). `masks` are a CharGPT's (time-major rows) or None."""
        B, T = idx.shape
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
        if masks is not None:
            x = x * _batch_major(masks.embedding, T, B)
        for i, block in enumerate(self.transformer.h):
            if masks is None:
                x = block(x)
            else:
                m = (
                    torch.from_numpy(masks.attention[i]),
                    _batch_major(masks.attn_out[i], T, B),
                    _batch_major(masks.mlp_out[i], T, B),
                )
                x = block(x, m)
        return self.lm_head(self.transformer.ln_f(x))

    @torch.no_grad()
    def generate_greedy(self, idx: torch.Tensor, new: int) -> torch.Tensor:
        """nanoGPT's generate at temperature 0: crop the context to the block, run the whole model,
        take the last position's argmax, append; `new` times."""
        for _ in range(new):
            context = idx if idx.size(1) <= self.config.block else idx[:, -self.config.block :]
            logits = self(context)[:, -1, :]
            idx = torch.cat((idx, logits.argmax(dim=-1, keepdim=True)), dim=1)
        return idx


def _batch_major(mask: np.ndarray, T: int, B: int) -> torch.Tensor:
    """A (T*B, C) time-major mask as (B, T, C)."""
    return torch.from_numpy(mask.reshape(T, B, -1).transpose(1, 0, 2).copy())


def from_model(model: CharGPT) -> GPT:
    """The reference holding `model`'s weights (loaded by nanoGPT's names, strict), in its dtype."""
    net = GPT(model.config)
    if model.config.dtype == "float64":
        net = net.double()
    tensors = CharGPT.to_torch(model.params, model.config)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    return net


def grads_as_ours(net: GPT, config: ModelConfig) -> dict[str, np.ndarray]:
    """The reference's .grad of every parameter, under our names and layouts (the tied embedding's
    gradient is one tensor: the sum of its two uses)."""
    named = dict(net.named_parameters())  # lists the shared tensor once, as transformer.wte.weight
    tensors = {
        name: named[name].grad.detach().numpy() for name in CharGPT.torch_shapes(config) if name != "lm_head.weight"
    }
    return CharGPT.from_torch(tensors, config)
