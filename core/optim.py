"""Optimizers and global-norm clipping over dicts of parameters and gradients with the same keys."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError

Params = dict[str, NDArray]


def global_norm(grads: Params) -> float:
    """sqrt of the sum of squares of every gradient entry."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_by_global_norm(grads: Params, max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most `max_norm` (0 = no clipping);
    returns the norm before clipping."""
    norm = global_norm(grads)
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


class Optimizer:
    """Updates parameters in place from gradients; `lr` may be changed between steps."""

    name = "base"
    slots: tuple[str, ...] = ()

    def __init__(self, params: Params, lr: float):
        if not (lr > 0 and math.isfinite(lr)):
            raise ConfigError(f"learning rate must be a positive number, got {lr}")
        self.lr = lr
        self.t = 0  # steps taken
        self.state: dict[str, Params] = {slot: {k: np.zeros_like(p) for k, p in params.items()} for slot in self.slots}

    def step(self, params: Params, grads: Params) -> None:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, NDArray]:
        """The optimizer's moments as flat name -> array, for checkpoints."""
        return {f"{slot}/{k}": v for slot, d in self.state.items() for k, v in d.items()}

    def load_state_arrays(self, arrays: dict[str, NDArray], t: int) -> None:
        """Restore moments saved by `state_arrays`; shapes must match."""
        for slot, d in self.state.items():
            for k, v in d.items():
                src = arrays[f"{slot}/{k}"]
                if src.shape != v.shape:
                    raise ConfigError(f"optimizer state {slot}/{k} has shape {src.shape}, expected {v.shape}")
                v[...] = src
        self.t = t


class SGD(Optimizer):
    """p -= lr * g"""

    name = "sgd"

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        for k, p in params.items():
            p -= self.lr * grads[k]


class Adagrad(Optimizer):
    """G += g^2; p -= lr * g / (sqrt(G) + eps)"""

    name = "adagrad"
    slots = ("G",)

    def __init__(self, params: Params, lr: float, eps: float = 1e-8):
        super().__init__(params, lr)
        self.eps = eps

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        G = self.state["G"]
        for k, p in params.items():
            g = grads[k]
            G[k] += g * g
            p -= self.lr * g / (np.sqrt(G[k]) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected first and second moments of the gradient. With
    `weight_decay`, AdamW's decoupled decay (Loshchilov & Hutter): before the Adam step each
    parameter named in `decayed` shrinks by lr x weight_decay of itself, p -= lr wd p, as
    torch.optim.AdamW does."""

    name = "adam"
    slots = ("m", "v")

    def __init__(
        self,
        params: Params,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decayed: tuple[str, ...] = (),
    ):
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.weight_decay = weight_decay
        self.decayed = frozenset(decayed) if weight_decay else frozenset()

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        m, v = self.state["m"], self.state["v"]
        # Fold both bias corrections into the step size: lr_t = lr sqrt(1-b2^t) / (1-b1^t).
        lr_t = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        eps_t = self.eps * math.sqrt(1.0 - b2**self.t)
        shrink = 1.0 - self.lr * self.weight_decay
        for k, p in params.items():
            g = grads[k]
            mk, vk = m[k], v[k]
            mk *= b1
            mk += (1.0 - b1) * g  # m = b1 m + (1-b1) g
            vk *= b2
            vk += (1.0 - b2) * (g * g)  # v = b2 v + (1-b2) g^2
            if k in self.decayed:
                p *= shrink  # p -= lr wd p (decoupled: not through the moments)
            p -= lr_t * mk / (np.sqrt(vk) + eps_t)


OPTIMIZERS: dict[str, type[Optimizer]] = {"adam": Adam, "sgd": SGD, "adagrad": Adagrad}


def make_optimizer(
    name: str,
    params: Params,
    lr: float,
    beta2: float = 0.999,
    weight_decay: float = 0.0,
    decayed: tuple[str, ...] = (),
) -> Optimizer:
    """The optimizer called `name` (adam, sgd or adagrad) over `params`. Adam takes `beta2` and
    decoupled `weight_decay` of the parameters named in `decayed`; the others take neither."""
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}") from None
    if cls is Adam:
        return Adam(params, lr, beta2=beta2, weight_decay=weight_decay, decayed=decayed)
    if weight_decay:
        raise ConfigError("weight decay is decoupled Adam's (AdamW): give --optimizer adam")
    return cls(params, lr)
