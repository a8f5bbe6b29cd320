"""The engine under faults and load: big texts, huge vocabularies, killed saves, concurrent reads."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from core import CheckpointError, StepReport, TrainConfig, Trainer, corpus, generate
from core import checkpoint as ckpt_io


@pytest.mark.slow
def test_a_100_mb_text_trains_in_memory_proportional_to_its_size(tmp_path):
    """No one-hot copy of the corpus: peak memory stays a small multiple of the file size."""
    size = 100 * 2**20
    path = tmp_path / "big.txt"
    rng = np.random.default_rng(0)
    block = bytes(rng.choice(np.frombuffer(b"abcdefghijklmnopqrstuvwxyz .,;\n", np.uint8), 2**20))
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
    code = textwrap.dedent(
        f"""
        from core import corpus, Trainer, TrainConfig
        c = corpus.load({str(path)!r})
        t = Trainer(c, TrainConfig(steps=2, eval_every=1, eval_chars=2000))
        for r in t.run():
            pass
        # VmHWM: this process's own peak (ru_maxrss would carry the parent's over the fork)
        peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(c.size, c.ids.itemsize, peak * 1024)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    n, itemsize, peak = map(int, out.stdout.split())
    assert n == size and itemsize == 1
    # The bytes, the decoded str and the id array are each ~1x; a one-hot copy would be 31x.
    assert peak < 4.5 * size, f"peak RSS {peak / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB text"


def test_a_vocabulary_of_thousands_of_symbols_trains():
    rng = np.random.default_rng(0)
    symbols = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    text = "".join(symbols) + "".join(rng.choice(symbols, 20_000))
    c = corpus.from_text(text)
    assert c.vocab.size == 3000 and c.ids.dtype == np.uint16
    trainer = Trainer(c, TrainConfig(hidden=32, batch=8, seq_len=32, steps=3, eval_every=3, eval_chars=200))
    reports = list(trainer.run())
    assert sum(isinstance(r, StepReport) for r in reports) == 3


@pytest.mark.slow
def test_sigkill_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    target = tmp_path / "m.npz"
    code = textwrap.dedent(
        f"""
        import sys
        from core import corpus, Trainer, TrainConfig
        c = corpus.load(corpus.bundled_path())
        t = Trainer(c, TrainConfig(hidden=512, layers=2), checkpoint={str(target)!r})
        t.save()
        print("saved", flush=True)
        while True:
            t.model.params["by"] += 1.0
            t.save()
        """
    )
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "saved"
        # Wait until a temporary file exists: a save is in flight right now.
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ck = ckpt_io.load(target)  # intact: either the old or a complete new checkpoint
        assert ck.model.config.hidden == 512, attempt


def test_generating_while_training_never_sees_half_updated_weights():
    c = corpus.load(corpus.bundled_path())
    trainer = Trainer(c, TrainConfig(hidden=32, batch=8, seq_len=32))
    errors: list[BaseException] = []

    def train():
        try:
            for _ in trainer.run():
                pass
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    th = threading.Thread(target=train, daemon=True)
    th.start()
    prime, _ = c.vocab.encode_known("to be")
    snapshots = set()
    try:
        for i in range(40):
            snap = trainer.snapshot  # a reference read is atomic; the copy is never written
            frozen = {k: v.copy() for k, v in snap.params.items()}
            text = list(generate(snap, prime, 20, np.random.default_rng(i), temperature=0.8))
            assert len(text) == 20
            for k, v in snap.params.items():
                assert np.array_equal(v, frozen[k]), "the snapshot changed while generating"
            snapshots.add(id(snap))
            th.join(0.01)
    finally:
        trainer.controls.stop()
        th.join(10)
    assert not errors and not th.is_alive()
    assert len(snapshots) > 1  # training went on and published new weights meanwhile


def test_an_unwritable_checkpoint_place_is_a_clear_error_and_the_model_survives(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")  # fails even for root, unlike chmod
    c = corpus.from_text("abcabcabc")
    trainer = Trainer(c, TrainConfig(hidden=8), checkpoint=blocker / "m.npz")
    with pytest.raises(CheckpointError, match="cannot save checkpoint") as e:
        trainer.save()
    assert "\n" not in str(e.value)
    trainer.save(tmp_path / "elsewhere.npz")  # the model is still in memory: save elsewhere
    assert ckpt_io.load(tmp_path / "elsewhere.npz").model.config.hidden == 8


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    """checkpoint.save and export both write through write_atomically: a failure part-way
    (a full disk, a killed writer) must leave the file as it was."""
    target = tmp_path / "model.bin"
    target.write_bytes(b"old model")

    def fails(f):
        f.write(b"half a new mo")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        ckpt_io.write_atomically(target, fails)
    assert target.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
    assert ckpt_io.write_atomically(target, lambda f: f.write(b"new model")) == target
    assert target.read_bytes() == b"new model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
