"""Memory planning: refuse, in one line, a training shape whose activations cannot fit here."""

from __future__ import annotations

import os

from .errors import ConfigError
from .models import ModelConfig, model_class

# Memory a run may plan for its activations, as a fraction of this machine's memory.
MEMORY_FRACTION = 0.75


def activation_bytes(batch: int, seq_len: int, config: ModelConfig) -> int:
    """About how much memory one training step holds (the model's own estimate)."""
    return model_class(config.cell).activation_bytes(config, batch, seq_len)


def machine_memory() -> int:
    """This machine's physical memory in bytes (a generous guess where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 16 << 30


def check_memory(batch: int, seq_len: int, config: ModelConfig) -> None:
    """Refuse, in one line, a batch shape whose activations cannot fit in this machine's memory.

    Judged on the batch and window actually used, after they have shrunk to fit the text."""
    need, have = activation_bytes(batch, seq_len, config), machine_memory()
    if need > MEMORY_FRACTION * have:
        raise ConfigError(
            f"batch {batch} x seq-len {seq_len} x hidden {config.hidden} needs about {need / 2**30:.1f} GiB "
            f"for one training step, more than this machine can give ({have / 2**30:.1f} GiB in all); "
            "lower --batch, --seq-len or --hidden"
        )
