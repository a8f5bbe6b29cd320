"""`lstm-tui watch`: the interface on a run that another process trains, read from its checkpoint.

The screen is the training screen's (same panels, same layout), fed from the checkpoint instead of
a training thread. Every `POLL_S` a thread worker checks the file's version (tui.follow.Follower)
and reads it when it changed, and reads what the run's log gained; the UI thread only shows what
the worker posts. A read that fails leaves the last good model on screen, with a notice and a red
header, until a good file appears again. Nothing here writes a file: quitting just quits, and the
run being watched never knows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState, get_current_worker

from core import CharModel, EvalReport, Vocab, evaluate
from core.corpus import Corpus
from core.evaluate import DETAIL_CHARS

from ..plain import follow
from ..plain.format import duration
from ..widgets.comparison import ComparisonView
from ..widgets.help_screen import HelpScreen
from ..widgets.inside_screen import InsideScreen
from ..widgets.loss_chart import LossChart
from ..widgets.stats import StatsPanel
from ..widgets.status_line import StatusLine, describe_model
from .base import PLAY_BINDINGS, SEED_BINDING, PlayApp, compose_model_screen, default_seed
from .palette import AppCommands, PaletteCommand

POLL_S = 0.5  # how often the checkpoint's modification time (and the log) is checked
HEADER_EVERY_S = 1.0  # the header's "last save N s ago" follows the clock this often
# The watcher shares the machine with the run it watches, often on few cores: it reads a changed
# checkpoint at most once per READ_GAP times the last read took, and validates the newest model
# at most once a second (a run saving every few steps would otherwise keep a core busy).
READ_GAP = 4.0
ASSESS_EVERY_S = 1.0

WATCH_HELP = """\
lstm-tui watch shows a run that another process trains (a headless
`lstm-tui train --save-every N`, another session, another machine
sharing the folder). It reads the checkpoint each time it is saved, and
<checkpoint>.jsonl beside it when the run writes one (train --log), and
never writes anything: quitting leaves the run as it is.

HEADER
  WATCHING    this screen does not train; "last save 12s ago, step 3,400"
              says which saved weights are on screen. Red: the last read
              failed (the file vanished or is not a checkpoint); the last
              good model stays on screen until a good file appears.

PANELS
  loss graph  training loss per step from the checkpoint's history, then
              each evaluation the log recorded since the last save;
              validation loss (diamonds); the dashed line is ln V.
  stats       the run's step, loss, validation, speed (between the last
              two saves, or the log's), learning rate, training time.
  truth vs    the training text's validation part with the saved model's
  prediction  guess for each next character, when the text is found
              beside the checkpoint, here, or given with --corpus.
  generate    type a seed, press enter or ctrl+g: the newest saved
              weights continue it. Temperature 0 is greedy.
  next char   the likeliest next characters after the seed.

KEYS
  ctrl+q      quit (ctrl+c too); the run goes on
  ctrl+g      generate from the seed (enter in the seed box too)
  escape      stop generating
  f7 / f8     temperature down / up by 0.05
  f3          back to the seed box, its text selected
  f4          look inside: the text coloured by one unit's gate, cell or
              hidden value (arrows pick unit and layer, q the quantity)
  ctrl+p      command palette: read the checkpoint again, ...
  f1          this help (escape closes it)
