"""What `lstm-tui watch` costs beside the run it watches, and how far behind it is.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 python benchmarks/watch_cost.py TEXT \
        [--save-every 20] [--seconds 60] [--size 100x30]

Starts a headless run (`lstm-tui train TEXT --save-every N --log`) and, at once, `lstm-tui watch`
on its checkpoint in a pseudo-terminal, as a person would in a second terminal: the watcher waits
for the first save, then shows the run. Once the watcher shows a first save, for `--seconds` of
wall time:

- CPU: each process's user + system time (/proc/PID/stat), and the watcher's as a fraction of the
  training process's over the same window.
- Lag: the checkpoint is checked every 20 ms for a new save; the watcher's screen (its header says
  "step S · saved ... ago") is read from the terminal. For each save: the seconds from the file
  changing to the watcher showing its step; and, sampled every 20 ms, how many saves the step on
  the watcher's screen is behind the newest save.

Linux only (/proc, pty). Both processes are children of this one; neither is told it is measured.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

LSTM_TUI = [sys.executable, "-m", "tui"]
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]|\x1b\][^\x07]*\x07")
# the header's "step S · saved ... ago" (and, to measure older versions, "last save ... ago, step S")
SHOWN = re.compile(r"step ([\d,]+) · saved|last save \S+ ago, step ([\d,]+)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("text", help="the text the run trains on (e.g. tinyshakespeare.txt)")
    p.add_argument("--save-every", type=int, default=20, help="the run saves every N steps (default 20)")
    p.add_argument("--seconds", type=float, default=60.0, help="the measured window, wall time (default 60)")
    p.add_argument("--size", default="100x30", help="the watcher's terminal, COLSxROWS (default 100x30)")
    p.add_argument("--start-timeout", type=float, default=600.0, help="give up if no save is shown by then")
    p.add_argument("--late", action="store_true", help="start the watcher after the first save, not at once")
    args = p.parse_args()
    cols, rows = (int(v) for v in args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="watch-cost-"))
    text = Path(args.text).resolve()
    checkpoint = folder / "run.npz"
    train = subprocess.Popen(
        [*LSTM_TUI, "train", str(text), "--checkpoint", str(checkpoint), "--save-every", str(args.save_every),
         "--log", f"{checkpoint}.jsonl", "--quiet"],
        cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    while args.late and not checkpoint.exists() and train.poll() is None:
        time.sleep(0.05)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    watch = subprocess.Popen(
        [*LSTM_TUI, "watch", str(checkpoint)],
        cwd=folder, stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "TERM": "xterm-256color"},
    )  # fmt: skip
    os.close(slave)
    screen = ""  # the watcher's output, escapes removed (the tail is enough to find the header)
    shown: int | None = None  # the step on the watcher's screen
    saves: list[tuple[float, int]] = []  # (when the file changed, its step)
    stamp = None
    shown_at: dict[int, float] = {}  # step -> when the watcher first showed it
    behind: list[int] = []  # saves behind, sampled
    window: tuple[float, float, float] | None = None  # (start, train cpu, watch cpu)
    start = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if window is None and now - start > args.start_timeout:
                raise SystemExit("no save was shown in time")
            if window is not None and now - window[0] >= args.seconds:
                break
            ready, _, _ = select.select([master], [], [], 0.02)
            if ready:
                screen = (screen + ANSI.sub(b"", os.read(master, 1 << 16)).decode("utf-8", "replace"))[-4000:]
                found = SHOWN.findall(screen)
                if found:
                    shown = int("".join(found[-1]).replace(",", ""))
                    shown_at.setdefault(shown, time.monotonic())
            try:
                st = checkpoint.stat()
            except FileNotFoundError:
                continue
            if (st.st_ino, st.st_mtime_ns) != stamp:
                stamp = (st.st_ino, st.st_mtime_ns)
                saves.append((time.monotonic(), len(saves) * args.save_every + args.save_every))
            if shown is not None and window is None:
                window = (time.monotonic(), cpu_seconds(train.pid), cpu_seconds(watch.pid))
            if window is not None and saves and shown is not None:
                behind.append((saves[-1][1] - shown) // args.save_every)
        train_cpu = cpu_seconds(train.pid) - window[1]
        watch_cpu = cpu_seconds(watch.pid) - window[2]
        wall = time.monotonic() - window[0]
    finally:
        os.write(master, b"\x11")  # ctrl+q: the watcher quits
        try:
            watch.wait(10)
        except subprocess.TimeoutExpired:
            watch.kill()
        train.terminate()  # SIGTERM: the run saves and ends
        try:
            train.wait(60)
        except subprocess.TimeoutExpired:
            train.kill()
        os.close(master)
        shutil.rmtree(folder, ignore_errors=True)
    delays = [shown_at[step] - at for at, step in saves if step in shown_at and at >= window[0]]
    print(f"text {text.name}, save every {args.save_every} steps, watcher at {cols}x{rows}, {wall:.0f} s window")
    print(f"training process CPU  {train_cpu:7.2f} s  ({train_cpu / wall:.0%} of a core)")
    print(f"watcher process CPU   {watch_cpu:7.2f} s  ({watch_cpu / wall:.1%} of a core)")
    print(f"watcher / training    {watch_cpu / train_cpu:7.3f}")
    in_window = [s for at, s in saves if at >= window[0]]
    print(f"saves in the window   {len(in_window)}; shown by the watcher {len(delays)}")
    if delays:
        print(
            f"save -> on screen     median {statistics.median(delays):.2f} s, max {max(delays):.2f} s "
            f"(seconds between saves: median "
            f"{statistics.median([b[0] - a[0] for a, b in zip(saves, saves[1:], strict=False)] or [0]):.1f})"
        )
    if behind:
        print(f"saves behind (sampled every 20 ms): max {max(behind)}, "
              f"{sum(b == 0 for b in behind) / len(behind):.0%} of samples at the newest save")  # fmt: skip


if __name__ == "__main__":
    main()
