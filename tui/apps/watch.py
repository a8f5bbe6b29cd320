"""`lstm-tui watch`: the interface on a run that another process trains, read from its checkpoint.

The screen is the training screen's (same panels, same layout), fed from the checkpoint instead of
a training thread. Every `POLL_S` a thread worker checks the file's version (tui.plain.follow) and
reads it when it changed, and reads what the run's log gained; the UI thread only shows what the
worker posts. Every panel shows the newest good save (the header says which step, and when it
was saved): its numbers, the run's own latest evaluation up to it, its predictions, its
generation. A read that fails leaves the last good save on screen, with a notice and a red
header, until a good file appears again. Nothing here writes a file: quitting just quits, and the
run being watched never knows.

The watcher shares the machine with the run it watches, often on few cores, so it does little:
one BLAS thread (tui.plain.threads), a file's version checked twice a second, a changed file read
at most once per READ_GAP times the last read took, and the model's predictions computed on the
few hundred characters the screen shows rather than scored on the whole text (the run's own
scores come from its checkpoint and log). benchmarks/watch_cost.py measures what that costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.worker import get_current_worker

from core import CharModel, Evaluation, Vocab, evaluate
from core.corpus import Corpus

from ..plain import follow
from ..plain.format import duration
from ..widgets.comparison import ComparisonView
from ..widgets.inside_screen import InsideChoice, InsideView, inside_view
from ..widgets.loss_chart import LossChart
from ..widgets.stats import StatsPanel
from ..widgets.status_line import AGE, Part, StatusLine, describe_corpus, describe_model
from . import keys
from .base import LEVELS_HELP, NEXT_CHAR_HELP, SAMPLING_HELP, PlayApp, compose_model_screen, default_seed, until_exit
from .palette import PaletteCommand

POLL_S = 0.5  # how often the checkpoint's version (and the log) is checked
HEADER_EVERY_S = 1.0  # the header's "saved N s ago" follows the clock this often
READ_GAP = 10.0  # a changed checkpoint is read at most once per READ_GAP times the last read took
COMPARE_CHARS = 1_000  # the comparison's text: the start of the validation text (the panel shows less)

HELP = (
    """\
lstm-tui watch shows a run that another process trains (a headless
`lstm-tui train --save-every N`, another session, another machine
sharing the folder). It reads the checkpoint each time it is saved, and
<checkpoint>.jsonl beside it when the run writes one (train --log), and
never writes anything: quitting leaves the run as it is.

