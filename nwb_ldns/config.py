"""Training configurations: the reference presets (ldns-reference.md §2.4, §2.5, §3.2) and `--set` overrides.

A config is a plain JSON-able dict of three sections plus a seed, so it can be written to config.json, printed,
and compared on resume. Every key has a declared type; `resolve_config` rejects unknown keys and ill-typed values
with an `OptionError` that lists the valid keys, so a typo never silently trains the wrong model.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Mapping

from nwb_ldns.errors import OptionError

# ----------------------------------------------------------------------------------------------------------------
# Defaults shared by every preset (reference values common to all datasets).

_AUTOENCODER_COMMON: dict[str, Any] = {
    "hidden": 256,  # C
    "latent": 8,  # C_lat
    "n_blocks": 4,
    "bidirectional": True,
    "d_state": 64,
    "s4_mode": "diag",
    "mask_prob": 0.2,  # coordinated dropout p
    "l2_beta": 0.01,
    "td_beta": 0.01,
    "td_lags": 5,
    "lr": 1e-3,
    "weight_decay": 0.01,  # AdamW default, what the reference really used (§7 item 3)
    "grad_clip": 2.0,
    "epochs": 200,
    "warmup_epochs": 10,
    "horizon_factor": 1.3,  # f: the cosine horizon is nb * epochs * f
    "batch_size": 512,
    "val_every": 5,  # validation every k epochs (and after the last epoch); best checkpoint kept
    "checkpoint_every": 10,  # resume checkpoint every N epochs (and at the end of the stage)
    "patience": 0,  # early stopping: stop after this many validations without improvement (0 = off; ours)
    "rate_offset": "off",  # "psth": decoder adds the smoothed train PSTH as a log-rate offset (ours; fixed length)
    "offset_smoothing_bins": 1.0,  # Gaussian std (bins) of the PSTH smoothing for rate_offset=psth (0 = none)
}

_LATENTS_COMMON: dict[str, Any] = {
    "clip": None,  # clamp standardised latents to [-clip, clip]; None = no clipping
    "length_mask": "auto",  # "auto": mask channel when the session has variable-length trials; "on"/"off"
}

_DIFFUSION_COMMON: dict[str, Any] = {
    "hidden": 64,
    "n_blocks": 4,
    "d_state": 64,
    "s4_mode": "diag",  # "diag" (S4D-LegS) | "dplr" (the reference's full kernel: + P, exactly its parameter count)
    "out_scale": 1.0,  # conv_out down-scaling at init (0.1 for monkey / human)
    "num_steps": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "loss": "mse",  # "mse" | "smoothl1"
    "smoothl1_beta": 0.04,
    "lr": 1e-3,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
    "epochs": 1000,
    "warmup_epochs": 50,
    "horizon_factor": 1.3,
    "batch_size": 512,
    "ema_power": 2.0 / 3.0,
    "ema_min_value": 0.0,
    "ema_max_value": 0.9999,
    "condition": None,  # name of a per-trial variable, e.g. "trial_angle" / "trial_condition"; None = unconditional
    "condition_kind": "auto",  # "angle" (radians, cos/sin) | "category" (one-hot; ours) | "trace" (behaviour as extra
    # denoiser channels) | "auto" (from the values)
    "checkpoint_every": 50,
    "sample_clip": None,  # clamp the clean-latent estimate at every sampling step to +-this (ours; None = off)
    "val_every": 0,  # validation denoising loss (EMA weights, fixed draws) every k epochs; 0 = never (ours)
    "patience": 0,  # early stopping after this many validations without improvement (0 = off; ours)
}

_SPIKE_HISTORY_COMMON: dict[str, Any] = {  # reference 3.7 (monkey notebook); off unless fit --spike-history
    "enabled": False,
    "history": 20,  # previous bins of the same neuron
    "max_spikes": 5,  # counts clipped to this (Bernoulli when 1)
    "epochs": 60,  # over mini-batches of trials (ours; the reference: 3000 full-batch steps)
    "batch_size": 32,
    "lr": 0.1,
    "weight_decay": 0.01,
    "start": "zero-padded",  # train on every bin with the zero history sampling starts from (ours) | "reference"
}

_TRAINING_COMMON: dict[str, Any] = {
    "device": "auto",  # "auto" (CUDA if available) | "cpu" | "cuda"
    "precision": "auto",  # "auto" (bf16 autocast on CUDA, fp32 on CPU) | "fp32" | "bf16"
    "val_fraction": 0.1,  # held out of train (seeded) when the session has no val trials
    "max_bins": None,  # drop trials longer than this many bins before training (reference max_seqlen); None: keep
}


def _preset(seed: int = 42, **sections: Mapping[str, Any]) -> dict[str, Any]:
    config = {
        "seed": seed,
        "autoencoder": dict(_AUTOENCODER_COMMON),
        "latents": dict(_LATENTS_COMMON),
        "diffusion": dict(_DIFFUSION_COMMON),
        "spike_history": dict(_SPIKE_HISTORY_COMMON),
        "training": dict(_TRAINING_COMMON),
    }
    for name, values in sections.items():
        config[name].update(values)
    return config


PRESETS: dict[str, dict[str, Any]] = {
    # ldns-reference.md §2.3/§2.4 (AE), §2.5 (clip), §3.1/§3.2 (denoiser) -- Lorenz
    "lorenz": _preset(
        autoencoder={"latent": 8, "n_blocks": 4, "bidirectional": True, "mask_prob": 0.2, "l2_beta": 0.01,
                     "td_beta": 0.01, "epochs": 200, "warmup_epochs": 10, "horizon_factor": 1.3,
                     "batch_size": 512, "val_every": 5},
        latents={"clip": 5.0},
        diffusion={"hidden": 64, "n_blocks": 4, "out_scale": 1.0, "loss": "mse", "epochs": 1000,
                   "warmup_epochs": 50, "horizon_factor": 1.3, "batch_size": 512},
    ),
    # MC_Maze: causal encoder; the reference used the epoch-140 checkpoint of 260 -- we keep the best val epoch
    "monkey": _preset(
        autoencoder={"latent": 16, "n_blocks": 4, "bidirectional": False, "mask_prob": 0.5, "l2_beta": 0.001,
                     "td_beta": 0.2, "epochs": 260, "warmup_epochs": 10, "horizon_factor": 1.1,
                     "batch_size": 64, "val_every": 10},
        latents={"clip": None},
        diffusion={"hidden": 256, "n_blocks": 6, "out_scale": 0.1, "loss": "smoothl1", "smoothl1_beta": 0.04,
                   "epochs": 2000, "warmup_epochs": 50, "horizon_factor": 1.3, "batch_size": 512},
    ),
    # Willett speech BCI: causal encoder, 6 blocks, variable length via the mask channel, constant EMA 0.9999
    "human": _preset(
        autoencoder={"latent": 32, "n_blocks": 6, "bidirectional": False, "mask_prob": 0.2, "l2_beta": 0.001,
                     "td_beta": 0.02, "epochs": 400, "warmup_epochs": 20, "horizon_factor": 1.5,
                     "batch_size": 256, "val_every": 10},
        latents={"clip": None, "length_mask": "auto"},
        diffusion={"hidden": 384, "n_blocks": 6, "out_scale": 0.1, "loss": "smoothl1", "smoothl1_beta": 0.04,
                   "epochs": 2000, "warmup_epochs": 100, "horizon_factor": 1.3, "batch_size": 256,
                   "ema_min_value": 0.9999, "checkpoint_every": 20},
        training={"max_bins": 512},  # the reference drops sentences over 512 bins (10.24 s; ldns-reference.md 1b)
    ),
    # Small widths and few epochs: a full fit of 64 trials x 256 bins x 128 units in about a minute on 2 cores.
    # A 10x larger learning rate than the reference, so that ~60 autoencoder steps learn the firing rates.
    "tiny": _preset(
        autoencoder={"hidden": 32, "latent": 4, "n_blocks": 1, "d_state": 16, "lr": 1e-2, "epochs": 20,
                     "warmup_epochs": 1, "batch_size": 16, "val_every": 2, "checkpoint_every": 5},
        latents={"clip": 5.0},
        diffusion={"hidden": 32, "n_blocks": 1, "d_state": 16, "num_steps": 100, "lr": 1e-2, "epochs": 30,
                   "warmup_epochs": 2, "batch_size": 16, "checkpoint_every": 10},
    ),
}

# `auto`: sized from the session (auto_overrides); these are its shape-independent values (ours, not the reference).
PRESETS["auto"] = _preset(
    autoencoder={"hidden": 64, "latent": 8, "n_blocks": 2, "d_state": 32, "bidirectional": True, "mask_prob": 0.3,
                 "l2_beta": 0.01, "td_beta": 0.01, "lr": 2e-3, "epochs": 200, "warmup_epochs": 5,
                 "horizon_factor": 1.0, "batch_size": 32, "val_every": 2, "checkpoint_every": 10, "patience": 20,
                 "rate_offset": "psth", "offset_smoothing_bins": 1.0},
    latents={"clip": 5.0},
    diffusion={"hidden": 64, "n_blocks": 2, "d_state": 32, "lr": 2e-3, "epochs": 400, "warmup_epochs": 10,
               "horizon_factor": 1.0, "batch_size": 64, "checkpoint_every": 25, "val_every": 10, "patience": 0,
               "sample_clip": 5.0},
)

AUTO_AE_STEPS = 1500  # autoencoder optimiser steps at most (early stopping usually ends sooner)
AUTO_DENOISER_STEPS = 3000
AUTO_AE_SECONDS = 60.0  # and at most about this long on 2 CPU cores (nwb_ldns.training.timing)
AUTO_DENOISER_SECONDS = 90.0


def _epochs(n_train: int, batch: int, max_steps: int, seconds: float, step_s: float, minimum: int) -> int:
    steps = min(max_steps, int(seconds / step_s))
    return max(minimum, steps // math.ceil(n_train / batch))


def auto_overrides(n_train: int, n_bins: int, n_units: int, variable_length: bool = False) -> dict[str, Any]:
    """The `auto` preset's shape-dependent values: widths from the units, batch sizes and epochs from the trials.

    Why: the reference presets are sized for thousands of trials and a GPU; on a few hundred trials and 2 cores
    they overfit the autoencoder, run for many minutes and under-train the denoiser. Budgets are in optimiser
    steps, capped by an estimated time (AUTO_*_SECONDS), so the fit time follows the data size.
    """
    from nwb_ldns.training.timing import step_seconds

    base = PRESETS["auto"]
    hidden = 64 if n_units <= 64 else 128
    latent = 8 if n_units >= 16 else 4
    ae_batch = int(min(64, max(8, n_train // 4)))
    dn_batch = int(min(32, max(16, n_train // 4)))
    ae_step = step_seconds(ae_batch, n_bins, hidden, base["autoencoder"]["n_blocks"])
    dn_step = step_seconds(dn_batch, n_bins, base["diffusion"]["hidden"], base["diffusion"]["n_blocks"])
    ae_epochs = _epochs(n_train, ae_batch, AUTO_AE_STEPS, AUTO_AE_SECONDS, ae_step, 10)
    ae_nb = math.ceil(n_train / ae_batch)
    return {
        "autoencoder.hidden": hidden, "autoencoder.latent": latent, "autoencoder.batch_size": ae_batch,
        "autoencoder.epochs": ae_epochs,
        "autoencoder.val_every": max(1, min(round(20 / ae_nb), ae_epochs // 20 or 1)),
        "autoencoder.rate_offset": "off" if variable_length else "psth",
        "diffusion.batch_size": dn_batch,
        "diffusion.epochs": _epochs(n_train, dn_batch, AUTO_DENOISER_STEPS, AUTO_DENOISER_SECONDS, dn_step, 20),
    }


# Allowed string values and numeric ranges, checked after overrides are applied.
_CHOICES: dict[str, tuple[str, ...]] = {
    "autoencoder.rate_offset": ("off", "psth"),
    "autoencoder.s4_mode": ("diag", "dplr"),
    "diffusion.s4_mode": ("diag", "dplr"),
    "diffusion.condition_kind": ("auto", "angle", "category", "trace"),
    "latents.length_mask": ("auto", "on", "off"),
    "diffusion.loss": ("mse", "smoothl1"),
    "spike_history.start": ("zero-padded", "reference"),
    "training.device": ("auto", "cpu", "cuda"),
    "training.precision": ("auto", "fp32", "bf16"),
}
_NULLABLE: dict[str, type] = {"latents.clip": float, "diffusion.condition": str, "diffusion.sample_clip": float,
                              "training.max_bins": int}
_POSITIVE_INT = {"hidden", "latent", "d_state", "epochs", "batch_size", "checkpoint_every", "num_steps", "td_lags",
                 "history", "max_spikes"}
_POSITIVE_FLOAT = {"lr", "grad_clip", "horizon_factor", "ema_power", "smoothl1_beta", "out_scale", "beta_start",
                   "beta_end", "ema_max_value"}
# Upper bounds far above any usable value, below where the optimiser's float32 arithmetic overflows (AdamW's first
# step is lr / 0.1 and its decay factor 1 - lr * weight_decay; float32 ends at 3.4e38): an lr of 1e308 would end
# in an overflow inside torch instead of a divergence that fit reports. Typical learning rates are 1e-4 to 1e-2.
MAX_LR = 1e6
MAX_WEIGHT_DECAY = 1e6
# Integers beyond these reach torch as C longs and fail there with an OverflowError instead of a refusal; sizes
# below them are checked against memory before allocation (nwb_ldns.limits.check_network_size).
MAX_INT = 2**31 - 1
MAX_SEED = 2**63 - 1
# Network widths beyond this overflow torch's size arithmetic even on the meta device used to count parameters.
MAX_WIDTH = 2**16
_WIDTH_LEAVES = {"hidden", "latent", "d_state", "n_blocks"}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: the dotted keys that `--set` accepts."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out


def _default_type(key: str, default: Any) -> type:
    if key in _NULLABLE:
        return _NULLABLE[key]
    return type(default)


def _coerce(key: str, value: Any, kind: type) -> Any:
    """Convert a `--set` string (or a Python value) to the declared type of `key`, or raise OptionError."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if key in _NULLABLE:
            return None
        raise OptionError(f"--set {key} cannot be empty/none; give a {kind.__name__} value")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            result = float(value)
            if not math.isfinite(result):
                raise ValueError(value)
            return result
        if kind is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond float range (10**400)
        raise OptionError(f"--set {key}={value!r} is not a valid {kind.__name__}; give e.g. {key}=<{kind.__name__}>") from None
    raise OptionError(f"--set {key}: unsupported type {kind.__name__}")


