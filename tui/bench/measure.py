"""`lstm-tui bench`: how fast the engine trains and generates, against PyTorch and the notebook.

`--cell` picks the model (lstm, gru, rnn, gpt; several are measured in one run, each against
PyTorch's own: nn.LSTM, nn.GRU, nn.RNN, and for the GPT nanoGPT's model). The notebook's column
exists only for the LSTM. A GPT is measured on its own configurations (`GPT_CASES`: nanoGPT's CPU
recipe first) with nanoGPT's training step (AdamW, decay 0.1, clip 1) on both sides, and its
generation, which keeps a key/value cache, against nanoGPT's way of generating: the whole cropped
context run through the model again for every character (in PyTorch, nanoGPT's own `generate`; in
NumPy, our forward pass called the same way).

Every figure is the median of several timed repetitions after a warm-up, measured in this one
process. With `--compare torch` each configuration alternates ours and PyTorch repetition by
repetition (the order flipping each time, with a short pause between runs so one library's
spinning worker threads do not eat into the other's time), at the same B, T, H, L, in float32.
The original notebook's algorithm (tui/bench/notebook.py) is a further column wherever its
setting applies.

Threads: by default ours trains on the thread count `lstm-tui train` would choose for each
configuration (measured at the start: tui/plain/threads.py), against PyTorch on its own default
count, and both again on one thread, all in the same alternation; the scaling table gives both
at 1, 2, 4, ... threads up to the machine's cores. `--threads N` runs both on N threads only.
Ours always runs NumPy's BLAS on one thread per call (its threads split the streams).

Sections:
  training    characters/second of optimizer steps (forward + backward + clip + Adam), B x T each
  generation  characters/second of one stream sampled at temperature 1, and the latency of the
              first character after a 50-character seed (weights copy + priming + first draw);
              one stream cannot be split, so ours runs on one thread
  learn       steps and seconds until the whole soliloquy's teacher-forced loss, read from a fresh
              state, is under 0.1 nats/char: ours with the default TrainConfig, the notebook's SGD
  memory      peak resident set of a training run, measured in a fresh child process

The notebook's setting (B=1, T=865) is limited by Python and NumPy call overhead per time step,
not arithmetic; see benchmarks/README.md. Throughput figures depend on the BLAS kernel that ran,
which the report names (OPENBLAS_CORETYPE can force an older one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import threadpoolctl

from core import corpus as corpus_io
from core.corpus import Corpus
from core.engine import numpy_engine_threads
from core.evaluate import evaluate
from core.models import MODELS, ModelConfig, create_model
from core.recipe import choose as choose_recipe
from core.sampling import generate, sample
from core.trainer import TrainConfig, Trainer

from ..plain import threads as threads_policy

SECTIONS = ("training", "generation", "learn", "memory")
LEARN_TARGET = 0.1  # nats/char on the whole soliloquy, read from a fresh state
SEED_CHARS = 50  # generation's seed length for the first-character latency
BENCH_LR = 2e-3  # Adam step size for the throughput runs (both sides; it does not change the speed)
BENCH_CLIP = 5.0  # global-norm clip for the throughput runs (both sides)
PAUSE_S = 0.1  # between alternating runs: lets the other library's spinning threads go to sleep


@dataclass(frozen=True)
class Case:
    """One training configuration."""

    name: str
    hidden: int  # H
    layers: int  # L
    batch: int  # B
    seq_len: int  # T
    notebook: bool = False  # the notebook's setting: the soliloquy itself, read whole; adds its column
    heads: int = 1  # a GPT's heads (its block is T)


@dataclass(frozen=True)
class Profile:
    """How much work each section does."""

    cases: tuple[Case, ...]
    repeats: int  # timed repetitions per measurement (the median is reported)
    rep_seconds: float  # target length of one timed repetition
    gen_hidden: int
    gen_layers: int
    gen_chars: int  # characters per timed generation repetition
    learn: TrainConfig  # the configuration that learns the soliloquy
    learn_max_steps: int  # give up after this many optimizer steps (ours)
    learn_max_epochs: int  # give up after this many epochs (notebook)
    memory_case: Case
    memory_steps: int
    gpt_cases: tuple[Case, ...] = ()  # the GPT's training configurations (heads; block = T)
    gpt_gen: Case | None = None  # the GPT generation measures (hidden, layers, heads, block = seq_len)


# nanoGPT's CPU recipe (config/train_shakespeare_char.py, shrunk for a laptop) and a larger GPT.
GPT_CASES = (Case("nanogpt-cpu", 128, 4, 12, 64, heads=4), Case("gpt-c256", 256, 4, 16, 128, heads=8))


FULL = Profile(
    cases=(
        Case("notebook", 25, 1, 1, 865, notebook=True),
        Case("h128", 128, 1, 32, 64),
        Case("h256x2", 256, 2, 32, 100),
        Case("h512", 512, 1, 64, 100),
    ),
    repeats=7,
    rep_seconds=0.4,
    gen_hidden=256,
    gen_layers=2,
    gen_chars=2000,
    learn=TrainConfig(eval_every=0),  # the defaults; evaluation is done here, every step, untimed
    learn_max_steps=3000,
    learn_max_epochs=1000,
    memory_case=Case("h256x2", 256, 2, 32, 100),
    memory_steps=20,
    gpt_cases=GPT_CASES,
    gpt_gen=GPT_CASES[0],
)

# A tiny configuration that exercises every code path in a second or two (used by the tests).
QUICK = Profile(
    cases=(Case("tiny-notebook", 8, 1, 1, 865, notebook=True), Case("tiny-b4", 16, 2, 4, 12)),
    repeats=2,
    rep_seconds=0.01,
    gen_hidden=16,
    gen_layers=2,
    gen_chars=20,
    learn=TrainConfig(hidden=16, seq_len=16, batch=4, eval_every=0),
    learn_max_steps=3,
    learn_max_epochs=2,
    memory_case=Case("tiny-b4", 16, 2, 4, 12),
    memory_steps=2,
    gpt_cases=(Case("tiny-gpt", 16, 2, 4, 12, heads=2),),
    gpt_gen=Case("tiny-gpt", 16, 2, 4, 12, heads=2),
)


# ------------------------------------------------------------------------------ environment
def blas_info() -> dict[str, Any]:
    """Which BLAS NumPy uses, its kernel (architecture) and thread count."""
    for pool in threadpoolctl.threadpool_info():
        if pool.get("user_api") == "blas":
            return {
                "available": True,
                "library": pool.get("internal_api"),
                "version": pool.get("version"),
                "architecture": pool.get("architecture"),
                "num_threads": pool.get("num_threads"),
            }
    return {"available": False, "note": "no BLAS found by threadpoolctl"}


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit NumPy's BLAS to `n` threads for the duration (no-op when `n` is None)."""
    if n is None:
        yield
        return
    with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
        yield


