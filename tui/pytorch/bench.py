"""The PyTorch CPU reference for `lstm-tui bench --compare torch`.

Imported only when the comparison is asked for; PyTorch is an optional extra
(`pip install 'lstm-tui[torch]'`). The model is the textbook one a PyTorch user would write for
the same task: `nn.LSTM` (or `nn.GRU`, `nn.RNN` for the other cells) over one-hot characters
(input size V, so its input weights are exactly our Wx), `nn.Linear` readout, `F.cross_entropy`,
`torch.optim.Adam`, `clip_grad_norm_`, float32, truncated backprop through time with the state
carried (detached) from window to window.
"""

from __future__ import annotations

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