def _check_ranges(flat: Mapping[str, Any]) -> None:
    for key, value in flat.items():
        leaf = key.rsplit(".", 1)[-1]
        limit = MAX_SEED if leaf == "seed" else MAX_WIDTH if leaf in _WIDTH_LEAVES else MAX_INT
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
            shown = str(value) if len(str(value)) <= 15 else f"{str(value)[:12]}..."
            raise OptionError(f"--set {key}={shown} is far beyond any usable value (at most {limit:,})")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise OptionError(f"--set {key}={value!r} is not allowed; choose one of {', '.join(_CHOICES[key])}")
        if leaf in _POSITIVE_INT and value < 1:
            raise OptionError(f"--set {key}={value} must be a positive integer")
        if leaf in _POSITIVE_FLOAT and value is not None and value <= 0:
            raise OptionError(f"--set {key}={value} must be > 0")
    for section in ("autoencoder", "diffusion"):
        if flat[f"{section}.warmup_epochs"] < 0 or flat[f"{section}.weight_decay"] < 0:
            raise OptionError(f"--set {section}.warmup_epochs and {section}.weight_decay must be >= 0")
    if flat["spike_history.weight_decay"] < 0:
        raise OptionError("--set spike_history.weight_decay must be >= 0")
    for section in ("autoencoder", "diffusion", "spike_history"):
        for leaf, limit in (("lr", MAX_LR), ("weight_decay", MAX_WEIGHT_DECAY)):
            if flat[f"{section}.{leaf}"] > limit:
                raise OptionError(f"--set {section}.{leaf}={flat[f'{section}.{leaf}']:g} is far above any usable "
                                  f"value (at most {limit:g}; typical: lr 1e-4 to 1e-2, weight_decay 0 to 0.1)")
    if not 0.0 <= flat["autoencoder.mask_prob"] < 1.0:
        raise OptionError("--set autoencoder.mask_prob must be in [0, 1)")
    if flat["autoencoder.val_every"] < 1:
        raise OptionError("--set autoencoder.val_every must be a positive integer")
    for key in ("autoencoder.patience", "diffusion.patience", "diffusion.val_every", "autoencoder.offset_smoothing_bins"):
        if flat[key] < 0:
            raise OptionError(f"--set {key} must be >= 0")
    if flat["diffusion.patience"] and not flat["diffusion.val_every"]:
        raise OptionError("--set diffusion.patience needs validation: also --set diffusion.val_every=K (K >= 1)")
    if flat["autoencoder.n_blocks"] < 0 or flat["diffusion.n_blocks"] < 1:
        raise OptionError("--set autoencoder.n_blocks must be >= 0 and diffusion.n_blocks >= 1")
    if flat["diffusion.hidden"] % 4:
        raise OptionError(f"--set diffusion.hidden ({flat['diffusion.hidden']}) must be a multiple of 4 (the time "
                          "embedding is hidden / 4 wide)")
    for section in ("autoencoder", "diffusion"):
        if flat[f"{section}.d_state"] % 2:
            raise OptionError(f"--set {section}.d_state ({flat[f'{section}.d_state']}) must be even (S4 states come "
                              "in complex-conjugate pairs)")
    if flat["autoencoder.hidden"] % flat["autoencoder.latent"]:
        raise OptionError(
            f"--set autoencoder.hidden ({flat['autoencoder.hidden']}) must be a multiple of autoencoder.latent "
            f"({flat['autoencoder.latent']}) for the grouped bottleneck"
        )
    if not 0.0 <= flat["diffusion.ema_min_value"] <= flat["diffusion.ema_max_value"] < 1.0:
        raise OptionError("--set diffusion.ema_min_value must be <= diffusion.ema_max_value < 1")
    if not flat["diffusion.beta_start"] < flat["diffusion.beta_end"] < 1.0:
        raise OptionError("--set diffusion.beta_start must be < diffusion.beta_end < 1")
    if not 0.0 < flat["training.val_fraction"] < 1.0:
        raise OptionError("--set training.val_fraction must be in (0, 1)")
    if flat["latents.clip"] is not None and flat["latents.clip"] <= 0:
        raise OptionError("--set latents.clip must be > 0 or none")
    if flat.get("training.max_bins") is not None and flat["training.max_bins"] < 1:
        raise OptionError("--set training.max_bins must be a positive number of bins or none (keep every trial)")