class OthersCPU:
    """How many cores other processes kept busy while this one measured, at normal priority and at
    low priority (nice 10 or more: a background job that yields to everything else), read from
    /proc (Linux; None elsewhere). A figure measured while others used a core or more at normal
    priority is not what an idle machine gives."""

    LOW_NICE = 10

    def __init__(self) -> None:
        self._start = self._read()

    @classmethod
    def _read(cls) -> tuple[float, dict[int, tuple[float, int]]] | None:
        """(now, pid -> (CPU seconds so far, nice)) of every other process."""
        me = os.getpid()
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        out: dict[int, tuple[float, int]] = {}
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return None
        for pid in pids:
            if pid == me:
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            # after the command: state(0) ... utime(11) stime(12) ... nice(16)
            out[pid] = ((float(fields[11]) + float(fields[12])) / tick, int(fields[16]))
        return time.perf_counter(), out

    def cores(self) -> tuple[float, float] | None:
        """(normal priority, low priority) cores other processes used since this object was made."""
        end = self._read()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return None
        before = self._start[1]
        normal = low = 0.0
        for pid, (cpu, nice) in end[1].items():
            used = cpu - before.get(pid, (0.0, nice))[0]
            if nice >= self.LOW_NICE:
                low += used
            else:
                normal += used
        span = end[0] - self._start[0]
        return max(0.0, normal / span), max(0.0, low / span)


def busy_text(busy: tuple[float, float] | None) -> str:
    """'others: 0.05 cores, and 0.70 at low priority' (or a dash)."""
    if busy is None:
        return "—"
    return f"{busy[0]:.2f} cores, {busy[1]:.2f} at low priority"


def thread_counts(cores: int) -> list[int]:
    """The scaling table's counts: 1, 2, 4, ... and the core count."""
    return threads_policy.candidates(cores, cores)


def load_torch() -> tuple[Any | None, str | None]:
    """The PyTorch reference module, or None and the reason it is unavailable."""
    try:
        from ..pytorch import bench as bench_torch
    except ImportError as e:
        return None, f"PyTorch is not installed ({e}); install it with: pip install 'lstm-tui[torch]'"
    return bench_torch, None


def machine_info(threads: int | None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "threads": threads,
        "blas": blas_info(),
        "env": {
            k: os.environ.get(k)
            for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
        },
    }


# -------------------------------------------------------------------------------- helpers
def soliloquy() -> Corpus:
    return corpus_io.load(corpus_io.bundled_path())


def tiled_corpus(min_chars: int) -> Corpus:
    """The soliloquy repeated until it has at least `min_chars` characters, all for training."""
    text = soliloquy().text()
    return corpus_io.from_text(
        text * max(1, math.ceil(min_chars / len(text))), name="soliloquy (tiled)", val_fraction=0.0
    )


def case_corpus(case: Case) -> Corpus:
    """The soliloquy itself in the notebook's setting (one window is the whole text, the state
    starts fresh each step), else the soliloquy tiled so B streams read on without wrapping often."""
    if case.notebook:
        return soliloquy()
    return tiled_corpus(4 * case.batch * case.seq_len + 1)