"""


class Polled(Message):
    """What one poll of the files found: a new model or a failed read, and/or new log records."""

    def __init__(self, result: follow.Loaded | follow.Failed | None, log: tuple[list[dict], bool] | None) -> None:
        super().__init__()
        self.result = result
        self.log = log


class Assessed(Message):
    """The saved model read the validation text: the stats and the comparison show it."""

    def __init__(self, report: EvalReport, seq: int) -> None:
        super().__init__()
        self.report = report
        self.seq = seq  # which good read it was computed from (WatchApp.loads when it was shown)


class WatchedModel:
    """The read side of a trainer that the inside view uses: the text, the weights on screen, their step."""

    def __init__(self, corpus: Corpus, snapshot: CharModel, step_count: int) -> None:
        self.corpus = corpus
        self.snapshot = snapshot
        self.step_count = step_count


class WatchApp(PlayApp):
    """Watch a run that another process trains. (Generation and the next-character view: tui.play.)"""

    CSS_PATH = "train.tcss"
    TITLE = "lstm-tui watch"
    COMMANDS = App.COMMANDS | {AppCommands}  # lists palette_commands()

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("f1", "help", "Help"),
        *PLAY_BINDINGS,
        SEED_BINDING,
        Binding("f4", "inside", "Inside"),
    ]

    def __init__(
        self,
        path: str | Path,
        first: follow.Loaded,
        corpus: Corpus | None = None,
        corpus_note: str = "",
        log_path: str | Path | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.follower = follow.Follower(self.path, first)
        self.log_tail = follow.LogTail(log_path) if log_path is not None else None
        self.poll_s = poll_s
        self.loaded = first  # the newest good read: the model on screen
        self.previous: follow.Loaded | None = None  # the one before (for the speed between saves)
        self.failure: follow.Failed | None = None  # the last read failed (cleared by a good one)
        self.records: list[dict[str, Any]] = []  # the log's records so far
        self.has_text = corpus is not None
        self.corpus = corpus if corpus is not None else follow.generated_corpus(first)
        self.corpus_note = corpus_note
        self.source = WatchedModel(self.corpus, first.model, first.step)
        self.loads = 1  # good reads shown (the inside view refreshes when it changes)
        self.polls = 0  # polls finished (for tests: a poll saw the files as they are)
        self._reload = False  # read the checkpoint at the next poll even if unchanged
        self._to_assess: tuple[follow.Loaded, int] | None = None  # a model waiting for validation, its seq
        self._assessed_seq = 0  # the read whose validation is on screen

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        first, cfg = self.loaded, self.loaded.config
        info = first.meta.get("corpus") or {}
        name = info.get("name") or "?"
        corpus_info = f"{name} · {int(info.get('size') or 0):,} chars · V={first.vocab.size}"
        model = first.model.config
        tokens = int(first.meta.get("batch_used") or cfg.batch) * int(first.meta.get("seq_len_used") or cfg.seq_len)
        seed = default_seed(self.corpus.text(0, 200))  # (the model's own words without the text)
        model_line = describe_model(model)
        yield from compose_model_screen(corpus_info, model_line, first.vocab.size, cfg.steps, tokens, seed)

    def on_mount(self) -> None:
        """Show the first read, then follow the files and the clock."""
        status = self.query_one(StatusLine)
        status.state = "watching"
        if not self.has_text:
            view = self.query_one(ComparisonView)
            view.waiting = f"no ground truth to compare with: {self.corpus_note}"
        self.query_one("#seed", Input).focus()
        self._show_model()
        self.set_interval(self.poll_s, self._poll)
        self.set_interval(HEADER_EVERY_S, self._tick)

    # ---------------------------------------------------------------- following
    def _poll(self) -> None:
        """Start a poll of the files unless one is still reading (or the last read was slow)."""
        if any(w.group == "poll" and not w.is_finished for w in self.workers):
            return
        if time.monotonic() - self.follower.read_at < READ_GAP * self.follower.read_s:
            return
        self.run_worker(self._poll_files, name="poll", group="poll", thread=True, exit_on_error=False)

    def _tick(self) -> None:
        """Once a second: the header's clock, and validation of the newest model if it waits."""
        self._show_header()
        pending = self._to_assess
        if pending is not None and not any(w.group == "assess" and not w.is_finished for w in self.workers):
            self._to_assess = None
            self._assess(*pending)

    def _poll_files(self) -> None:
        """The poll thread: read the checkpoint if it changed, and what the log gained."""
        if self._reload:
            self._reload = False
            self.follower.forget()
        result = self.follower.poll()
        log = self.log_tail.read() if self.log_tail is not None else None
        if not get_current_worker().is_cancelled:
            self.post_message(Polled(result, log))

    @on(Polled)
    def _on_polled(self, message: Polled) -> None:
        """A poll finished: show a new model, a failed read, or the log's new records."""
        self.polls += 1
        if not self.is_running:
            return
        if message.log is not None:
            new, restart = message.log
            self.records = new if restart else self.records + new
        result = message.result
        if isinstance(result, follow.Loaded):
            self.previous, self.loaded, self.failure = self.loaded, result, None
            self.query_one(StatusLine).state = "watching"
            self._show_model()
            return
        if isinstance(result, follow.Failed):
            self.failure = result
            self.query_one(StatusLine).state = "watch-failed"
            self.notify(
                f"{result.reason}. Still showing step {self.loaded.step:,}; "
                "the screen follows again when a good checkpoint appears.",
                title="checkpoint unreadable: keeping the last good model",
                severity="error",
                timeout=10,
                markup=False,
            )
            self._show_header()
        if message.log is not None and message.log[0]:
            self._show_progress()

    def _show_model(self) -> None:
        """Everything for a new good read: header, stats, graph, comparison, next characters."""
        loaded = self.loaded
        self.loads += 1
        if loaded.vocab != self.corpus.vocab:  # the file now holds a model of another text
            self.has_text = False
            self.corpus = follow.generated_corpus(loaded)
            view = self.query_one(ComparisonView)
            view.evaluation, view.waiting = None, "the checkpoint now holds a model of another text"
            view.refresh()
        self.source.corpus, self.source.snapshot, self.source.step_count = self.corpus, loaded.model, loaded.step
        model = loaded.model.config
        self.query_one(StatusLine).set_model(describe_model(model))
        stats = self.query_one(StatsPanel)
        stats.budget = loaded.config.steps
        val = loaded.val_history
        stats.last_val = val[-1] if val else None
        self._show_header()
        self._show_progress()
        if self.has_text:
            self._to_assess = (loaded, self.loads)  # validated at the next tick (at once for the first)
            if self.loads <= 2:
                self._tick()
        self._refresh_next_chars(force=True)

    def _show_progress(self) -> None:
        """The run's latest numbers (the log's when it is ahead of the checkpoint) and the curve."""
        loaded = self.loaded
        report = follow.newer_report(loaded, self.records) or loaded.step_report(follow.speed(loaded, self.previous))
        self.query_one(StatsPanel).show(report)
        chart = self.query_one(LossChart)
        chart.show(follow.curve(loaded, self.records))
        chart.redraw_if_new()

    def _show_header(self) -> None:
        """WATCHING, and when the weights on screen were saved (and whether the last read failed)."""
        if not self.is_running:
            return
        ago = duration(max(0.0, time.time() - self.loaded.saved_at))
        detail = f"last save {ago} ago, step {self.loaded.step:,}"
        if self.failure is not None:
            detail += " · " + ("checkpoint gone" if self.failure.vanished else "last read failed")
        self.query_one(StatusLine).detail = detail

    # --------------------------------------------------------------- assessment
    @work(thread=True, group="assess", name="validation", exit_on_error=False)
    def _assess(self, loaded: follow.Loaded, seq: int) -> None:
        """The validation thread: teacher-forced predictions of the saved model on the evaluation text."""
        corpus, cfg = self.corpus, loaded.config
        # what the screen shows of it: the start of the evaluation text (the run's own scores of the
        # whole text are in the curve); the stats panel calls this score a sample when it is one
        cap = min(cfg.eval_chars or DETAIL_CHARS, DETAIL_CHARS)
        ids = corpus.val_ids[: cap + 1]
        ev = evaluate(loaded.model, ids, corpus.vocab)
        meta = loaded.meta
        report = EvalReport(
            step=loaded.step,
            epoch=float(meta.get("epoch", 0.0)),
            train_loss=float(meta.get("smooth_loss", math.nan)),
            val_loss=ev.loss,
            accuracy=ev.accuracy,
            evaluation=ev,
            on_validation=corpus.split,
            best=False,
            chars=ev.n,
            sample=len(ids) < len(corpus.val_ids),
        )
        if not get_current_worker().is_cancelled:
            self.post_message(Assessed(report, seq))

    @on(Assessed)
    def _on_assessed(self, message: Assessed) -> None:
        """A validation is ready: shown unless a newer read's is on screen already. (With saves
        coming faster than validations, it may be a save or two behind; its step is shown.)"""
        if not self.is_running or message.seq <= self._assessed_seq:
            return
        self._assessed_seq = message.seq
        r = message.report
        self.query_one(StatsPanel).show(evaluation=r)
        self.query_one(ComparisonView).show(r.evaluation, r.step, r.on_validation)

    # ---------------------------------------------------------------- actions
    def palette_commands(self) -> list[PaletteCommand]:
        """The command palette's entries for this screen (see tui.palette)."""
        return [
            ("Read the checkpoint again", self.action_reload, "even if the file did not change"),
            ("Generate", self.action_generate, "ctrl+g: continue the seed text with the newest weights"),
            ("Look inside the model", self.action_inside, "f4: colour the text by a unit's gates, cell or state"),
            ("Help", self.action_help, "f1: panels and keys"),
        ]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's palette commands, with Quit saying that the run goes on."""
        for command in super().get_system_commands(screen):
            if command.title == "Quit":
                command = SystemCommand("Quit", "stop watching; the run goes on", self.action_quit)
            yield command

    async def action_quit(self) -> None:
        """Stop watching at once: nothing to save, and the run being watched is not touched."""
        self.exit()

    def action_reload(self) -> None:
        """Read the checkpoint at the next poll even if its version did not change."""
        self._reload = True

    def action_help(self) -> None:
        """Show the help screen."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(WATCH_HELP))

    def action_inside(self) -> None:
        """Open the inside view on the weights on screen, refreshed at every new save."""
        if not isinstance(self.screen, InsideScreen):
            self.push_screen(InsideScreen(self.source, lambda: self.loads))

    # ----------------------------------------------------- generation (tui.play)
    def play_model(self) -> CharModel:
        """The newest good read: the poll thread hands over a model it never touches again."""
        return self.loaded.model

    def play_vocab(self) -> Vocab:
        return self.loaded.vocab

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure surfaces here as a notice."""
        if event.state != WorkerState.ERROR:
            return
        worker, error = event.worker, event.worker.error
        title = f"{worker.name or 'worker'} failed"
        self.notify(f"{type(error).__name__}: {error}", title=title, severity="error", timeout=30, markup=False)

    def on_unmount(self) -> None:
        """Leave no thread behind."""
        self.workers.cancel_all()
