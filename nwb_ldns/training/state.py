"""Resume state as plain files: nested state dicts -> one safetensors file of tensors + one JSON skeleton.

Why: a checkpoint must never be a pickle (loading a model someone sent you must not run their code), yet
optimiser, EMA and RNG states are nested dicts with int keys, tuples, numbers and tensors. `pack` walks such a
structure, moves every tensor into a flat {name: tensor} dict and leaves a JSON skeleton with references;
`unpack` reverses it. Checkpoints are whole directories renamed into place, and `latest.json` (also replaced
atomically) points at the newest complete one, so a crash at any moment leaves a loadable checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nwb_ldns.errors import InputFileError
from nwb_ldns.fileio import atomic_output

_TENSOR = "__tensor__"
_PAIRS = "__pairs__"
_TUPLE = "__tuple__"


def pack(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """JSON skeleton of `obj`; tensors are stored into `tensors` under generated names."""
    if isinstance(obj, torch.Tensor):
        name = f"{prefix}{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous()
        return {_TENSOR: name}
    if isinstance(obj, dict):
        if all(isinstance(key, str) for key in obj) and not any(k in (_TENSOR, _PAIRS, _TUPLE) for k in obj):
            return {key: pack(value, tensors, prefix) for key, value in obj.items()}
        return {_PAIRS: [[key, pack(value, tensors, prefix)] for key, value in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [pack(value, tensors, prefix) for value in obj]}
    if isinstance(obj, list):
        return [pack(value, tensors, prefix) for value in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint (only tensors, numbers, strings, containers)")


def unpack(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `pack`."""
    if isinstance(skeleton, dict):
        if _TENSOR in skeleton:
            return tensors[skeleton[_TENSOR]]
        if _PAIRS in skeleton:
            return {key: unpack(value, tensors) for key, value in skeleton[_PAIRS]}
        if _TUPLE in skeleton:
            return tuple(unpack(value, tensors) for value in skeleton[_TUPLE])
        return {key: unpack(value, tensors) for key, value in skeleton.items()}
    if isinstance(skeleton, list):
        return [unpack(value, tensors) for value in skeleton]
    return skeleton


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp name + rename)."""
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically."""
    with atomic_output(path, overwrite=True) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def save_checkpoint(checkpoint_root: Path, name: str, states: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoints/<name>/{state.json, tensors.safetensors} as one directory rename, then point latest.json at it."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack(states, tensors)
    target = checkpoint_root / name
    with atomic_output(target, overwrite=True, is_dir=True) as tmp:
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(skeleton))
    write_json(checkpoint_root / "latest.json", {"checkpoint": name})
    # keep the newest `keep` checkpoint directories (names "<stage>-epochNNNNN" sort chronologically:
    # "autoencoder" < "diffusion", zero-padded epochs)
    existing = sorted(p for p in checkpoint_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in existing[:-keep]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return target


_CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def _damaged(path: Path, problem: str, checkpoint_root: Path, retrain: str | None = None) -> InputFileError:
    """A damaged resume state: --resume would fail again, so the advice is a new run over the model."""
    retrain = retrain or f"nwb-ldns fit SESSION --out {checkpoint_root.parent} --overwrite"
    return InputFileError(f"{path}: {problem}; the checkpoint is damaged or was edited, re-train with `{retrain}`")


def checkpoint_directory(checkpoint_root: Path, retrain: str | None = None) -> Path | None:
    """The directory latest.json points at, confined to checkpoint_root; None when there is no pointer.

    Why: the pointer is user input; a name like "../../elsewhere" or "/abs" (or a symbolic link leading out)
    must not make a resume read files outside the model directory.
    """
    pointer = checkpoint_root / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text()).get("checkpoint")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise _damaged(pointer, 'expected a JSON object {"checkpoint": NAME}', checkpoint_root, retrain) from None
    if not isinstance(name, str) or not _CHECKPOINT_NAME.fullmatch(name):
        raise _damaged(pointer, f"checkpoint name {name!r} is not a plain folder name inside checkpoints/",
                       checkpoint_root, retrain)
    directory = checkpoint_root / name
    if directory.resolve().parent != checkpoint_root.resolve():
        raise _damaged(pointer, f"checkpoint {name!r} leads outside {checkpoint_root}", checkpoint_root, retrain)
    return directory


def load_checkpoint(checkpoint_root: Path, stages: tuple[str, ...] = ("autoencoder", "diffusion"),
                    retrain: str | None = None) -> dict[str, Any] | None:
    """The newest complete checkpoint's state, or None if there is none (safetensors + JSON; never a pickle).

    stages: the "stage" values a valid state may carry (a baseline's trainer passes its own); retrain: the command
    the damaged-checkpoint message advises (default: fit --overwrite)."""
    directory = checkpoint_directory(checkpoint_root, retrain)
    if directory is None or not (directory / "state.json").is_file():
        return None
    tensors_path = directory / "tensors.safetensors"
    if not tensors_path.is_file():
        raise _damaged(tensors_path, "the checkpoint's tensors file is missing", checkpoint_root, retrain)
    try:
        tensors = load_file(str(tensors_path))
    except SafetensorError as error:
        raise _damaged(tensors_path, f"not a valid safetensors file ({error})", checkpoint_root, retrain) from None
    skeleton_path = directory / "state.json"
    try:
        state = unpack(json.loads(skeleton_path.read_text()), tensors)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _damaged(skeleton_path, "not valid JSON", checkpoint_root, retrain) from None
    except (KeyError, TypeError, ValueError) as error:
        raise _damaged(skeleton_path, f"refers to tensors or values it lacks ({error!r})", checkpoint_root,
                       retrain) from None
    if not isinstance(state, dict) or state.get("stage") not in stages:
        raise _damaged(skeleton_path, f"not a resume state of the {' or '.join(stages)} stage", checkpoint_root,
                       retrain)
    return state


def truncate_lines(path: Path, n_lines: int) -> None:
    """Keep the first n_lines of a text log (the log entries written before the checkpoint we resume from)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)[:n_lines]
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text("".join(lines))


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def fsync_append(path: Path, line: str) -> None:
    """Append one line to a log and flush it to disk (the log survives a crash up to the last epoch)."""
    with open(path, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