def parse_set_options(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["autoencoder.epochs=5", ...]` -> {"autoencoder.epochs": "5"} (values stay text; typed by resolve_config)."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--set {item!r} is not key=value; write e.g. --set autoencoder.epochs=5")
        overrides[key.strip()] = value.strip()
    return overrides


def read_config_file(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """(preset, dotted overrides) of `fit --config FILE`: a model directory's config.json (or the directory itself:
    the run is reproduced), or a JSON/YAML file of settings, nested or as dotted keys."""
    import yaml

    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise OptionError(f"--config {path}: cannot read it ({error}); pass a JSON or YAML file of settings or a "
                          "model directory's config.json") from None
    try:
        loaded = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise OptionError(f"--config {path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} "
                          f"({str(error).splitlines()[0]}); fix the file or pass a model directory's config.json") from None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("config"), Mapping) and "data" in loaded:
        loaded = loaded["config"]  # a model directory's config.json: the resolved config of that run
    if not isinstance(loaded, Mapping):
        raise OptionError(f"--config {path}: expected a mapping of settings (e.g. autoencoder: {{epochs: 50}}), got "
                          f"{type(loaded).__name__}")
    settings = flatten(loaded)
    preset = settings.pop("preset", None)
    return (str(preset) if preset is not None else None), settings


DEFAULT_PRESET = "auto"


def resolve_config(preset: str = "lorenz", overrides: Mapping[str, Any] | None = None,
                   shape: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The preset's config with dotted-key (or nested-dict) overrides applied, type-checked and range-checked.

    shape (n_train, n_bins, n_units, variable_length) sizes the `auto` preset; explicit overrides win over it.
    """
    if preset not in PRESETS:
        raise OptionError(f"unknown preset {preset!r}; choose one of {', '.join(preset_names())}")
    config = copy.deepcopy(PRESETS[preset])
    defaults = flatten(config)
    sized = auto_overrides(**shape) if preset == "auto" and shape else {}
    for key, value in {**sized, **flatten(overrides or {})}.items():
        if key not in defaults:
            valid = ", ".join(sorted(defaults))
            raise OptionError(f"unknown config key {key!r} in --set; valid keys: {valid}")
        typed = _coerce(key, value, _default_type(key, defaults[key]))
        section, _, leaf = key.rpartition(".")
        target = config
        for part in section.split(".") if section else []:
            target = target[part]
        target[leaf] = typed
    _check_ranges(flatten(config))
    config["preset"] = preset
    return config


def format_config(config: Mapping[str, Any]) -> str:
    """Readable JSON text of a config (what `fit --dry-run` prints and config.json stores)."""
    return json.dumps(config, indent=2, sort_keys=False)
