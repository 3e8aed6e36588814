"""Validation of a model directory's files on load: config.json, latent_stats.json and the weight tensors.

Why: a model directory is user input (sent by someone, edited, truncated by a full disk). Every problem found
here is raised as an `InputFileError` naming the file, the problem and the fix, before a network is built or a
sample drawn, so a damaged model never reaches sampling (where it would end in "invalid Poisson rate") and never
produces a traceback. The config is checked by `nwb_ldns.config.resolve_config`, the same check `--set` gets.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import torch

from nwb_ldns.config import flatten, resolve_config
from nwb_ldns.errors import InputFileError, OptionError

# config keys the network constructors read (nwb_ldns.model_dir.network_arguments) without a default
NETWORK_KEYS = ("autoencoder.hidden", "autoencoder.latent", "autoencoder.n_blocks", "autoencoder.bidirectional",
                "autoencoder.d_state", "autoencoder.s4_mode", "diffusion.hidden", "diffusion.n_blocks",
                "diffusion.d_state", "diffusion.out_scale", "diffusion.num_steps", "diffusion.beta_start",
                "diffusion.beta_end")
# data description fields that loading and sampling read, with their JSON types
DATA_FIELDS: dict[str, tuple[type, ...]] = {
    "n_units": (int,), "n_bins": (int,), "bin_width": (int, float), "time_offset": (int, float),
    "unit_ids": (list,), "length_mask": (bool,), "variable_length": (bool,),
}


def fix_advice(model_dir: Path, resumable: bool = True) -> str:
    """The command that repairs this directory, without advice that the command would then refuse.

    `fit --resume` needs a valid config.json and an unfinished run (no denoiser.safetensors), and repairs only
    what it rewrites (resumable: latent_stats.json, a missing weight file); `fit --overwrite` needs a model
    directory (config.json with our format tag); anything else needs a new --out.
    """
    from nwb_ldns.fileio import is_model_dir

    if not is_model_dir(model_dir):
        return (f"train a new model with `nwb-ldns fit SESSION --out NEW_DIR` ({model_dir} lacks a valid "
                "config.json, so `fit` can neither resume nor replace it)")
    if resumable and not (model_dir / "denoiser.safetensors").is_file():
        return f"resume training with `nwb-ldns fit SESSION --out {model_dir} --resume`"
    return f"re-train it with `nwb-ldns fit SESSION --out {model_dir} --overwrite`"


def _bad(path: Path, problem: str, model_dir: Path, resumable: bool = False) -> InputFileError:
    advice = fix_advice(model_dir, resumable)
    return InputFileError(f"{path}: {problem}; the file is damaged or was edited, {advice}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_config(config: Any, path: Path, model_dir: Path) -> None:
    """Types and ranges of the stored config, by the same rules as `--set`, plus the keys the networks need."""
    if not isinstance(config, dict) or not isinstance(config.get("preset"), str):
        raise _bad(path, "its config section is missing or has no preset name", model_dir)
    values = {key: value for key, value in flatten(config).items() if key != "preset"}
    try:
        typed = flatten(resolve_config(config["preset"], values))
    except OptionError as error:
        raise _bad(path, str(error).replace("--set ", ""), model_dir) from None
    for key, value in values.items():
        expected = typed[key]
        same = type(value) is type(expected) or (_is_number(value) and isinstance(expected, float))
        if not same:
            raise _bad(path, f"{key} is {value!r} ({type(value).__name__}), expected a {type(expected).__name__}",
                       model_dir)
    missing = [key for key in NETWORK_KEYS if key not in values]
    if missing:
        raise _bad(path, f"the config lacks {', '.join(missing)}", model_dir)


def check_data(data: Any, path: Path, model_dir: Path) -> None:
    """The data description: present, with the fields loading and sampling read, of the right types and ranges."""
    if not isinstance(data, dict):
        raise _bad(path, "its data section (the session description the model was trained on) is missing",
                   model_dir)
    for key, kinds in DATA_FIELDS.items():
        value = data.get(key)
        if not isinstance(value, kinds) or (kinds != (bool,) and isinstance(value, bool)):
            names = " or ".join(kind.__name__ for kind in kinds)
            raise _bad(path, f"data.{key} is {value!r}, expected a {names}", model_dir)
    if data["n_units"] < 1 or data["n_bins"] < 1:
        raise _bad(path, f"data.n_units ({data['n_units']}) and data.n_bins ({data['n_bins']}) must be >= 1",
                   model_dir)
    if not (_is_number(data["bin_width"]) and data["bin_width"] > 0) or not _is_number(data["time_offset"]):
        raise _bad(path, "data.bin_width must be a finite number > 0 and data.time_offset finite", model_dir)
    if len(data["unit_ids"]) != data["n_units"]:
        raise _bad(path, f"data.unit_ids has {len(data['unit_ids'])} entries for {data['n_units']} units", model_dir)
    _check_condition(data.get("condition"), path, model_dir)


def _check_condition(condition: Any, path: Path, model_dir: Path) -> None:
    if condition is None:
        return
    if not isinstance(condition, dict) or not isinstance(condition.get("variable"), str):
        raise _bad(path, "data.condition must be null or an object naming its variable", model_dir)
    dim = condition.get("dim", 2)
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise _bad(path, f"data.condition.dim is {dim!r}, expected a positive integer", model_dir)


def check_latent_stats(stats: Any, n_latent: int, length_mask: bool, path: Path, model_dir: Path) -> None:
    """Finite per-channel statistics, one per latent channel (NaN here ends in an invalid Poisson rate).

    `fit --resume` rewrites this file from the autoencoder, so a resume is valid advice while training is unfinished.
    """
    def bad(problem: str) -> InputFileError:
        return _bad(path, problem, model_dir, resumable=True)

    if not isinstance(stats, dict):
        raise bad("expected a JSON object of latent statistics")
    for key in ("mean", "std"):
        values = stats.get(key)
        if not isinstance(values, list) or len(values) != n_latent:
            count = len(values) if isinstance(values, list) else "no"
            raise bad(f"{key} has {count} values for the config's {n_latent} latent channels")
        if not all(_is_number(value) for value in values):
            raise bad(f"{key} holds a non-finite or non-numeric value")
    if not all(value > 0 for value in stats["std"]):
        raise bad("std holds a value <= 0")
    clip = stats.get("clip")
    if clip is not None and not (_is_number(clip) and clip > 0):
        raise bad(f"clip is {clip!r}, expected null or a finite number > 0")
    if not isinstance(stats.get("centred"), bool):
        raise bad(f"centred is {stats.get('centred')!r}, expected true or false")
    for key in ("standardised_abs_max", "train_mean_count_per_bin"):
        if key in stats and not _is_number(stats[key]):
            raise bad(f"{key} is {stats[key]!r}, expected a finite number")
    lengths = stats.get("train_lengths")
    if length_mask and not _valid_lengths(lengths):
        raise bad("train_lengths must map positive trial lengths to positive counts")


def _valid_lengths(lengths: Any) -> bool:
    """train_lengths: {"length": count}, what a variable-length model draws trial lengths from."""
    return isinstance(lengths, dict) and bool(lengths) and all(
        key.isdigit() and int(key) > 0 and isinstance(count, int) and not isinstance(count, bool) and count > 0
        for key, count in lengths.items())


def check_state(state: Mapping[str, torch.Tensor], module: torch.nn.Module, path: Path, model_dir: Path) -> None:
    """Tensor names, dtypes and shapes against the network the config builds, and every value finite."""
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise _bad(path, "expected a set of named weight tensors", model_dir)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        problem = f"lacks tensor {missing[0]}" if missing else f"has tensor {unexpected[0]} the config does not build"
        raise _bad(path, f"{problem} ({len(missing)} missing, {len(unexpected)} unexpected)", model_dir)
    for name, reference in expected.items():
        tensor = state[name]
        if tensor.dtype != reference.dtype or tuple(tensor.shape) != tuple(reference.shape):
            raise _bad(path, f"tensor {name} is {tensor.dtype} {list(tensor.shape)}, the config builds "
                             f"{reference.dtype} {list(reference.shape)}", model_dir)
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _bad(path, f"tensor {name} holds NaN or infinite values", model_dir)
