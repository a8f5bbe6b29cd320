"""The PyTorch CPU reference for `lstm-tui bench --compare torch`.

Imported only when the comparison is asked for; PyTorch is an optional extra
(`pip install 'lstm-tui[torch]'`). The model is the textbook one a PyTorch user would write for
the same task: `nn.LSTM` (or `nn.GRU`, `nn.RNN` for the other cells) over one-hot characters
(input size V, so its input weights are exactly our Wx), `nn.Linear` readout, `F.cross_entropy`,
`torch.optim.Adam`, `clip_grad_norm_`, float32, truncated backprop through time with the state
carried (detached) from window to window.

For the GPT, nanoGPT's own model (`TorchGPT`: its modules, names and initialisation), trained as
nanoGPT's train.py trains it (`TorchGPTTrainer`: AdamW with decay on the matrices and embeddings,
clip_grad_norm_) and sampled as its generate samples (`TorchGPTGenerator`: the cropped context
run through the whole model for every character).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn


def version() -> str:
    return torch.__version__


# PyTorch's own choice of intra-op threads, read before anything changes it.
DEFAULT_THREADS = torch.get_num_threads()


def set_threads(n: int) -> None:
    """Use `n` intra-op threads (no-op when already so: changing the count restarts its pool)."""
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


RECURRENT = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # our cell -> PyTorch's module


class TorchCharModel(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int, cell: str = "lstm"):
        super().__init__()
        self.vocab = vocab
        self.rnn = RECURRENT[cell](vocab, hidden, layers)  # time-major (T, B, V) input
        self.readout = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor, state: Any):
        """Logits (T, B, V) for ids x (T, B), and the final state ((h, c) for an LSTM, else h)."""
        onehot = F.one_hot(x, self.vocab).to(torch.float32)  # (T, B, V)
        out, state = self.rnn(onehot, state)  # (T, B, H)
        return self.readout(out), state


def detach(state: Any) -> Any:
    """The state, cut from the graph of the window that made it (an LSTM's is a pair)."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class TorchTrainer:
    """One optimizer step per call on a (T, B) window, the same work our Trainer.train_step does."""

    def __init__(self, vocab: int, hidden: int, layers: int, lr: float, clip: float, seed: int = 0, cell: str = "lstm"):
        torch.manual_seed(seed)
        self.model = TorchCharModel(vocab, hidden, layers, cell)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.clip = clip
        self.state: Any = None

    def step(self, x: NDArray, y: NDArray) -> float:
        xt = torch.from_numpy(x.astype(np.int64))  # (T, B) ids (ours are uint8)
        yt = torch.from_numpy(y.astype(np.int64))  # (T, B)
        logits, state = self.model(xt, self.state)
        loss = F.cross_entropy(logits.reshape(-1, self.model.vocab), yt.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.state = detach(state)
        return float(loss.item())  # the trainer reports every step's loss, so both sides sync here


class TorchGenerator:
    """One stream, one character at a time: softmax(logits / temperature), then a multinomial draw."""

    def __init__(self, vocab: int, hidden: int, layers: int, seed: int = 0, cell: str = "lstm"):
        torch.manual_seed(seed)
        self.model = TorchCharModel(vocab, hidden, layers, cell).eval()
        self.gen = torch.Generator().manual_seed(seed)

    @torch.inference_mode()
    def generate(self, prime: NDArray, length: int, temperature: float = 1.0) -> list[int]:
        """`length` ids continuing `prime` (n,); the prime is read as one sequence call."""
        x = torch.from_numpy(np.asarray(prime, dtype=np.int64)).view(-1, 1)  # (n, 1)
        logits, state = self.model(x, None)
        last = logits[-1, 0]  # (V,)
        out = []
        for _ in range(length):
            p = torch.softmax(last / temperature, dim=-1)
            nxt = int(torch.multinomial(p, 1, generator=self.gen))
            out.append(nxt)
            logits, state = self.model(torch.tensor([[nxt]]), state)
            last = logits[0, 0]
        return out


# --------------------------------------------------------------------------------- the GPT
class _LayerNorm(nn.Module):
    def __init__(self, n: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class _Attention(nn.Module):
    def __init__(self, C: int, heads: int, bias: bool):
        super().__init__()
        self.c_attn = nn.Linear(C, 3 * C, bias=bias)
        self.c_proj = nn.Linear(C, C, bias=bias)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (a.view(B, T, self.heads, C // self.heads).transpose(1, 2) for a in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class _Block(nn.Module):
    def __init__(self, C: int, heads: int, bias: bool):
        super().__init__()
        self.ln_1, self.attn = _LayerNorm(C, bias), _Attention(C, heads, bias)
        self.ln_2 = _LayerNorm(C, bias)
        self.mlp = nn.ModuleDict(
            {"c_fc": nn.Linear(C, 4 * C, bias=bias), "gelu": nn.GELU(), "c_proj": nn.Linear(4 * C, C, bias=bias)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        m = self.mlp
        return x + m["c_proj"](m["gelu"](m["c_fc"](self.ln_2(x))))


class TorchGPT(nn.Module):
    """nanoGPT's GPT (model.py): its modules and state_dict names, its initialisation (normal 0.02,
    the residual projections 0.02 / sqrt(2 L)), exact GELU, scaled_dot_product_attention, the
    readout tied to the token embedding."""

    def __init__(self, vocab: int, C: int, layers: int, heads: int, block: int, bias: bool = False):
        super().__init__()
        self.block = block
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab, C),
                "wpe": nn.Embedding(block, C),
                "h": nn.ModuleList([_Block(C, heads, bias) for _ in range(layers)]),
                "ln_f": _LayerNorm(C, bias),
            }
        )
        self.lm_head = nn.Linear(C, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for ids (B, T)."""
        t = self.transformer
        x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1]))
        for block in t.h:
            x = block(x)
        return self.lm_head(t.ln_f(x))


def nanogpt_adamw(model: nn.Module, lr: float, weight_decay: float, beta2: float) -> torch.optim.AdamW:
    """nanoGPT's configure_optimizers: decay on the parameters with two axes or more, AdamW."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, beta2))


class TorchGPTTrainer:
    """One optimizer step per call on a (T, B) window: nanoGPT's training step (forward, cross
    entropy, backward, clip_grad_norm_, AdamW) for our Trainer.train_step to be timed against."""

    def __init__(self, vocab: int, C: int, layers: int, heads: int, block: int, lr: float = 1e-3,
                 clip: float = 1.0, weight_decay: float = 0.1, beta2: float = 0.99, seed: int = 0):  # fmt: skip
        torch.manual_seed(seed)
        self.model = TorchGPT(vocab, C, layers, heads, block)
        self.opt = nanogpt_adamw(self.model, lr, weight_decay, beta2)
        self.clip = clip

    def step(self, x: NDArray, y: NDArray) -> float:
        idx = torch.from_numpy(np.ascontiguousarray(x.T).astype(np.int64))  # (B, T)
        targets = torch.from_numpy(np.ascontiguousarray(y.T).astype(np.int64))
        logits = self.model(idx)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        return float(loss.item())


class TorchGPTGenerator:
    """nanoGPT's generate: per character, crop the context to the block, run the whole model, take
    the last logits, divide by the temperature, softmax, draw."""

    def __init__(self, vocab: int, C: int, layers: int, heads: int, block: int, seed: int = 0):
        torch.manual_seed(seed)
        self.model = TorchGPT(vocab, C, layers, heads, block).eval()
        self.gen = torch.Generator().manual_seed(seed)

    @torch.inference_mode()
    def generate(self, prime: NDArray, length: int, temperature: float = 1.0) -> list[int]:
        idx = torch.from_numpy(np.asarray(prime, dtype=np.int64)).view(1, -1)
        start = idx.shape[1]
        for _ in range(length):
            context = idx if idx.size(1) <= self.model.block else idx[:, -self.model.block :]
            logits = self.model(context)[:, -1, :] / temperature
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=self.gen)
            idx = torch.cat((idx, nxt), dim=1)
        return idx[0, start:].tolist()