def time_it(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def case_trainer(case: Case, corpus: Corpus, cell: str = "lstm", threads: int = 1, wavefront: bool = False) -> Trainer:
    """The trainer whose `train_step` the training section times for `case` (no evaluations), on
    `threads` threads (as a wavefront over the layers, or not): a GPT with nanoGPT's optimizer
    settings, the others with Adam."""
    settings: dict[str, Any] = {"lr": BENCH_LR, "clip": BENCH_CLIP}
    if cell == "gpt":
        settings = gpt_settings(case)
    cfg = TrainConfig(
        cell=cell,
        hidden=case.hidden,
        layers=case.layers,
        seq_len=case.seq_len,
        batch=case.batch,
        eval_every=0,
        **settings,
    )
    return Trainer(corpus, cfg, engine=numpy_engine_threads(threads, wavefront))


def gpt_settings(case: Case) -> dict[str, Any]:
    """A GPT case's shape and nanoGPT's optimizer: AdamW lr 1e-3, decay 0.1, beta2 0.99, clip 1."""
    return {"heads": case.heads, "block": case.seq_len, "lr": 1e-3, "clip": 1.0, "weight_decay": 0.1, "beta2": 0.99}


def calibrate(step: Callable[[], Any], rep_seconds: float, warmup: int = 2) -> int:
    """Warm up, then how many calls of `step` make one repetition of about `rep_seconds`."""
    for _ in range(warmup):
        step()
    one = min(time_it(step) for _ in range(2))
    return max(1, round(rep_seconds / max(one, 1e-9)))


def alternate(runners: dict[str, tuple[Callable[[], Any], int]], repeats: int) -> dict[str, float]:
    """Median seconds per call for each named (step, calls per repetition), run in turns whose order
    flips every repetition so neither side always goes first."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else reversed(names):
            step, n = runners[name]
            if len(runners) > 1:
                time.sleep(PAUSE_S)
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


# ------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class Threads:
    """Which thread counts the training section measures."""

    fixed: int | None  # --threads N: ours and PyTorch on N only
    cores: int  # the cores this process may use (the scaling table goes up to them)
    torch_default: int  # PyTorch's own default count


def bench_training(
    profile: Profile,
    torch_mod: Any | None,
    notebook: bool,
    cases: list[str] | None,
    log: Callable[[str], None],
    cells: tuple[str, ...] = ("lstm",),
    counts: Threads | None = None,
) -> list[dict[str, Any]]:
    """Characters per second of full optimizer steps, per configuration and cell."""
    counts = counts or Threads(1, 1, 1)
    rows = []
    for case in profile.cases:  # each configuration in every recurrent cell, then the GPT's own
        for cell in cells:
            if cell != "gpt" and not (cases and case.name not in cases):
                rows.append(_bench_case(profile, torch_mod, notebook and cell == "lstm", case, cell, log, counts))
    for case in profile.gpt_cases if "gpt" in cells else ():
        if not (cases and case.name not in cases):
            rows.append(_bench_case(profile, torch_mod, False, case, "gpt", log, counts))
    return rows


def _bench_case(
    profile: Profile,
    torch_mod: Any | None,
    notebook: bool,
    case: Case,
    cell: str,
    log: Callable[[str], None],
    counts: Threads,
) -> dict[str, Any]:
    """One training row: ours against PyTorch's module for the same cell (and the notebook), on
    the default thread counts, on one thread, and on each count of the scaling table."""
    heads = f" heads={case.heads}" if cell == "gpt" else ""
    log(f"training {case.name} {cell}: H={case.hidden} L={case.layers}{heads} B={case.batch} T={case.seq_len}")
    corpus = case_corpus(case)
    probe = case_trainer(case, corpus, cell)
    B, T = probe.batch, probe.seq_len
    wave = False
    if counts.fixed is not None:
        ours_default, torch_default, why = counts.fixed, counts.fixed, f"--threads {counts.fixed}"
        ours_counts, torch_counts = [counts.fixed], [counts.fixed]
    else:
        choice = threads_policy.choose(probe, None)
        log(f"  ours: {choice.line()}")
        ours_default, torch_default, why = choice.threads, counts.torch_default, choice.reason
        wave = choice.wavefront
        scale = thread_counts(counts.cores)
        ours_counts = sorted({1, *(n for n in scale if n <= B)})  # (no more threads than streams)
        if not wave:
            ours_counts = sorted({ours_default, *ours_counts})
        torch_counts = sorted({1, torch_default, *scale})
    runners: dict[str, tuple[Callable[[], Any], int]] = {}
    for n in ours_counts:
        step = probe.train_step if n == 1 else case_trainer(case, corpus, cell, n).train_step
        runners[f"ours@{n}"] = (step, calibrate(step, profile.rep_seconds))
    default_key = f"ours@{ours_default}"
    if wave:  # the wavefront chosen: measured beside the scaling table's split streams
        default_key = f"ours@{ours_default}w"
        step = case_trainer(case, corpus, cell, ours_default, True).train_step
        runners[default_key] = (step, calibrate(step, profile.rep_seconds))
    if torch_mod is not None:
        from core.batches import Batches

        for n in torch_counts:
            if cell == "gpt":
                V, g = corpus.vocab.size, gpt_settings(case)
                tt = torch_mod.TorchGPTTrainer(
                    V, case.hidden, case.layers, case.heads, case.seq_len, g["lr"], g["clip"]
                )
            else:
                tt = torch_mod.TorchTrainer(
                    corpus.vocab.size, case.hidden, case.layers, BENCH_LR, BENCH_CLIP, cell=cell
                )
            windows = Batches(corpus.train_ids, B, T)

            def torch_step(tt: Any = tt, windows: Batches = windows, n: int = n) -> float:
                torch_mod.set_threads(n)
                w = windows.next()
                return tt.step(w.x, w.y)

            runners[f"torch@{n}"] = (torch_step, calibrate(torch_step, profile.rep_seconds))
    if notebook and case.notebook:
        from .notebook import NotebookLSTM

        nb = NotebookLSTM(corpus.vocab.size, case.hidden)
        inputs, labels = nb.one_hot(corpus.ids[:-1]), corpus.ids[1:]

        def notebook_epoch(nb: NotebookLSTM = nb, inputs: list = inputs, labels: np.ndarray = labels) -> float:
            return nb.epoch(inputs, labels)

        runners["notebook"] = (notebook_epoch, calibrate(notebook_epoch, profile.rep_seconds, warmup=1))
    others = OthersCPU()
    secs = alternate(runners, profile.repeats)
    others_cores = others.cores()
    cps = {name: B * T / s for name, s in secs.items()}
    ours, torch_ = cps[default_key], cps.get(f"torch@{torch_default}")
    ours1, torch1 = cps.get("ours@1"), cps.get("torch@1")
    return {
        **asdict(case),
        "cell": cell,
        "batch": B,
        "seq_len": T,
        "vocab": corpus.vocab.size,
        "ours_threads": ours_default,
        "ours_wavefront": wave,
        "ours_threads_why": why,
        "torch_threads": torch_default if torch_mod is not None else None,
        "ours_chars_per_s": ours,
        "torch_chars_per_s": torch_,
        "notebook_chars_per_s": cps.get("notebook"),
        "ours_over_torch": ratio(ours, torch_),
        "ours_over_notebook": ratio(ours, cps.get("notebook")),
        "one_thread": None
        if counts.fixed is not None
        else {"ours_chars_per_s": ours1, "torch_chars_per_s": torch1, "ours_over_torch": ratio(ours1, torch1)},
        "scaling": {
            "ours": {n: cps[f"ours@{n}"] for n in ours_counts},  # the streams split over n threads
            "torch": {n: cps[f"torch@{n}"] for n in torch_counts if f"torch@{n}" in cps},
        },
        "steps_per_repeat": {name: n for name, (_, n) in runners.items()},
        "others_cores": others_cores,
    }


def bench_generation(
    profile: Profile, torch_mod: Any | None, log: Callable[[str], None], cell: str = "lstm", torch_threads: int = 1
) -> dict[str, Any]:
    """One stream at temperature 1: characters per second, and the first character's latency.
    Ours on one thread (one stream cannot be split); PyTorch on `torch_threads` and on one."""
    if cell == "gpt":
        return bench_gpt_generation(profile, torch_mod, log)
    H, L = profile.gen_hidden, profile.gen_layers
    log(f"generation {cell}: H={H} L={L}, one stream, temperature 1")
    text = soliloquy()
    V = text.vocab.size
    seed_ids = text.ids[:SEED_CHARS]
    model = create_model(ModelConfig(V, H, L, cell=cell), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    stepper = model.stepper()
    n = profile.gen_chars

    def ours_stream() -> None:
        for _ in generate(stepper, seed_ids, n, rng, temperature=1.0):
            pass

    def ours_first() -> None:
        next(iter(generate(model, seed_ids, 1, rng, temperature=1.0)))  # copies weights, primes, draws

    runners: dict[str, tuple[Callable[[], Any], int]] = {"ours": (ours_stream, 1)}
    first: dict[str, tuple[Callable[[], Any], int]] = {"ours": (ours_first, 1)}
    if torch_mod is not None:
        tg = torch_mod.TorchGenerator(V, H, L, cell=cell)
        for name, k in (("torch", torch_threads), ("torch1", 1)):
            if name == "torch1" and torch_threads == 1:
                continue

            def torch_stream(k: int = k) -> None:
                torch_mod.set_threads(k)
                tg.generate(seed_ids, n)

            def torch_first(k: int = k) -> None:
                torch_mod.set_threads(k)
                tg.generate(seed_ids, 1)

            runners[name] = (torch_stream, 1)
            first[name] = (torch_first, 1)
    for fn, _ in list(runners.values()) + list(first.values()):
        fn()  # warm-up
    secs = alternate(runners, profile.repeats)
    # The stream times include priming the seed once; subtract nothing: at 2000 chars it is ~2%.
    cps = {name: n / s for name, s in secs.items()}
    torch1 = cps.get("torch1", cps.get("torch") if torch_threads == 1 else None)
    lat = alternate(first, max(profile.repeats, 5))
    return {
        "cell": cell,
        "hidden": H,
        "layers": L,
        "vocab": V,
        "chars": n,
        "seed_chars": SEED_CHARS,
        "torch_threads": torch_threads if torch_mod is not None else None,
        "ours_chars_per_s": cps["ours"],
        "torch_chars_per_s": cps.get("torch"),
        "ours_over_torch": ratio(cps["ours"], cps.get("torch")),
        "torch_1thread_chars_per_s": torch1,
        "ours_over_torch_1thread": ratio(cps["ours"], torch1),
        "ours_first_char_ms": lat["ours"] * 1e3,
        "torch_first_char_ms": lat["torch"] * 1e3 if "torch" in lat else None,
    }


def bench_gpt_generation(profile: Profile, torch_mod: Any | None, log: Callable[[str], None]) -> dict[str, Any]:
    """The GPT's generation with its key/value cache against nanoGPT's: for every character the
    context cropped to the block and run through the whole model (NumPy: our forward pass; PyTorch:
    nanoGPT's generate). One stream at temperature 1, past the block (the cache's rule applies)."""
    case = profile.gpt_gen
    assert case is not None
    H, L, heads, block = case.hidden, case.layers, case.heads, case.seq_len
    log(f"generation gpt: C={H} L={L} heads={heads} block={block}, one stream, temperature 1")
    text = soliloquy()
    V = text.vocab.size
    seed_ids = text.ids[:SEED_CHARS]
    config = ModelConfig(V, H, L, cell="gpt", heads=heads, block=block)
    rng = np.random.default_rng(0)
    model = create_model(config, rng)
    for p in model.params.values():  # a spread of logits like a trained model's, not a flat one
        p += rng.normal(0.0, 0.05, p.shape).astype(p.dtype)
    stepper = model.stepper()
    n = profile.gen_chars
    draw = np.random.default_rng(1)

    def cached() -> None:
        for _ in generate(stepper, seed_ids, n, draw, temperature=1.0):
            pass

    def recomputed() -> None:
        ids = list(seed_ids)
        for _ in range(n):
            context = np.asarray(ids[-block:])[:, None]  # (<= block, 1): crop, as nanoGPT does
            logits = model.forward(context, ())[0][-1, 0]  # the whole model, the last position kept
            ids.append(sample(logits, draw, 1.0))

    runners: dict[str, tuple[Callable[[], Any], int]] = {"ours": (cached, 1), "recompute": (recomputed, 1)}
    if torch_mod is not None:
        tg = torch_mod.TorchGPTGenerator(V, H, L, heads, block)
        runners["torch"] = (lambda: tg.generate(seed_ids, n), 1)
    for fn, _ in runners.values():
        fn()  # warm-up
    secs = alternate(runners, max(3, profile.repeats // 2))
    cps = {name: n / s for name, s in secs.items()}
    return {
        "cell": "gpt",
        "hidden": H,
        "layers": L,
        "heads": heads,
        "block": block,
        "vocab": V,
        "chars": n,
        "seed_chars": SEED_CHARS,
        "ours_chars_per_s": cps["ours"],
        "recompute_chars_per_s": cps["recompute"],
        "torch_chars_per_s": cps.get("torch"),
        "ours_over_recompute": ratio(cps["ours"], cps["recompute"]),
        "ours_over_torch": ratio(cps["ours"], cps.get("torch")),
    }


def learn_config(profile: Profile, cell: str) -> TrainConfig:
    """The settings that learn the soliloquy: the profile's, or for a GPT its fitted ones (core.recipe)."""
    if cell != "gpt":
        return replace(profile.learn, cell=cell)
    text = soliloquy()
    settings = choose_recipe(len(text.train_ids), text.vocab.size, {"cell": "gpt"}, flops=1.0).settings
    if profile.learn.hidden < 32:  # the quick profile: a smaller GPT
        settings.update(hidden=profile.learn.hidden, heads=2, layers=1)
    return TrainConfig(**{**settings, "eval_every": 0})


def bench_learn(
    profile: Profile, notebook: bool, log: Callable[[str], None], cell: str = "lstm", fixed: int | None = None
) -> dict[str, Any]:
    """Time (training only; the checks are not timed) until the whole-text loss is under 0.1, on
    the thread count `train` would choose (or `fixed`)."""
    text = soliloquy()
    cfg = learn_config(profile, cell)
    notebook = notebook and cell == "lstm"  # the notebook's algorithm is an LSTM
    log(f"learn the soliloquy: ours ({cell}), H={cfg.hidden} B={cfg.batch} T={cfg.seq_len} {cfg.optimizer} lr={cfg.lr}")
    trainer = Trainer(text, cfg)
    choice = threads_policy.choose(trainer, fixed)
    threads_policy.apply(trainer, choice)
    loss = evaluate(trainer.model, text.ids, text.vocab).loss
    seconds = 0.0
    while loss >= LEARN_TARGET and trainer.step_count < profile.learn_max_steps:
        seconds += time_it(trainer.train_step)
        loss = evaluate(trainer.model, text.ids, text.vocab).loss
    ours = {
        "reached": loss < LEARN_TARGET,
        "steps": trainer.step_count,
        "seconds": seconds,
        "loss": loss,
        "config": {k: getattr(cfg, k) for k in ("hidden", "layers", "seq_len", "batch", "optimizer", "lr", "clip")},
        "batch_used": trainer.batch,
        "seq_len_used": trainer.seq_len,
        "threads": choice.threads,
    }
    result: dict[str, Any] = {
        "cell": cell,
        "target_nats": LEARN_TARGET,
        "chars": text.size,
        "ours": ours,
        "notebook": None,
    }
    if notebook:
        from .notebook import NotebookLSTM

        log("learn the soliloquy: the notebook's algorithm (H=25, SGD lr 0.05, one character at a time)")
        nb = NotebookLSTM(text.vocab.size)
        inputs, labels = nb.one_hot(text.ids[:-1]), text.ids[1:]
        # An epoch's forward pass reads the whole text from a fresh state with the weights of
        # the epoch before, so the check is free: stop at the first epoch whose loss is < 0.1
        # and count the time of the updates before it (its own forward pass is not counted).
        elapsed, updates, nb_loss = 0.0, 0, math.inf
        while updates < profile.learn_max_epochs:
            t0 = time.perf_counter()
            nb_loss = nb.epoch(inputs, labels)
            dt = time.perf_counter() - t0
            if nb_loss < LEARN_TARGET:
                break
            elapsed += dt
            updates += 1
        result["notebook"] = {"reached": nb_loss < LEARN_TARGET, "epochs": updates, "seconds": elapsed, "loss": nb_loss}
        if ours["reached"] and nb_loss < LEARN_TARGET:
            result["notebook_over_ours"] = elapsed / max(seconds, 1e-9)
    return result


def peak_rss_kib() -> int:
    """This process's peak resident set in KiB.

    /proc/self/status VmHWM belongs to the current address space; getrusage's ru_maxrss (the
    fallback) survives exec on Linux, so a child started from a big parent would report the
    parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def _memory_child(spec: str) -> None:
    """Run in a fresh interpreter: train `steps` steps of a case and print peak RSS (KiB) as JSON."""
    d = json.loads(spec)
    case = Case(**d["case"])
    rss = peak_rss_kib
    corpus = case_corpus(case)
    before = rss()
    trainer = case_trainer(case, corpus, d.get("cell", "lstm"))
    for _ in range(d["steps"]):
        trainer.train_step()
    print(json.dumps({"baseline_kib": before, "peak_kib": rss()}))


def bench_memory(profile: Profile, log: Callable[[str], None], cell: str = "lstm") -> dict[str, Any]:
    """Peak resident set of a training run in a fresh process, and the same process before training."""
    case = profile.gpt_cases[0] if cell == "gpt" and profile.gpt_cases else profile.memory_case
    log(f"memory: {profile.memory_steps} steps of {case.name} {cell} in a child process")
    spec = json.dumps({"case": asdict(case), "steps": profile.memory_steps, "cell": cell})
    code = f"from tui.bench.measure import _memory_child; _memory_child({spec!r})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    result: dict[str, Any] = {**asdict(case), "cell": cell, "steps": profile.memory_steps}
    if out.returncode != 0:
        result["error"] = (out.stderr.strip().splitlines() or ["child process failed"])[-1]
        return result
    d = json.loads(out.stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = d["peak_kib"] / 1024
    result["baseline_rss_mib"] = d["baseline_kib"] / 1024  # interpreter + NumPy + the text
    result["training_rss_mib"] = (d["peak_kib"] - d["baseline_kib"]) / 1024
    return result


# ---------------------------------------------------------------------------------- report
def _fmt(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}x"


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables, as the README carries them."""
    lines: list[str] = []
    m = report["machine"]
    blas = m["blas"]
    kernel = (
        f"{blas.get('library')} {blas.get('version')}, kernel {blas.get('architecture')}"
        if blas.get("available")
        else blas.get("note")
    )
    load = m.get("load_average_1min")
    threads = f"--threads {m['threads']}" if m.get("threads") else "threads as `lstm-tui train` chooses them"
    torch_threads = (report["torch"].get("default_threads") or m.get("threads")) if report["torch"]["version"] else None
    lines.append(
        f"Machine: {m['cpus']} CPUs, Python {m['python']}, NumPy {m['numpy']} ({kernel}, one BLAS thread per "
        f"call), {threads}; PyTorch {report['torch']['version'] or 'not run'}"
        + (f" ({torch_threads} threads by default)" if torch_threads else "")
        + (f"; load average {load:.1f} at the start." if load is not None else ".")
    )
    lines.append("Ratios above 1 mean ours is faster (for the first character: PyTorch's time / ours).")
    if not report["torch"]["available"] and report["torch"]["requested"]:
        lines.append(f"PyTorch comparison skipped: {report['torch']['reason']}")
    lines.append("")
    rows = report.get("training") or []
    if rows:
        one = any(r.get("one_thread") for r in rows)
        head = "| training (chars/s, median) | ours | PyTorch | ours / PyTorch |"
        rule = "|---|---:|---:|---:|"
        if one:
            head += " ours, 1 thread | PyTorch, 1 thread | ours / PyTorch |"
            rule += "---:|---:|---:|"
        lines += [head + " notebook | ours / notebook |", rule + "---:|---:|"]
        for r in rows:
            tt = f" ({r['torch_threads']})" if r.get("torch_threads") else ""
            wave = " wavefront" if r.get("ours_wavefront") else ""
            shape = f"H={r['hidden']} L={r['layers']}"
            if r["cell"] == "gpt":
                shape = f"C={r['hidden']} L={r['layers']} heads={r['heads']} block={r['seq_len']}"
            line = (
                f"| {r['cell']} {shape} B={r['batch']} T={r['seq_len']} "
                f"| {_fmt(r['ours_chars_per_s'])} ({r['ours_threads']}{wave}) "
                f"| {_fmt(r['torch_chars_per_s'])}{tt if r['torch_chars_per_s'] else ''} | {_x(r['ours_over_torch'])} |"
            )
            if one:
                o = r.get("one_thread") or {}
                line += (
                    f" {_fmt(o.get('ours_chars_per_s'))} | {_fmt(o.get('torch_chars_per_s'))} "
                    f"| {_x(o.get('ours_over_torch'))} |"
                )
            line += f" {_fmt(r['notebook_chars_per_s'])} | {_x(r['ours_over_notebook'])} |"
            lines.append(line)
        lines.append("(n): the threads each side trained on.")
        busy = [(r["name"], r.get("others_cores")) for r in rows if r.get("others_cores") is not None]
        if busy:
            lines.append(
                "Other processes kept busy while each row was measured: "
                + "; ".join(f"{name} {busy_text(c)}" for name, c in busy)
                + "."
            )
        lines.append("")
        scaled = [r for r in rows if len(r.get("scaling", {}).get("ours", {})) > 1]
        if scaled:
            ns = sorted({int(n) for r in scaled for n in r["scaling"]["ours"]})
            lines += [
                "| scaling (chars/s; speed-up over 1 thread) | "
                + " | ".join(f"ours, {n}" for n in ns)
                + " | "
                + " | ".join(f"PyTorch, {n}" for n in ns)
                + " |",
                "|---|" + "---:|" * (2 * len(ns)),
            ]
            for r in scaled:
                cells = []
                for side in ("ours", "torch"):
                    got = {int(k): v for k, v in r["scaling"].get(side, {}).items()}
                    base = got.get(1)
                    for n in ns:
                        v = got.get(n)
                        cells.append("—" if v is None else f"{_fmt(v)} ({v / base:.2f}x)" if base else _fmt(v))
                lines.append(
                    f"| {r['cell']} H={r['hidden']} L={r['layers']} B={r['batch']} T={r['seq_len']} | "
                    + " | ".join(cells)
                    + " |"
                )
            lines.append("")
    for g in report.get("generation") or []:
        if g["cell"] == "gpt":
            lines += [
                f"| generation, gpt C={g['hidden']} L={g['layers']} heads={g['heads']} block={g['block']}, "
                f"{g['chars']} chars, one stream | chars/s | cached / this |",
                "|---|---:|---:|",
                f"| ours: key/value cache | {_fmt(g['ours_chars_per_s'])} | |",
                f"| NumPy, nanoGPT's way (the cropped context recomputed per character) "
                f"| {_fmt(g['recompute_chars_per_s'])} | {_x(g['ours_over_recompute'])} |",
                f"| PyTorch, nanoGPT's generate | {_fmt(g['torch_chars_per_s'])} | {_x(g['ours_over_torch'])} |",
                "",
            ]
            continue
        t1 = g.get("torch_1thread_chars_per_s")
        tt = g.get("torch_threads")
        lines += [
            f"| generation, {g['cell']} H={g['hidden']} L={g['layers']}, one stream, temperature 1 "
            f"| ours (1 thread) | PyTorch ({tt or '—'}) | ours / PyTorch |",
            "|---|---:|---:|---:|",
            f"| chars/s | {_fmt(g['ours_chars_per_s'])} | {_fmt(g['torch_chars_per_s'])} "
            f"| {_x(g['ours_over_torch'])} |",
        ]
        if t1 is not None and tt != 1:
            lines.append(
                f"| chars/s, PyTorch on 1 thread | {_fmt(g['ours_chars_per_s'])} | {_fmt(t1)} "
                f"| {_x(g.get('ours_over_torch_1thread'))} |"
            )
        lines += [
            f"| first char after a {g['seed_chars']}-char seed (ms) | {_fmt(g['ours_first_char_ms'], 2)} "
            f"| {_fmt(g['torch_first_char_ms'], 2)} | "
            f"{_x(ratio(g['torch_first_char_ms'], g['ours_first_char_ms']))} |",
            "",
        ]
    for learn in report.get("learn") or []:
        o, nb = learn["ours"], learn["notebook"]
        c = o["config"]

        def reached(d: dict[str, Any], unit: str, n: int) -> str:
            return f"{n} {unit}" if d["reached"] else f"not reached in {n} {unit} (loss {d['loss']:.3f})"

        lines += [
            f"| learn the soliloquy (whole-text loss < {learn['target_nats']} nats/char, fresh state) "
            "| steps | seconds |",
            "|---|---:|---:|",
            f"| ours: {learn['cell']}, defaults (H={c['hidden']} B={o['batch_used']} T={o['seq_len_used']}, "
            f"{c['optimizer']} lr {c['lr']:g}, {o.get('threads', 1)} thread{'s' if o.get('threads', 1) > 1 else ''}) "
            f"| {reached(o, 'steps', o['steps'])} | {o['seconds']:.2f} |",
        ]
        if nb:
            lines.append(
                f"| notebook (H=25, SGD lr 0.05, one char at a time) "
                f"| {reached(nb, 'epochs', nb['epochs'])} | {nb['seconds']:.2f} |"
            )
            if learn.get("notebook_over_ours"):
                lines.append(f"| **ours is faster by** | | **{learn['notebook_over_ours']:.0f}x** |")
        lines.append("")
    for mem in report.get("memory") or []:
        if "error" in mem:
            lines.append(f"Memory: the child process failed: {mem['error']}")
        else:
            lines.append(
                f"Peak RSS training {mem['cell']} H={mem['hidden']} L={mem['layers']} "
                f"B={mem['batch']} T={mem['seq_len']} "
                f"({mem['steps']} steps, fresh process): {mem['peak_rss_mib']:.0f} MiB "
                f"({mem['baseline_rss_mib']:.0f} MiB before training)."
            )
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bench` subcommand's options."""
    parser.add_argument("--quick", action="store_true", help="a tiny configuration that runs in seconds (for tests)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument(
        "--compare",
        choices=("none", "torch"),
        default="none",
        help="also run PyTorch CPU (nn.LSTM, nn.GRU or nn.RNN) on the same configurations, alternating with ours",
    )
    parser.add_argument(
        "--cell",
        action="append",
        choices=tuple(MODELS),
        help="the recurrent cell to measure (repeatable: each one against PyTorch's module); default lstm",
    )
    parser.add_argument("--no-notebook", action="store_true", help="skip the original notebook's algorithm")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--case", action="append", metavar="NAME", help="run only this training configuration (repeatable)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per figure (median reported)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for ours (each with one BLAS thread) and PyTorch alike; default: ours on what "
        "'lstm-tui train' would choose (measured) and PyTorch on its default, both also on one thread, "
        "and a scaling table up to the machine's cores",
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by `args`; print tables or JSON; 0 on success."""
    profile = QUICK if args.quick else FULL
    if args.repeats is not None:
        if args.repeats < 1:
            print("error: --repeats must be at least 1", file=sys.stderr)
            return 2
        profile = Profile(**{**profile.__dict__, "repeats": args.repeats})
    known = {c.name for c in profile.cases + profile.gpt_cases}
    for name in args.case or []:
        if name not in known:
            print(f"error: unknown configuration {name!r}; choose from {', '.join(sorted(known))}", file=sys.stderr)
            return 2
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be at least 1", file=sys.stderr)
        return 2
    sections = args.only or list(SECTIONS)
    cells = tuple(dict.fromkeys(args.cell or ["lstm"]))  # in the order given, once each
    notebook = not args.no_notebook

    def log(msg: str) -> None:
        print(f"bench: {msg}", file=sys.stderr, flush=True)

    torch_mod, reason = (None, None)
    if args.compare == "torch":
        torch_mod, reason = load_torch()
        if torch_mod is None:
            log(reason or "PyTorch is unavailable")
    torch_default = torch_mod.DEFAULT_THREADS if torch_mod is not None else 1
    counts = Threads(args.threads, threads_policy.available_cores(), torch_default)
    report: dict[str, Any] = {
        "profile": "quick" if args.quick else "full",
        "repeats": profile.repeats,
        "cells": list(cells),
        "torch": {
            "requested": args.compare == "torch",
            "available": torch_mod is not None,
            "version": torch_mod.version() if torch_mod is not None else None,
            "reason": reason,
            "default_threads": torch_default if torch_mod is not None else None,
        },
    }
    with blas_threads(1):  # ours: one BLAS thread per call, whatever the count of its own threads
        report["machine"] = machine_info(args.threads)
        if "training" in sections:
            report["training"] = bench_training(profile, torch_mod, notebook, args.case, log, cells, counts)
        gen_threads = args.threads or torch_default
        if "generation" in sections:
            report["generation"] = [bench_generation(profile, torch_mod, log, cell, gen_threads) for cell in cells]
        if "learn" in sections:
            report["learn"] = [bench_learn(profile, notebook, log, cell, args.threads) for cell in cells]
    if "memory" in sections:
        report["memory"] = [bench_memory(profile, log, cell) for cell in cells]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(markdown(report), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m tui.bench.measure`: the same as `lstm-tui bench`."""
    parser = argparse.ArgumentParser(prog="lstm-tui bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
