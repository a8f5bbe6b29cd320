"""`--engine torch`: the same training run, with PyTorch doing the arithmetic.

`TorchTrainer` is a `core.Trainer` that overrides only the arithmetic of a step (`_learn`,
`_apply`), evaluation, rollback and the conversion of its weights for snapshots and checkpoints.
Everything else is core's: the corpus, the windows and carried state (`core.batches`), the dropout
masks (drawn from the run's NumPy generator), the loop, its reports and controls, checkpoints in
lstm-tui's own format. A run can therefore be saved by one engine and resumed by the other.

The network is the textbook PyTorch one: an `nn.LSTM` (`nn.GRU`, `nn.RNN` for --cell gru, rnn)
per layer over one-hot characters and an `nn.Linear` readout, with the loss `F.cross_entropy`.
Its parameters map 1:1 onto ours (tui/torch_io.py): PyTorch has two bias vectors per layer where
our LSTM and RNN have one, so their `bias_hh` is frozen at zero and `bias_ih` is our `b`; a GRU's
`bias_hh` keeps only its candidate third (our `bhn`; the r and z thirds would only add to `b`, so
their gradient is masked to zero and they stay zero). Adam's and Adagrad's moments map the same
way, and the step count is the optimizer's `t`. Gradients are clipped by the same rule as core's
(`clip_by_global_norm`), and `torch.optim`'s Adam, SGD and Adagrad are the same updates as
core.optim's (Adagrad with core's eps of 1e-8).

Streams that wrap around the end of the text start afresh mid-window (core.batches' resets).
`nn.LSTM` cannot zero part of its state mid-sequence, so a window is cut at those steps and each
piece is one `nn.LSTM` call, with the rows of the restarted streams zeroed in between. That is
exact, and costs one extra call per reset step (a few per epoch per stream, so rare on a text of
any size). Layers are separate `nn.LSTM(in, H)` modules rather than one `nn.LSTM(V, H, L)`, so
that dropout is applied where core applies it (on every layer's output, the top one included);
this gives up cuDNN's overlap of layers on a GPU (see the README's scaling notes).

On the CPU it uses one thread unless OMP_NUM_THREADS says otherwise (see `_attach`).

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
import dataclasses
import math
import os
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from core.batches import Window
from core.errors import ConfigError
from core.evaluate import Evaluator
from core.trainer import Controls, Trainer

from .torch_io import layer_from_torch, layer_to_torch

# torch.optim's names for the moments core.optim keeps in `Optimizer.state[slot]`.
SLOTS = {"adam": {"m": "exp_avg", "v": "exp_avg_sq"}, "adagrad": {"G": "sum"}, "sgd": {}}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def version() -> str:
    return torch.__version__


TORCH_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

# Per layer, a tuple of (B, H) tensors: (h, c) for the LSTM, (h,) for the GRU and the RNN.
TorchState = list[tuple[torch.Tensor, ...]]


class CharNet(nn.Module):
    """One `nn.LSTM` (or `nn.GRU`, `nn.RNN`) per layer over one-hot characters, and an `nn.Linear`
    readout. Each layer's second bias vector, which our cells do not have, is held at zero: all
    of an LSTM's or RNN's `bias_hh` (frozen), a GRU's r and z thirds (their gradient is masked),
    leaving its n third, our `bhn`, to train."""

    def __init__(self, cell: str, vocab: int, hidden: int, layers: int, dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.cell, self.vocab = cell, vocab
        module = TORCH_CELLS[cell]
        self.layers = nn.ModuleList(
            module(vocab if k == 0 else hidden, hidden, dtype=dtype, device=device) for k in range(layers)
        )
        self.readout = nn.Linear(hidden, vocab, dtype=dtype, device=device)
        keep_n = torch.zeros(3 * hidden, dtype=dtype, device=device)
        keep_n[2 * hidden :] = 1.0
        for layer in self.layers:
            with torch.no_grad():
                layer.bias_hh_l0.zero_()
            if cell == "gru":
                layer.bias_hh_l0.register_hook(lambda g, keep_n=keep_n: g * keep_n)
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
                hx = (st[0][None], st[1][None]) if self.cell == "lstm" else st[0][None]
                out, hx = layer(inp[t0:t1], hx)  # out (t1 - t0, B, H)
                st = (hx[0][0], hx[1][0]) if self.cell == "lstm" else (hx[0],)
                pieces.append(out)
            out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)  # (T, B, H)
            if masks is not None:
                out = out * masks[k]
            new_state.append(st)
            inp = out
        return self.readout(inp), new_state  # (T, B, V)


def trainable_params(net: CharNet) -> list[nn.Parameter]:
    """The parameters trained, in the order TorchTrainer pairs them with core's arrays."""
    params = []
    for layer in net.layers:
        four = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
        params += [p for p in four if p.requires_grad]
    return [*params, net.readout.weight, net.readout.bias]


