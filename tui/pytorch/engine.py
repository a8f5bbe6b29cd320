"""`--engine torch`: the same training run, with PyTorch doing the arithmetic.

`TorchEngine` implements core's engine interface (core/engine.py): the arithmetic of a step, its
rollback, the moving average, and the conversion of its weights for snapshots, evaluations and
checkpoints. Everything else is core's Trainer: the corpus, the windows and carried state
(`core.batches`), the dropout masks (drawn from the run's NumPy generator), the loop, its reports
and controls, checkpoints in lstm-tui's own format. A run can therefore be saved by one engine and
resumed by the other. `torch_engine(device)` is the factory a Trainer takes.

The network is the textbook PyTorch one: the module each recurrent model declares (`torch_class`:
`nn.LSTM`, `nn.GRU`, `nn.RNN`) per layer over one-hot characters and an `nn.Linear` readout, with
the loss `F.cross_entropy`. Its parameters map 1:1 onto ours (the model's `layer_to_torch`, see
core/models/recurrent.py): PyTorch has two bias vectors per layer where our cells have one, so the
part of `bias_hh` a cell does not keep (`torch_hh_bias`) is held at zero: all of an LSTM's or
RNN's (frozen), a GRU's r and z thirds (their gradient is masked), leaving its n third, our `bhn`,
to train. Adam's and Adagrad's moments map the same way, and the step count is the optimizer's
`t`. Gradients are clipped by the same rule as core's (`clip_by_global_norm`), and `torch.optim`'s
AdamW (Adam with core's decoupled decay of the matrices, TrainConfig.weight_decay, and its beta2),
SGD and Adagrad are the same updates as core.optim's (Adagrad with core's eps of 1e-8).

Streams that wrap around the end of the text start afresh mid-window (core.batches' resets).
`nn.LSTM` cannot zero part of its state mid-sequence, so a window is cut at those steps and each
piece is one `nn.LSTM` call, with the rows of the restarted streams zeroed in between. That is
exact, and costs one extra call per reset step (a few per epoch per stream, so rare on a text of
any size). Layers are separate `nn.LSTM(in, H)` modules rather than one `nn.LSTM(V, H, L)`, so
that dropout is applied where core applies it (on every layer's output, the top one included);
this gives up cuDNN's overlap of layers on a GPU (see docs/pytorch.md, scaling).

On the CPU it uses one thread unless OMP_NUM_THREADS says otherwise (see `TorchEngine.__init__`).

Data parallel under `torchrun` (RANK, WORLD_SIZE, LOCAL_RANK set): every rank builds the same run
from the same seed and reads the same windows; rank r trains streams r, r + N, r + 2N, ... of the
B, so together the ranks do exactly the single-process step. Each rank's loss is scaled so that
DistributedDataParallel's mean of the gradients is the gradient of the mean over all B streams.
After the backward pass one all-reduce gathers the loss, the carried state of every stream, any
stop request and rank 0's learning rate (which its evaluations may cut), so that every rank keeps
the whole state (rank 0 saves it), takes the same update, and all ranks stop after the same step.
Rank 0 alone evaluates (core's Evaluator, a chunk between steps, reading the text with a frozen
copy of the net on the device) and saves.
"""

from __future__ import annotations

import atexit
import copy
import functools
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from core.batches import Window
from core.engine import Engine, RunArrays
from core.errors import ConfigError
from core.models import CharModel, model_class
from core.models.recurrent import RecurrentModel
from core.trainer import Controls

# torch.optim's names for the moments core.optim keeps in `Optimizer.state[slot]`.
SLOTS = {"adam": {"m": "exp_avg", "v": "exp_avg_sq"}, "adagrad": {"G": "sum"}, "sgd": {}}
DTYPES = {"float32": torch.float32, "float64": torch.float64}

# Per layer, a tuple of (B, H) tensors: (h, c) for the LSTM, (h,) for the GRU and the RNN.
TorchState = list[tuple[torch.Tensor, ...]]


def version() -> str:
    return torch.__version__


def recurrent_class(cell: str) -> type[RecurrentModel]:
    """The model class of `cell`, which this engine can train only if it is a recurrent one."""
    cls = model_class(cell)
    if not issubclass(cls, RecurrentModel):
        raise ConfigError(f"--engine torch trains the recurrent models ({cell} is not one); use the numpy engine")
    return cls


