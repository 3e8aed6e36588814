"""Pieces both training stages share: device and precision choice, seeded batching, the run log, progress."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from nwb_ldns.errors import OptionError, TrainingDivergedError
from nwb_ldns.training.distributed import SINGLE, Ranks
from nwb_ldns.training.state import fsync_append

logger = logging.getLogger("nwb_ldns.train")

# Called after every epoch (and its checkpoint) with (stage, epochs_done); raising stops training. Tests use it
# to simulate a killed run.
EpochCallback = Callable[[str, int], None]


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None: NaN and Infinity are not JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def check_finite_loss(value: float, stage: str, step: int, lr: float, what: str = "training loss") -> None:
    """Stop at the first NaN/inf loss: later steps would only spread it into every weight and write a model
    that samples garbage (the usual cause is a learning rate far too high for the data)."""
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"the {stage} {what} became {value} at step {step}: training diverged and no model was written; "
            f"lower --set {stage}.lr (now {lr:g}) and run fit again")


def resolve_device(name: str, ranks: Ranks = SINGLE) -> torch.device:
    """"auto" -> CUDA when available, else CPU; a data-parallel rank takes the GPU of its local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise OptionError("training.device=cuda but no CUDA device is available; use --set training.device=auto")
    if name == "cuda" and ranks.active:
        return torch.device("cuda", ranks.local_rank)
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast on CUDA ("auto"/"bf16"); fp32 on CPU. The S4 FFT stays float32 inside the models."""
    if precision == "fp32":
        return False
    if precision == "bf16" and device.type != "cuda":
        raise OptionError("training.precision=bf16 needs a CUDA device; use --set training.precision=auto")
    return device.type == "cuda"


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def batches_per_epoch(n: int, batch_size: int) -> int:
    """ceil(n / batch) -- the last, smaller batch is kept (torch DataLoader default, as in the reference)."""
    return -(-n // batch_size)


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    yield from order.split(batch_size)


def generator_for(device: torch.device, seed: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


@dataclass
class Run:
    """Where a training run writes, and how it talks to the user."""

    out_dir: Path
    device: torch.device
    bf16: bool
    progress: bool = True
    on_epoch_end: EpochCallback | None = None
    ranks: Ranks = SINGLE
    started: float = field(default_factory=time.time)

    @property
    def writes(self) -> bool:
        """Only rank 0 of a data-parallel run writes the model directory, the log and checkpoints."""
        return self.ranks.is_main

    @property
    def log_path(self) -> Path:
        return self.out_dir / "training_log.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def log(self, record: dict[str, Any]) -> None:
        """One JSON line per epoch / validation in training_log.jsonl (strict JSON: NaN/inf are written as null)."""
        if not self.writes:
            return
        record = {**record, "elapsed_s": round(time.time() - self.started, 3)}
        fsync_append(self.log_path, json.dumps(json_safe(record), allow_nan=False))

    def say(self, message: str) -> None:
        """A message for the user (stderr, above any progress bar)."""
        if not self.writes:
            return
        from nwb_ldns import verbosity

        # under the CLI (nwb_ldns.verbosity) the logger prints it: "warning: ..." lines as warnings, which -q keeps
        warning = verbosity.configured() and message.startswith("warning:")
        logger.log(logging.WARNING if warning else logging.INFO, message)
        if self.progress and not verbosity.configured():
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)

    def bar(self, total: int, initial: int, desc: str):
        from nwb_ldns.progress import bar

        return bar(total=total, initial=initial, desc=desc, unit="step", disable=not (self.progress and self.writes))

    def epoch_done(self, stage: str, epoch: int) -> None:
        if self.on_epoch_end is not None:
            self.on_epoch_end(stage, epoch)