class _EvalView:
    """A net as core's Evaluator reads a model: initial_state(S), and forward(x, state) on ids
    (k, S) returning NumPy logits (k, S, V). Evaluation then runs where training does."""

    def __init__(self, net: CharNet, device: torch.device, hidden: int, arrays: int, dtype: torch.dtype):
        self.net, self.device, self.hidden, self.arrays, self.dtype = net, device, hidden, arrays, dtype

    def initial_state(self, batch: int = 1) -> TorchState:
        z = torch.zeros(batch, self.hidden, dtype=self.dtype, device=self.device)
        return [(z,) * self.arrays for _ in self.net.layers]

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

    def stop(self) -> None:
        self.requested = True  # `stopped` turns True once every rank has heard of it

    def agree(self, any_rank_asked: bool) -> None:
        if any_rank_asked:
            Controls.stop(self)


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


class TorchTrainer(Trainer):
    """A core Trainer whose steps, evaluations and rollbacks run in PyTorch (see the module doc)."""

    engine = "torch"

    def __init__(self, corpus: Any, config: Any = None, checkpoint: Any = None, controls: Any = None, device=None):
        self._net: CharNet | None = None  # None until attached: core's own code paths apply
        super().__init__(corpus, config, checkpoint, controls)
        self._attach(device)

    @classmethod
    def resume(cls, path, corpus, checkpoint=None, controls=None, device=None, **overrides) -> TorchTrainer:  # type: ignore[override]
        """Continue a run saved by either engine (core reads and checks the checkpoint)."""
        return cls.adopt(Trainer.resume(path, corpus, checkpoint, controls, **overrides), device)

    @classmethod
    def adopt(cls, trainer: Trainer, device: str | None = None) -> TorchTrainer:
        """Carry on `trainer`'s run (weights, optimizer, windows, history, generator) in PyTorch."""
        new = cls.__new__(cls)
        new.__dict__.update(trainer.__dict__)
        new._net = None
        new._attach(device)
        return new

    def restart(self) -> TorchTrainer:
        return type(self)(self.corpus, self.config, checkpoint=self.checkpoint, device=self.device.type)

    def describe_engine(self) -> str:
        """One line for the start of a run: PyTorch's version, the device, the processes."""
        line = f"PyTorch {torch.__version__} on {self.device}"
        if self.world > 1:
            import torch.distributed as dist

            line += (
                f"; {self.world} processes ({dist.get_backend()}, DistributedDataParallel), "
                f"rank {self.rank} training {len(self._mine)} of the {self.batch} streams"
            )
        return line

    def limit_threads(self, n: int) -> None:
        """Use at most `n` threads for PyTorch's CPU arithmetic (the interface keeps a core free)."""
        torch.set_num_threads(n)

    # ------------------------------------------------------------------ set-up
    def _attach(self, device: str | None) -> None:
        """Build the net, optimizer and carried state from core's, on `device`; join torchrun's group."""
        cfg, mc = self.config, self.model.config
        self.device = dev = pick_device(device)
        if dev.type == "mps" and mc.dtype == "float64":
            raise ConfigError("--device mps works in float32 only (--dtype float32)")
        self.dtype = DTYPES[mc.dtype]
        if dev.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
            # One thread unless asked for more. PyTorch's CPU pool (one thread per core by default)
            # synchronises between every small operation, and collapses when the cores are shared:
            # measured on the 2-core development machine, under load, 2 threads trained H=256 L=2
            # B=32 T=100 at 3,100 chars/s against 13,000 with 1, and H=16 at 200 against 130,000.
            torch.set_num_threads(1)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist

            if self.batch < self.world:
                raise ConfigError(
                    f"batch {self.batch} is smaller than the {self.world} processes; give --batch >= {self.world}"
                )
            if not dist.is_initialized():
                dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
                atexit.register(dist.destroy_process_group)
            self.controls = AgreedControls()
        net = CharNet(mc.cell, mc.vocab_size, mc.hidden, mc.layers, self.dtype, dev)
        self._net = net
        self._trainable = trainable_params(net)  # in the order _theirs pairs them with core's arrays
        self._push_params()
        opt_cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}[cfg.optimizer]
        kwargs = {"eps": 1e-8} if cfg.optimizer == "adagrad" else {}
        self._opt = opt_cls(self._trainable, lr=self.optimizer.lr, **kwargs)
        self._push_optimizer()
        self._model: nn.Module = net
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
        self._mine = np.arange(self.rank, self.batch, self.world)  # the streams this rank trains
        self._mine_t = torch.from_numpy(self._mine).to(dev)
        self._tstate = self._to_device_state(self.state)
        self._tavg: list[torch.Tensor] = []  # the moving average of the weights, when averaging
        if self.average is not None:
            self._tavg = [self._tensor(a) for _, a in self._theirs(self.average)]
        self._take_rollback()

    # ----------------------------------------------------- our layout <-> theirs
    def _layer_params(self, layer: nn.Module) -> tuple[nn.Parameter, ...]:
        return (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)

    def _ours(self, get: Any) -> dict[str, NDArray]:
        """Arrays in core's layout and names, from get(parameter): its data, gradient or a moment
        (None, as for a frozen parameter's gradient, reads as zeros)."""

        def arr(p: nn.Parameter) -> NDArray:
            t = get(p)
            return np.zeros(tuple(p.shape), self.model.config.dtype) if t is None else t.detach().cpu().numpy()

        assert self._net is not None
        out: dict[str, NDArray] = {}
        for k, layer in enumerate(self._net.layers):
            four = (arr(p) for p in self._layer_params(layer))
            for name, v in layer_from_torch(self._net.cell, *four).items():
                out[f"{name}{k}"] = v
        out["Wy"] = np.ascontiguousarray(arr(self._net.readout.weight).T)
        out["by"] = arr(self._net.readout.bias).copy()
        return out

    def _theirs(self, arrays: dict[str, NDArray]) -> list[tuple[nn.Parameter, NDArray]]:
        """(trainable parameter, array in its layout) pairs for arrays in core's layout and names."""
        assert self._net is not None
        pairs = []
        for k, layer in enumerate(self._net.layers):
            ours = {name: arrays[f"{name}{k}"] for name in ("Wx", "Wh", "b", "bhn") if f"{name}{k}" in arrays}
            four = layer_to_torch(self._net.cell, ours)
            pairs += [(p, a) for p, a in zip(self._layer_params(layer), four, strict=True) if p.requires_grad]
        pairs += [(self._net.readout.weight, arrays["Wy"].T), (self._net.readout.bias, arrays["by"])]
        return pairs

    def _tensor(self, a: NDArray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=self.device, dtype=self.dtype)

    def _push_params(self) -> None:
        with torch.no_grad():
            for p, a in self._theirs(self.model.params):
                p.copy_(self._tensor(a))

    def _push_optimizer(self) -> None:
        """core's optimizer moments and step count into torch.optim's state."""
        slots = SLOTS[self.config.optimizer]
        if not slots:
            return
        moments = {slot: self._theirs(self.optimizer.state[slot]) for slot in slots}
        for i, p in enumerate(self._trainable):
            st = self._opt.state[p]
            st["step"] = torch.tensor(float(self.optimizer.t), dtype=torch.float32)
            for slot, name in slots.items():
                st[name] = self._tensor(moments[slot][i][1]).clone(memory_format=torch.preserve_format)

    def _pull_params(self) -> None:
        """The weights back into core's arrays (for snapshots and evaluation)."""
        for k, v in self._ours(lambda p: p).items():
            self.model.params[k][...] = v

    def _pull(self) -> None:
        """Weights, moments and carried state back into core's arrays (for checkpoints)."""
        self._pull_params()
        for slot, name in SLOTS[self.config.optimizer].items():
            # (`in` first: optimizer.state is a defaultdict, and an entry made for a frozen parameter
            # would break its state_dict)
            moments = self._ours(lambda p, name=name: self._opt.state[p].get(name) if p in self._opt.state else None)
            for k, v in moments.items():
                self.optimizer.state[slot][k][...] = v
        self.state = tuple(tuple(a.cpu().numpy() for a in layer) for layer in self._tstate)

    def _to_device_state(self, state: Any) -> TorchState:
        return [tuple(self._tensor(a) for a in layer) for layer in state]

    def grads(self) -> dict[str, NDArray]:
        """The gradients `_learn` left (clipped), in core's layout and names."""
        return self._ours(lambda p: p.grad)

    # --------------------------------------------------------------- the step
    def _learn(self, window: Window, masks: list[NDArray] | None) -> tuple[float, float]:
        """Forward and backward on this rank's streams of the window; the loss over all B streams
        and the global gradient norm before clipping (gradients clipped as core clips them)."""
        B, T, dev = self.batch, self.seq_len, self.device
        mine, local = self._mine, len(self._mine)
        x = torch.from_numpy(window.x[:, mine].astype(np.int64)).to(dev)  # (T, b) this rank's streams
        y = torch.from_numpy(window.y[:, mine].astype(np.int64)).to(dev)  # (T, b)
        keep: dict[int, torch.Tensor] = {}
        for t, streams in window.resets.items():
            rows = np.isin(mine, streams)  # (b,) this rank's streams that start afresh at t
            if rows.any():
                keep[t] = self._tensor((~rows).astype(np.float64)[:, None])  # (b, 1)
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
        if isinstance(self.controls, AgreedControls):
            self.controls.agree(stop)
        if math.isfinite(norm) and self.config.clip > 0 and norm > self.config.clip:
            scale = self.config.clip / (norm + 1e-12)  # as core.optim.clip_by_global_norm
            for g in grads:
                g.mul_(scale)
        return loss, norm

    def _gather(self, loss_sum: torch.Tensor, new_state: TorchState, local: int) -> tuple[torch.Tensor, bool]:
        """One all-reduce: the loss summed over ranks, every stream's new state, any stop request,
        rank 0's learning rate."""
        import torch.distributed as dist

        L, S, B, H = len(new_state), len(new_state[0]), self.batch, self.model.config.hidden
        buf = torch.zeros(L * S * B * H + 3, dtype=torch.float64, device=self.device)
        full = buf[: L * S * B * H].view(L, S, B, H)
        for k, layer in enumerate(new_state):
            for j, a in enumerate(layer):
                full[k, j, self._mine_t] = a.detach().to(torch.float64)
        buf[-3] = loss_sum.to(torch.float64)
        buf[-2] = float(isinstance(self.controls, AgreedControls) and self.controls.requested)
        if self.rank == 0:  # rank 0's learning rate, which its evaluations may have cut (--lr-decay)
            buf[-1] = self.optimizer.lr
        dist.all_reduce(buf)
        full = full.to(self.dtype)
        self._new_state = [tuple(full[k, j] for j in range(S)) for k in range(L)]
        stop, lr = buf[-2:].tolist()
        self.optimizer.lr = lr  # every rank takes the same step
        return buf[-3], stop > 0

    def _apply(self) -> None:
        for group in self._opt.param_groups:
            group["lr"] = self.optimizer.lr  # Controls.set_lr changes core's optimizer's lr
        self._opt.step()
        self.optimizer.t += 1
        self._tstate = self._new_state

    def _update_average(self) -> None:
        """The moving average of the weights (TrainConfig.average), kept on the device beside them
        in PyTorch's layout (the mapping is linear, so the average maps as the weights do), by
        core's rule; copied into core's `average` only when something reads it (`run_model`)."""
        if self._net is None or self.average is None:
            return super()._update_average()
        n = self.step_count
        keep = min(self.config.average, (1 + n) / (10 + n))
        with torch.no_grad():
            for avg, w in zip(self._tavg, self._trainable, strict=True):
                avg.add_(w - avg, alpha=1.0 - keep)

    def run_model(self) -> Any:
        if self._net is not None and self.average is not None:
            average = self._ours_from(self._tavg)
            for k, v in average.items():
                self.average[k][...] = v
        return super().run_model()

    def _ours_from(self, tensors: list[torch.Tensor]) -> dict[str, NDArray]:
        """Tensors in the order of the trainable parameters (like them), in core's layout."""
        by_param = {id(p): t for p, t in zip(self._trainable, tensors, strict=True)}
        return self._ours(lambda p: by_param.get(id(p)))

    # ------------------------------------------------------------- rollback
    def _take_rollback(self) -> None:
        if self._net is None:
            return super()._take_rollback()
        self._rollback_time = time.perf_counter()
        self._trollback = (
            [p.detach().clone() for p in self._trainable],
            copy.deepcopy(self._opt.state_dict()),
            self.optimizer.t,
        )

    def _roll_back(self) -> None:
        params, opt_state, t = self._trollback
        with torch.no_grad():
            for p, v in zip(self._trainable, params, strict=True):
                p.copy_(v)
        self._opt.load_state_dict(copy.deepcopy(opt_state))
        self.optimizer.t = t
        self.state = self.model.initial_state(self.batch)
        self._tstate = self._to_device_state(self.state)

    # ------------------------------------------------- what other code reads
    def publish(self) -> None:
        if self._net is not None:
            if self.rank != 0:
                return  # nobody reads another rank's snapshot
            self._pull_params()
        super().publish()

    def _start_eval(self, sample_rng: np.random.Generator | None = None, keep_checkpoint: bool = True) -> Any:
        """core's evaluation (its Evaluator, a chunk between steps), with a frozen copy of the run's
        model reading the text on the device; ranks other than 0 do not evaluate."""
        if self._net is None:
            return super()._start_eval(sample_rng, keep_checkpoint)
        if self.rank != 0:
            return None
        self._pull_params()  # core's copy too: the best-model file is written from it
        pending = super()._start_eval(sample_rng, keep_checkpoint)
        mc = self.model.config
        frozen = CharNet(mc.cell, mc.vocab_size, mc.hidden, mc.layers, self.dtype, self.device)
        source = self._tavg if self.average is not None else self._trainable
        with torch.no_grad():
            for p, v in zip(trainable_params(frozen), source, strict=True):
                p.copy_(v)
        view = _EvalView(frozen, self.device, mc.hidden, len(mc.state_names), self.dtype)
        evaluator = Evaluator(view, self.eval_ids, self.corpus.vocab, rng=sample_rng)  # type: ignore[arg-type]
        return dataclasses.replace(pending, evaluator=evaluator)

    def _advance_eval(self) -> Any:
        if self._net is not None and self.rank != 0:
            self._pending = None
            return iter(())
        return super()._advance_eval()

    def to_checkpoint(self) -> Any:
        if self._net is not None:
            self._pull()
        return super().to_checkpoint()

    def save(self, path: Any = None) -> Any:
        """Rank 0 saves; the other ranks hold the same run and write nothing."""
        if self._net is not None and self.rank != 0:
            from pathlib import Path

            return Path(path if path is not None else self.checkpoint or "")
        return super().save(path)