class CharNet(nn.Module):
    """One PyTorch recurrent module (the model's `torch_class`: nn.LSTM, nn.GRU, nn.RNN) per layer
    over one-hot characters, and an `nn.Linear` readout. The part of each layer's second bias vector
    that our cell does not keep is held at zero (frozen, or its gradient masked)."""

    def __init__(self, cell: str, vocab: int, hidden: int, layers: int, dtype: torch.dtype, device: torch.device):
        super().__init__()
        cls = recurrent_class(cell)
        self.cell, self.vocab, self.arrays = cell, vocab, len(cls.state_names)
        module = getattr(nn, cls.torch_class.removeprefix("nn."))
        self.layers = nn.ModuleList(
            module(vocab if k == 0 else hidden, hidden, dtype=dtype, device=device) for k in range(layers)
        )
        self.readout = nn.Linear(hidden, vocab, dtype=dtype, device=device)
        P = cls.gate_permutation(hidden)
        kept = torch.as_tensor(cls.torch_hh_bias(hidden)[P], dtype=dtype, device=device)  # in PyTorch's order
        for layer in self.layers:
            with torch.no_grad():
                layer.bias_hh_l0.zero_()
            if bool(kept.any()):
                layer.bias_hh_l0.register_hook(lambda g, kept=kept: g * kept)
            else:
                layer.bias_hh_l0.requires_grad_(False)

    def forward(
        self, x: torch.Tensor, state: TorchState, keep: dict[int, torch.Tensor], masks: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, TorchState]:
        """Logits (T, B, V) for ids x (T, B) from `state`; the new state.

        keep: t -> (B, 1) ones with zeros for the streams that start afresh before step t.
        masks: per layer (T, B, H) inverted-dropout masks for the layer's output, or None.
        """
        T = x.shape[0]
        inp = F.one_hot(x, self.vocab).to(self.readout.weight.dtype)  # (T, B, V)
        cuts = [0, *sorted(t for t in keep if 0 < t < T), T]
        new_state = []
        for k, layer in enumerate(self.layers):
            st = state[k]  # (B, H) each
            pieces = []
            for t0, t1 in zip(cuts[:-1], cuts[1:], strict=True):
                if t0 in keep:  # these streams wrapped around the text: fresh state
                    st = tuple(a * keep[t0] for a in st)
                hx = tuple(a[None] for a in st) if self.arrays > 1 else st[0][None]
                out, hx = layer(inp[t0:t1], hx)  # out (t1 - t0, B, H)
                st = tuple(a[0] for a in hx) if self.arrays > 1 else (hx[0],)
                pieces.append(out)
            out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)  # (T, B, H)
            if masks is not None:
                out = out * masks[k]
            new_state.append(st)
            inp = out
        return self.readout(inp), new_state  # (T, B, V)


def trainable_params(net: CharNet) -> list[nn.Parameter]:
    """The parameters trained, in the order TorchEngine pairs them with core's arrays."""
    params = []
    for layer in net.layers:
        four = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
        params += [p for p in four if p.requires_grad]
    return [*params, net.readout.weight, net.readout.bias]


class _Scorer:
    """A net as core's Evaluator reads a model: initial_state(S), and forward(x, state) on ids
    (k, S) returning NumPy logits (k, S, V). Evaluation then runs where training does."""

    def __init__(self, net: CharNet, device: torch.device, hidden: int, dtype: torch.dtype):
        self.net, self.device, self.hidden, self.dtype = net, device, hidden, dtype

    def initial_state(self, batch: int = 1) -> TorchState:
        z = torch.zeros(batch, self.hidden, dtype=self.dtype, device=self.device)
        return [(z,) * self.net.arrays for _ in self.net.layers]

    @torch.no_grad()
    def forward(self, x: NDArray, state: TorchState) -> tuple[NDArray, TorchState, None]:
        logits, state = self.net(torch.from_numpy(np.asarray(x, dtype=np.int64)).to(self.device), state, {}, None)
        return logits.cpu().numpy(), state, None


class AgreedControls(Controls):
    """Controls for one rank of a data-parallel run: a stop asked on any rank (a signal) takes
    effect on every rank after the same step, so no rank waits for another that has left."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = False
        self._evaluate = True  # this rank's wish: score the final weights (only rank 0 scores)

    def stop(self, evaluate: bool = True) -> None:
        self.requested = True  # `stopped` turns True once every rank has heard of it
        self._evaluate = self._evaluate and evaluate
        if self.stopped and not evaluate:  # training is over: cut rank 0's last evaluation short
            Controls.stop(self, evaluate=False)

    def agree(self, any_rank_asked: bool) -> None:
        if any_rank_asked:
            Controls.stop(self, evaluate=self._evaluate)


def pick_device(name: str | None) -> torch.device:
    """The device asked for (default: CUDA when there is one, else the CPU), checked to exist."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device cuda: this PyTorch ({torch.__version__}) sees no CUDA device")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("--device mps: this PyTorch sees no Apple GPU (MPS)")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; choose cpu, cuda or mps")