HEADER
  WATCHING    this screen does not train. "step 3,400 · saved 12s ago"
              says which save is on screen: every panel shows that save
              (the graph goes on with the log's points after it). Red: the
              last read failed (the file vanished or is not a checkpoint);
              the last good save stays on screen until a good file appears.

PANELS
  loss graph  training loss per step from the checkpoint's history, then
              each evaluation the log recorded since the last save;
              validation loss (diamonds).
"""
    + LEVELS_HELP
    + """\
              The unigram and bigram levels need the training text.
  stats       the save's step, loss, speed (between the last two saves),
              learning rate and training time; "val" is the run's own
              latest evaluation up to that save, with its step (its
              accuracy when the log recorded it).
  truth vs    the start of the validation text with the saved model's
  prediction  guess for each next character (its accuracy is of that
              start), when the text is found beside the checkpoint, here,
              or given with --corpus.
  generate    type a seed, press enter or ctrl+g: the saved weights
              continue it.
"""
)
HELP += SAMPLING_HELP + NEXT_CHAR_HELP


class Polled(Message):
    """What one poll of the files found: a new model or a failed read, and/or new log records."""

    def __init__(self, result: follow.Loaded | follow.Failed | None, log: tuple[list[dict], bool] | None) -> None:
        super().__init__()
        self.result = result
        self.log = log


class Compared(Message):
    """The saved model's predictions of the start of the validation text."""

    def __init__(self, evaluation: Evaluation, step: int, seq: int) -> None:
        super().__init__()
        self.evaluation = evaluation
        self.step = step
        self.seq = seq  # which good read it was computed from (WatchApp.loads when it was shown)


class WatchedModel:
    """The read side of a trainer that the inside view uses: the text, the weights on screen, their step."""

    def __init__(self, corpus: Corpus, snapshot: CharModel, step_count: int) -> None:
        self.corpus = corpus
        self.snapshot = snapshot
        self.step_count = step_count


class WatchApp(PlayApp):
    """Watch a run that another process trains. (Generation and the next-character view: tui.apps.base.)"""

    CSS_PATH = "train.tcss"
    TITLE = "lstm-tui watch"
    KEYS = keys.WATCH
    HELP = HELP

    def __init__(
        self,
        path: str | Path,
        first: follow.Loaded,
        corpus: Corpus | None = None,
        corpus_note: str = "",
        log_path: str | Path | None = None,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.follower = follow.Follower(self.path, first)
        self.log_tail = follow.LogTail(log_path) if log_path is not None else None
        self.poll_s = poll_s
        self.clock = clock  # the wall clock the header's "saved N s ago" reads (tests freeze it)
        self.loaded = first  # the newest good read: the save on screen
        self.previous: follow.Loaded | None = None  # the one before (for the speed between saves)
        self.failure: follow.Failed | None = None  # the last read failed (cleared by a good one)
        self.records: list[dict[str, Any]] = []  # the log's records so far
        self.has_text = corpus is not None
        self.corpus = corpus if corpus is not None else follow.generated_corpus(first)
        self.corpus_note = corpus_note
        self.source = WatchedModel(self.corpus, first.model, first.step)
        self.inside = InsideChoice()  # the inside view's unit, layer and quantity, kept between visits
        self.loads = 0  # good reads shown (the inside view refreshes when it changes)
        self.polls = 0  # polls finished (for tests: a poll saw the files as they are)
        self._reload = False  # read the checkpoint at the next poll even if unchanged
        self._to_compare: tuple[follow.Loaded, int] | None = None  # a save waiting for its predictions
        self._compared_seq = 0  # the read whose predictions are on screen

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        first, cfg = self.loaded, self.loaded.config
        info = first.meta.get("corpus") or {}
        corpus = describe_corpus(info.get("name") or "?", int(info.get("size") or 0), first.vocab.size)
        tokens = int(first.meta.get("batch_used") or cfg.batch) * int(first.meta.get("seq_len_used") or cfg.seq_len)
        seed = default_seed(self.corpus.text(0, 200))  # (the model's own words without the text)
        model = describe_model(first.model.config)
        yield from compose_model_screen(corpus, model, first.vocab.size, cfg.steps, tokens, seed, self.sampling)

    def start(self) -> None:
        """Show the first read, then follow the files and the clock."""
        self.query_one(StatusLine).state = "watching"
        if not self.has_text:
            self.query_one(ComparisonView).waiting = f"no ground truth to compare with: {self.corpus_note}"
        else:
            self.show_baselines(self.corpus)
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

    @until_exit
    def _tick(self) -> None:
        """Once a second: the header's clock, and the predictions of the newest save if they wait."""
        self._show_header()
        pending = self._to_compare
        if pending is not None and not any(w.group == "compare" and not w.is_finished for w in self.workers):
            self._to_compare = None
            self._compare(*pending)

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
        """A poll finished: show a new save, a failed read, or the log's new records."""
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
            self._show_numbers()

    def _show_model(self) -> None:
        """Everything for a new good read: header, stats, graph, predictions, next characters."""
        loaded = self.loaded
        self.loads += 1
        if loaded.vocab != self.corpus.vocab:  # the file now holds a model of another text
            self.has_text = False
            self.corpus = follow.generated_corpus(loaded)
            self.show_baselines(None)
            view = self.query_one(ComparisonView)
            view.evaluation, view.waiting = None, "the checkpoint now holds a model of another text"
            view.refresh()
        self.source.corpus, self.source.snapshot, self.source.step_count = self.corpus, loaded.model, loaded.step
        self.query_one(StatusLine).set_model(describe_model(loaded.model.config))
        self.query_one(StatsPanel).budget = loaded.config.steps
        self._show_header()
        self._show_numbers()
        if self.has_text:
            self._to_compare = (loaded, self.loads)  # computed at the next tick (at once for the first)
            if self.loads == 1:
                self._tick()
        self._refresh_next_chars(force=True)

    def _show_numbers(self) -> None:
        """The save's numbers with the run's own latest evaluation up to it, and the curve (the
        checkpoint's, then the log's points after it)."""
        loaded = self.loaded
        stats = self.query_one(StatsPanel)
        stats.evaluation = None
        stats.show(loaded.step_report(follow.speed(loaded, self.previous)), follow.run_score(loaded, self.records))
        chart = self.query_one(LossChart)
        chart.show(follow.curve(loaded, self.records))
        chart.redraw_if_new()

    def _show_header(self) -> None:
        """WATCHING, which save is on screen and when it was saved (and whether the last read failed)."""
        if not self.is_running:
            return
        ago = duration(max(0.0, self.clock() - self.loaded.saved_at))
        detail = [Part(f"step {self.loaded.step:,}"), Part(f"saved {ago} ago", AGE)]
        if self.failure is not None:
            detail.append(Part("checkpoint gone" if self.failure.vanished else "last read failed"))
        self.query_one(StatusLine).set_detail(detail)

    # -------------------------------------------------------------- predictions
    @work(thread=True, group="compare", name="predictions", exit_on_error=False)
    def _compare(self, loaded: follow.Loaded, seq: int) -> None:
        """The predictions thread: the saved model's teacher-forced guesses of the start of the
        validation text, only as much of it as the panel can show."""
        ids = self.corpus.val_ids[: COMPARE_CHARS + 1]
        ev = evaluate(loaded.model, ids, self.corpus.vocab)
        if not get_current_worker().is_cancelled:
            self.post_message(Compared(ev, loaded.step, seq))

    @on(Compared)
    def _on_compared(self, message: Compared) -> None:
        """Predictions are ready: shown unless a newer save's are on screen already."""
        if not self.is_running or message.seq <= self._compared_seq:
            return
        self._compared_seq = message.seq
        ev = message.evaluation
        part = f"first {ev.n:,} chars" if ev.n < len(self.corpus.val_ids) - 1 else ""
        self.query_one(ComparisonView).show(ev, message.step, self.corpus.split, part)

    # ---------------------------------------------------------------- actions
    def palette_commands(self) -> list[PaletteCommand]:
        """The command palette's entries for this screen (see tui.apps.palette)."""
        return [
            ("Read the checkpoint again", self.action_reload, "even if the file did not change"),
            ("Generate", self.action_generate, "ctrl+g: continue the seed text with the newest weights"),
            *self.sampling_commands(),
            ("Look inside the model", self.action_inside, "f4: colour the text by a unit's gates, cell or state"),
            ("Help", self.action_help, "f1: panels and keys"),
        ]

    async def action_quit(self) -> None:
        """Stop watching at once: nothing to save, and the run being watched is not touched."""
        self.exit()

    def action_reload(self) -> None:
        """Read the checkpoint at the next poll even if its version did not change."""
        self._reload = True

    def action_inside(self) -> None:
        """Open the inside view on the weights on screen, refreshed at every new save."""
        if not isinstance(self.screen, InsideView):
            self.push_screen(inside_view(self.source, lambda: self.loads, self.inside, self.recent_text))

    # ----------------------------------------------------- generation (tui.apps.base)
    def play_model(self) -> CharModel:
        """The newest good read: the poll thread hands over a model it never touches again."""
        return self.loaded.model

    def play_vocab(self) -> Vocab:
        return self.loaded.vocab