def torch_engine(device: str | None = None) -> Callable[[RunArrays], Engine]:
    """The factory of a Trainer whose arithmetic runs in PyTorch on `device`."""
    return functools.partial(TorchEngine, device=device)


class TorchEngine:
    """core's engine interface in PyTorch (see the module docstring)."""

    name = "torch"

    def __init__(self, trainer: RunArrays, device: str | None = None):
        self.trainer = t = trainer
        cfg, mc = t.config, t.model.config
        self.cls = recurrent_class(mc.cell)
        if mc.init_state != "zeros":
            raise ConfigError(
                f"--engine torch trains {self.cls.torch_class}, whose initial state is an input, not a weight: "
                f"--init-state {mc.init_state} trains with the numpy engine"
            )
        self.device = dev = pick_device(device)
        if dev.type == "mps" and mc.dtype == "float64":
            raise ConfigError("--device mps works in float32 only (--dtype float32)")
        self.dtype = DTYPES[mc.dtype]
        if dev.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
            # One thread unless asked for more. PyTorch's CPU pool (one thread per core by default)
            # synchronises between every small operation, and collapses when the cores are shared:
            # measured on a 2-core machine, under load, 2 threads trained H=256 L=2 B=32 T=100 at
            # 3,100 chars/s against 13,000 with 1, and H=16 at 200 against 130,000.
            torch.set_num_threads(1)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.is_main = self.rank == 0
        if self.world > 1:
            import torch.distributed as dist

            if t.batch < self.world:
                raise ConfigError(
                    f"batch {t.batch} is smaller than the {self.world} processes; give --batch >= {self.world}"
                )
            if not dist.is_initialized():
                dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
                atexit.register(dist.destroy_process_group)
            t.controls = AgreedControls()
        net = CharNet(mc.cell, mc.vocab_size, mc.hidden, mc.layers, self.dtype, dev)
        self._net = net
        self._trainable = trainable_params(net)  # in the order _theirs pairs them with core's arrays
        if cfg.optimizer == "adam":  # AdamW: Adam, with core's decoupled decay of the matrices (two axes)
            groups = [
                {"params": [p for p in self._trainable if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                {"params": [p for p in self._trainable if p.dim() < 2], "weight_decay": 0.0},
            ]
            self._opt = torch.optim.AdamW(groups, lr=t.optimizer.lr, betas=(0.9, cfg.beta2), eps=1e-8)
        else:
            opt_cls = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}[cfg.optimizer]
            kwargs = {"eps": 1e-8} if cfg.optimizer == "adagrad" else {}
            self._opt = opt_cls(self._trainable, lr=t.optimizer.lr, **kwargs)
        self._model: nn.Module = net
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
        self._mine = np.arange(self.rank, t.batch, self.world)  # the streams this rank trains
        self._mine_t = torch.from_numpy(self._mine).to(dev)
        self._new_state: TorchState = []
        self.reload()

    # ----------------------------------------------------------- the interface
    def describe(self) -> str | None:
        """PyTorch's version, the device, the processes."""
        line = f"PyTorch {torch.__version__} on {self.device}"
        if self.world > 1:
            import torch.distributed as dist

            line += (
                f"; {self.world} processes ({dist.get_backend()}, DistributedDataParallel), "
                f"rank {self.rank} training {len(self._mine)} of the {self.trainer.batch} streams"
            )
        return line

    def limit_threads(self, n: int) -> None:
        """Use at most `n` threads for PyTorch's CPU arithmetic (the interface keeps a core free)."""
        torch.set_num_threads(n)

    def reload(self) -> None:
        """Core's weights, optimizer moments, carried state and average into PyTorch."""
        t = self.trainer
        with torch.no_grad():
            for p, a in self._theirs(t.model.params):
                p.copy_(self._tensor(a))
        self._push_optimizer()
        self._tstate = self._to_device_state(t.state)
        self._tavg = [self._tensor(a) for _, a in self._theirs(t.average)] if t.average is not None else []

    def learn(self, window: Window, masks: Any) -> tuple[float, float]:
        """Forward and backward on this rank's streams of the window; the loss over all B streams
        and the global gradient norm before clipping (gradients clipped as core clips them)."""
        t = self.trainer
        B, T, dev = t.batch, window.x.shape[0], self.device
        mine, local = self._mine, len(self._mine)
        x = torch.from_numpy(window.x[:, mine].astype(np.int64)).to(dev)  # (T, b) this rank's streams
        y = torch.from_numpy(window.y[:, mine].astype(np.int64)).to(dev)  # (T, b)
        keep: dict[int, torch.Tensor] = {}
        for step, streams in window.resets.items():
            rows = np.isin(mine, streams)  # (b,) this rank's streams that start afresh at `step`
            if rows.any():
                keep[step] = self._tensor((~rows).astype(np.float64)[:, None])  # (b, 1)
        tmasks = [self._tensor(m[:, mine]) for m in masks] if masks is not None else None
        state = [tuple(a[self._mine_t] for a in layer) for layer in self._tstate] if self.world > 1 else self._tstate
        logits, new_state = self._model(x, state, keep, tmasks)
        total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
        self._opt.zero_grad(set_to_none=True)
        # DistributedDataParallel averages the ranks' gradients: scale so the average is the
        # gradient of the mean loss over all B x T characters.
        (total * (self.world / (B * T))).backward()
        if self.world > 1:
            loss_sum, stop = self._gather(total.detach(), new_state, local)
        else:
            loss_sum, stop = total.detach(), False
            self._new_state = [tuple(a.detach() for a in layer) for layer in new_state]
        grads = [p.grad for p in self._trainable if p.grad is not None]
        norm_t = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        loss, norm = (float(v) for v in torch.stack([loss_sum / (B * T), norm_t.to(loss_sum.dtype)]).tolist())
        if isinstance(t.controls, AgreedControls):
            t.controls.agree(stop)
        if math.isfinite(norm) and t.config.clip > 0 and norm > t.config.clip:
            scale = t.config.clip / (norm + 1e-12)  # as core.optim.clip_by_global_norm
            for g in grads:
                g.mul_(scale)
        return loss, norm

    def apply(self) -> None:
        t = self.trainer
        for group in self._opt.param_groups:
            group["lr"] = t.optimizer.lr  # Controls.set_lr and evaluations change core's optimizer's rate
        self._opt.step()
        t.optimizer.t += 1
        self._tstate = self._new_state

    def update_average(self, keep: float) -> None:
        """The moving average of the weights, kept on the device beside them in PyTorch's layout (the
        mapping is linear, so the average maps as the weights do); copied into core's arrays by `sync`."""
        with torch.no_grad():
            for avg, w in zip(self._tavg, self._trainable, strict=True):
                avg.add_(w - avg, alpha=1.0 - keep)

    def take_rollback(self) -> None:
        self._rollback = (
            [p.detach().clone() for p in self._trainable],
            copy.deepcopy(self._opt.state_dict()),
            self.trainer.optimizer.t,
        )

    def roll_back(self) -> None:
        t = self.trainer
        params, opt_state, step = self._rollback
        with torch.no_grad():
            for p, v in zip(self._trainable, params, strict=True):
                p.copy_(v)
        self._opt.load_state_dict(copy.deepcopy(opt_state))
        t.optimizer.t = step
        t.state = t.model.initial_state(t.batch)
        self._tstate = self._to_device_state(t.state)

    def sync(self, everything: bool = False) -> None:
        """The weights (and their average) back into core's arrays; with `everything`, the
        optimizer's moments and the carried state too."""
        t = self.trainer
        for k, v in self._ours(lambda p: p).items():
            t.model.params[k][...] = v
        if t.average is not None:
            for k, v in self._ours_from(self._tavg).items():
                t.average[k][...] = v
        if not everything:
            return
        for slot, name in SLOTS[t.config.optimizer].items():
            # (`in` first: optimizer.state is a defaultdict, and an entry made for a frozen parameter
            # would break its state_dict)
            moments = self._ours(lambda p, name=name: self._opt.state[p].get(name) if p in self._opt.state else None)
            for k, v in moments.items():
                t.optimizer.state[slot][k][...] = v
        t.state = tuple(tuple(a.cpu().numpy() for a in layer) for layer in self._tstate)

    def scorer(self, model: CharModel) -> _Scorer:
        """`model` (a frozen copy of the run's model) as a net on the device, for core's Evaluator."""
        mc = model.config
        frozen = CharNet(mc.cell, mc.vocab_size, mc.hidden, mc.layers, self.dtype, self.device)
        with torch.no_grad():
            for p, a in self._theirs(model.params, frozen):
                p.copy_(self._tensor(a))
        return _Scorer(frozen, self.device, mc.hidden, self.dtype)

    def grads(self) -> dict[str, NDArray]:
        """The gradients `learn` left (clipped), in core's layout and names."""
        return self._ours(lambda p: p.grad)

    # ----------------------------------------------------- our layout <-> theirs
    @staticmethod
    def _layer_params(layer: nn.Module) -> tuple[nn.Parameter, ...]:
        return (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)

    def _ours(self, get: Any) -> dict[str, NDArray]:
        """Arrays in core's layout and names, from get(parameter): its data, gradient or a moment
        (None, as for a frozen parameter's gradient, reads as zeros)."""
        dtype = self.trainer.model.config.dtype

        def arr(p: nn.Parameter) -> NDArray:
            v = get(p)
            return np.zeros(tuple(p.shape), dtype) if v is None else v.detach().cpu().numpy()

        out: dict[str, NDArray] = {}
        for k, layer in enumerate(self._net.layers):
            four = (arr(p) for p in self._layer_params(layer))
            for name, v in self.cls.layer_from_torch(*four).items():
                out[f"{name}{k}"] = v
        out["Wy"] = np.ascontiguousarray(arr(self._net.readout.weight).T)
        out["by"] = arr(self._net.readout.bias).copy()
        return out

    def _theirs(self, arrays: dict[str, NDArray], net: CharNet | None = None) -> list[tuple[nn.Parameter, NDArray]]:
        """(trainable parameter of `net`, array in its layout) pairs for arrays in core's layout and names."""
        net = net or self._net
        pairs = []
        for k, layer in enumerate(net.layers):
            four = self.cls.layer_to_torch(self.cls.layer_arrays(arrays, k))
            pairs += [(p, a) for p, a in zip(self._layer_params(layer), four, strict=True) if p.requires_grad]
        pairs += [(net.readout.weight, arrays["Wy"].T), (net.readout.bias, arrays["by"])]
        return pairs

    def _ours_from(self, tensors: list[torch.Tensor]) -> dict[str, NDArray]:
        """Tensors in the order of the trainable parameters (like them), in core's layout."""
        by_param = {id(p): v for p, v in zip(self._trainable, tensors, strict=True)}
        return self._ours(lambda p: by_param.get(id(p)))

    def _tensor(self, a: NDArray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=self.device, dtype=self.dtype)

    def _push_optimizer(self) -> None:
        """core's optimizer moments and step count into torch.optim's state."""
        t = self.trainer
        slots = SLOTS[t.config.optimizer]
        if not slots:
            return
        moments = {slot: self._theirs(t.optimizer.state[slot]) for slot in slots}
        for i, p in enumerate(self._trainable):
            st = self._opt.state[p]
            st["step"] = torch.tensor(float(t.optimizer.t), dtype=torch.float32)
            for slot, name in slots.items():
                st[name] = self._tensor(moments[slot][i][1]).clone(memory_format=torch.preserve_format)

    def _to_device_state(self, state: Any) -> TorchState:
        return [tuple(self._tensor(a) for a in layer) for layer in state]

    def _gather(self, loss_sum: torch.Tensor, new_state: TorchState, local: int) -> tuple[torch.Tensor, bool]:
        """One all-reduce: the loss summed over ranks, every stream's new state, any stop request,
        rank 0's learning rate."""
        import torch.distributed as dist

        t = self.trainer
        L, S, B, H = len(new_state), len(new_state[0]), t.batch, t.model.config.hidden
        buf = torch.zeros(L * S * B * H + 3, dtype=torch.float64, device=self.device)
        full = buf[: L * S * B * H].view(L, S, B, H)
        for k, layer in enumerate(new_state):
            for j, a in enumerate(layer):
                full[k, j, self._mine_t] = a.detach().to(torch.float64)
        buf[-3] = loss_sum.to(torch.float64)
        buf[-2] = float(isinstance(t.controls, AgreedControls) and t.controls.requested)
        if self.rank == 0:  # rank 0's learning rate, which its evaluations may have cut (--lr-decay)
            buf[-1] = t.optimizer.lr
        dist.all_reduce(buf)
        full = full.to(self.dtype)
        self._new_state = [tuple(full[k, j] for j in range(S)) for k in range(L)]
        stop, lr = buf[-2:].tolist()
        t.optimizer.lr = lr  # every rank takes the same step
        return buf[-3], stop > 0
