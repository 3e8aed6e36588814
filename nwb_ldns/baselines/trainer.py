"""What the neural baselines (LFADS, pi-VAE) share: config presets with `--set` overrides, the model directory as
plain files, and one resumable training loop.

Model directory (like `fit`'s; loading it never unpickles anything):

    config.json          {"format": "nwb-ldns-baseline", "baseline", "model_name", "config", "data"}
    training_log.jsonl   one JSON line per epoch
    checkpoints/         resume state (nwb_ldns.training.state: safetensors + JSON)
    weights.safetensors  the trained network, written last: its presence marks a finished model

A new run writes into the (locked) directory; `--overwrite` of an existing baseline directory trains beside it
in `.<name>.replacement.partial` and takes its place only when complete, so a killed replacement leaves the old
model intact; `--resume` continues either from the newest checkpoint to the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
import xarray as xr
from safetensors import SafetensorError
from safetensors.torch import load_file

from nwb_ldns.data.schema import session_shape
from nwb_ldns.config import _coerce
from nwb_ldns.errors import InputFileError, OptionError, OutputExistsError, SessionContentError
from nwb_ldns.fileio import lock_directory, refuse_input_as_output, refuse_unwritable, replace_path
from nwb_ldns.training.common import EpochCallback, Run, batches_per_epoch, check_finite_loss
from nwb_ldns.training.state import count_lines, load_checkpoint, save_checkpoint, truncate_lines, write_json
from nwb_ldns.training.state import write_tensors

BASELINE_FORMAT = "nwb-ldns-baseline"
FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
# every preset has the keys the shared loop reads: seed, epochs, batch_size, lr, grad_clip, checkpoint_every

# (module, batch tensors, config, step, steps_per_epoch, training) -> (loss, {name: float} for the log)
LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor], dict[str, Any], int, int, bool],
                  tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class BaselineSpec:
    """One neural baseline: its name, presets, network builder, loss and data tensors."""

    name: str  # "lfads": the CLI subcommand and the checkpoint stage
    model_name: str  # "LFADS": provenance model_name of its samples
    presets: Mapping[str, Mapping[str, Any]]
    default_preset: str
    check_config: Callable[[dict[str, Any]], None]
    build: Callable[[dict[str, Any], dict[str, Any]], torch.nn.Module]  # (config, data) -> network
    loss: LossFn
    tensors: Callable[[xr.Dataset, dict[str, Any]], dict[str, torch.Tensor]]  # (trials, config) -> tensors
    # (training trials, config) -> extra entries of the data description that sampling needs (e.g. labels)
    describe: Callable[[xr.Dataset, dict[str, Any]], dict[str, Any]] | None = None


# ---------------------------------------------------------------------------------------------------------------
# config


def resolve_baseline_config(spec: BaselineSpec, preset: str | None, overrides: Mapping[str, Any] | None
                            ) -> dict[str, Any]:
    """The preset with `--set key=value` overrides typed like fit's (nwb_ldns.config) and range-checked."""
    preset = preset or spec.default_preset
    if preset not in spec.presets:
        raise OptionError(f"unknown {spec.name} preset {preset!r}; choose one of {', '.join(sorted(spec.presets))}")
    config = copy.deepcopy(dict(spec.presets[preset]))
    for key, value in (overrides or {}).items():
        if key not in config:
            raise OptionError(f"unknown {spec.name} config key {key!r} in --set; valid keys: "
                              f"{', '.join(sorted(config))}")
        if isinstance(config[key], str) and isinstance(value, str):
            config[key] = value.strip()  # text settings (e.g. a column name; "none" is a value here, not null)
        else:
            config[key] = _coerce(key, value, type(config[key]))
    for key in ("epochs", "batch_size", "checkpoint_every"):
        if config[key] < 1:
            raise OptionError(f"--set {key}={config[key]} must be a positive integer")
    for key in ("lr", "grad_clip"):
        if not config[key] > 0:
            raise OptionError(f"--set {key}={config[key]} must be > 0")
    spec.check_config(config)
    config["preset"] = preset
    return config


def check_positive(config: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if not config[key] > 0:
            raise OptionError(f"--set {key}={config[key]} must be > 0")


def check_fraction(config: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if not 0.0 <= config[key] < 1.0:
            raise OptionError(f"--set {key}={config[key]} must be in [0, 1)")


# ---------------------------------------------------------------------------------------------------------------
# data


def describe_trials(session: xr.Dataset, train: np.ndarray, val: np.ndarray) -> dict[str, Any]:
    """What sampling needs without the session (units, bins, lengths, source identity), stored in config.json."""
    mask = session["mask"].values
    lengths = mask.sum(axis=1)
    if not np.array_equal(mask, np.arange(mask.shape[1])[None, :] < lengths[:, None]):
        raise SessionContentError("variable-length trials must be left-aligned (mask True for a prefix of bins)")
    attrs = session.attrs
    return {
        **session_shape(session),
        "variable_length": not bool(mask.all()),
        "train_trials": [int(t) for t in session["trial"].values[train]],
        "val_trials": [int(t) for t in session["trial"].values[val]],
        "train_lengths": [int(n) for n in lengths[train]],
        "mean_counts": _mean_counts(session, train),
        "source": {str(k): v if isinstance(v, (str, int, float, bool)) else str(v)
                   for k, v in attrs.items() if str(k).startswith("source_")},
    }


def _mean_counts(session: xr.Dataset, train: np.ndarray) -> list[float]:
    """Mean count per valid bin of each unit over the training trials (a network's initial output bias)."""
    counts = np.nan_to_num(np.asarray(session["counts"].values[train], dtype=np.float64))
    mask = session["mask"].values[train]
    return [float(x) for x in (counts * mask[:, :, None]).sum(axis=(0, 1)) / max(int(mask.sum()), 1)]


def template_dataset(data: Mapping[str, Any]) -> xr.Dataset:
    """A one-trial stand-in for the training set: what `generated_dataset` reads (units, bin width, time, source)."""
    from nwb_ldns.data.schema import make_session_dataset

    return make_session_dataset(np.zeros((1, 1, data["n_units"]), np.float32), data["bin_width"],
                                unit_ids=np.asarray(data["unit_ids"]), time_offset=data["time_offset"],
                                attrs=dict(data["source"]))


def split_positions(session: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) trial positions: the session's train split (as every baseline) and its val split, if any."""
    split = session["split"].values.astype(str)
    train, val = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    if train.size < 2:
        raise SessionContentError(f"the session has {train.size} training trials; a baseline needs at least 2 "
                                  "(check the trials table's split column)")
    return train, val


# ---------------------------------------------------------------------------------------------------------------
# the model directory


def _retrain(spec: BaselineSpec, directory: Path) -> str:
    return f"nwb-ldns baseline {spec.name} SESSION --model-dir {directory} --overwrite ..."


def read_description(directory: Path, spec: BaselineSpec) -> dict[str, Any]:
    """config.json of a baseline model directory of this kind, or one error naming the problem and the fix."""
    path = directory / "config.json"
    try:
        described = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputFileError(f"{directory} has no config.json: not a baseline model directory; train one with "
                             f"`nwb-ldns baseline {spec.name} SESSION --out B.nwb`") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputFileError(f"{path} is not valid JSON; the model directory is damaged, re-train with "
                             f"`{_retrain(spec, directory)}`") from None
    if not isinstance(described, dict) or described.get("format") != BASELINE_FORMAT:
        raise InputFileError(f"{directory} is not an nwb-ldns baseline model directory (config.json lacks format "
                             f"{BASELINE_FORMAT!r}); pass the --model-dir a baseline run wrote")
    if described.get("baseline") != spec.name:
        raise InputFileError(f"{directory} holds a {described.get('baseline')!r} baseline, not {spec.name!r}; "
                             f"use `nwb-ldns baseline {described.get('baseline')}` or another --model-dir")
    if not isinstance(described.get("config"), dict) or not isinstance(described.get("data"), dict):
        raise InputFileError(f"{path} lacks its config or data sections; re-train with `{_retrain(spec, directory)}`")
    return described


def is_baseline_dir(path: Path) -> bool:
    try:
        return path.is_dir() and json.loads((path / "config.json").read_text()).get("format") == BASELINE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load_weights(directory: Path, spec: BaselineSpec, module: torch.nn.Module) -> torch.nn.Module:
    """Load weights.safetensors into `module`, refusing a file whose tensors do not fit the config's network."""
    path = directory / WEIGHTS
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise InputFileError(f"{directory} has no {WEIGHTS}: its training did not finish; continue it with "
                             f"`nwb-ldns baseline {spec.name} SESSION --model-dir {directory} --resume ...`") from None
    except SafetensorError as error:
        raise InputFileError(f"{path} is not a valid safetensors file ({error}); re-train with "
                             f"`{_retrain(spec, directory)}`") from None
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        raise InputFileError(f"{path} does not hold the network config.json describes (tensors or shapes differ); "
                             f"re-train with `{_retrain(spec, directory)}`")
    module.load_state_dict(state)
    return module


def _prepare(target: Path, spec: BaselineSpec, resume: bool, overwrite: bool, inputs: list[Path]
             ) -> tuple[Path, bool, bool]:
    """(directory to train in, whether it replaces target when complete, whether we created target)."""
    staging = target.with_name(f".{target.name}.replacement.partial")
    refuse_input_as_output(target, inputs, "--model-dir")
    if resume:
        if is_baseline_dir(staging):
            return staging, True, False
        if not is_baseline_dir(target):
            raise OptionError(f"cannot resume: {target} is not a baseline model directory started by `nwb-ldns "
                              f"baseline {spec.name}`; run without --resume to start a new one")
        read_description(target, spec)
        return target, False, False
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it or --resume to "
                                    "continue or reuse that model")
        if target.is_symlink() or not target.is_dir() or (any(target.iterdir()) and not is_baseline_dir(target)):
            raise OutputExistsError(f"{target} exists and is not an nwb-ldns baseline model directory; --overwrite "
                                    "only replaces what the same command wrote: remove it yourself or choose "
                                    "another --model-dir")
    refuse_unwritable(target)
    if not target.exists():
        target.mkdir(parents=True)
        return target, False, True
    if any(target.iterdir()):
        shutil.rmtree(staging, ignore_errors=True)
        return staging, True, False
    return target, False, False


def _same_run(described: Mapping[str, Any], config: Mapping[str, Any] | None, data: Mapping[str, Any],
              directory: Path) -> None:
    if config is not None and config != described["config"]:
        raise OptionError(f"--resume continues {directory} with its saved config; drop --preset/--set/--epochs "
                          "or start a new run with --overwrite")
    keys = ("n_units", "n_bins", "bin_width", "unit_ids", "train_trials", "source")
    diff = [k for k in keys if described["data"].get(k) != data.get(k)]
    if diff:
        raise OptionError(f"cannot resume {directory}: the session differs from the one it was trained on "
                          f"({', '.join(diff)}); pass the same session and session options")


def fit_baseline_dir(spec: BaselineSpec, session: xr.Dataset, model_dir: str | Path, *, preset: str | None = None,
                     overrides: Mapping[str, Any] | None = None, resume: bool = False, overwrite: bool = False,
                     progress: bool = True, on_epoch_end: EpochCallback | None = None,
                     inputs: list[Path] | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the baseline on the session's train split into `model_dir`; return (network, config.json content).

    resume=True continues (or reuses, when finished) the run in model_dir; preset/overrides given with it must
    not change its config. on_epoch_end(stage, epoch) runs after every epoch's checkpoint (raise to stop).
    """
    target = Path(model_dir)
    train_pos, val_pos = split_positions(session)
    data = describe_trials(session, train_pos, val_pos)
    config = resolve_baseline_config(spec, preset, overrides) if (preset or overrides or not resume) else None
    directory, replacing, created = _prepare(target, spec, resume, overwrite, list(inputs or []))
    try:
        with lock_directory(target):
            if resume:
                described = read_description(directory, spec)
                if config is not None and preset is None:  # overrides only: relative to the saved preset
                    config = resolve_baseline_config(spec, described["config"]["preset"], overrides)
                _same_run(described, config, data, directory)
                config = described["config"]
            else:
                if spec.describe is not None:
                    data.update(spec.describe(session.isel(trial=train_pos), config))
                directory.mkdir(parents=True, exist_ok=True)
                described = {"format": BASELINE_FORMAT, "format_version": FORMAT_VERSION, "baseline": spec.name,
                             "model_name": spec.model_name, "nwb_ldns_version": _version(), "config": config,
                             "data": data}
                write_json(directory / "config.json", described)
            torch.manual_seed(int(config["seed"]))
            module = spec.build(config, data)
            if (directory / WEIGHTS).is_file():
                load_weights(directory, spec, module)
            else:
                _train(spec, module, session, train_pos, val_pos, config, directory, resume, progress, on_epoch_end)
            if replacing:
                replace_path(directory, target)
            return module, described
    except BaseException:
        if created and target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        raise


def _version() -> str:
    from nwb_ldns import __version__

    return __version__


def load_baseline_dir(spec: BaselineSpec, model_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(network, config.json content) of a finished baseline model directory."""
    directory = Path(model_dir)
    described = read_description(directory, spec)
    module = spec.build(described["config"], described["data"])
    return load_weights(directory, spec, module), described


# ---------------------------------------------------------------------------------------------------------------
# the training loop


def _train(spec: BaselineSpec, module: torch.nn.Module, session: xr.Dataset, train_pos: np.ndarray,
           val_pos: np.ndarray, config: dict[str, Any], directory: Path, resume: bool, progress: bool,
           on_epoch_end: EpochCallback | None) -> None:
    """Adam with gradient clipping over shuffled trial batches; checkpoint every `checkpoint_every` epochs;
    weights.safetensors last. All randomness (shuffling, dropout, sampling) comes from torch's global generator,
    whose state is in every checkpoint: a resumed run ends with the same weights as an uninterrupted one."""
    run = Run(directory, torch.device("cpu"), False, progress, on_epoch_end)
    retrain = _retrain(spec, directory)
    checkpoint = load_checkpoint(run.checkpoint_dir, (spec.name,), retrain) if resume else None
    train = spec.tensors(session.isel(trial=train_pos), config)
    val = spec.tensors(session.isel(trial=val_pos), config) if val_pos.size else None
    optimizer = torch.optim.Adam(module.parameters(), lr=config["lr"])
    n = next(iter(train.values())).shape[0]
    batch_size = min(config["batch_size"], n)
    nb, epochs = batches_per_epoch(n, batch_size), config["epochs"]
    if checkpoint is not None:
        try:
            module.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            torch.set_rng_state(checkpoint["rng"])
            start = int(checkpoint["epoch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise InputFileError(f"{run.checkpoint_dir}: the checkpoint does not fit this model ({error}); re-train "
                                 f"with `{retrain}`") from None
        truncate_lines(run.log_path, int(checkpoint["log_lines"]))
        run.say(f"resuming {spec.name} from epoch {start} of {epochs}")
    else:
        start = 0
        truncate_lines(run.log_path, 0)
        run.checkpoint_dir.mkdir(exist_ok=True)
        run.log_path.touch()
        run.log({"event": "start", "baseline": spec.name, "n_train": int(train_pos.size), "n_val": int(val_pos.size),
                 "parameters": sum(p.numel() for p in module.parameters())})
    bar = run.bar(nb * epochs, nb * start, spec.name)
    try:
        for epoch in range(start, epochs):
            module.train()
            totals: dict[str, float] = {}
            for b, rows in enumerate(torch.randperm(n).split(batch_size)):
                step = epoch * nb + b
                loss, parts = spec.loss(module, {k: v[rows] for k, v in train.items()}, config, step, nb, True)
                check_finite_loss(float(loss.detach()), spec.name, step, config["lr"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), config["grad_clip"])
                optimizer.step()
                for key, value in {"loss": float(loss.detach()), **parts}.items():
                    totals[key] = totals.get(key, 0.0) + value / nb
                bar.update(1)
            record = {"stage": spec.name, "epoch": epoch + 1, **{k: round(v, 6) for k, v in totals.items()}}
            if val is not None:
                record["val_loss"] = round(_evaluate(spec, module, val, config, (epoch + 1) * nb, nb), 6)
            bar.set_postfix(loss=f"{totals['loss']:.4f}")
            run.log(record)
            if (epoch + 1) % config["checkpoint_every"] == 0 or epoch + 1 == epochs:
                save_checkpoint(run.checkpoint_dir, f"{spec.name}-epoch{epoch + 1:05d}",
                                {"stage": spec.name, "epoch": epoch + 1, "model": module.state_dict(),
                                 "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                                 "log_lines": count_lines(run.log_path)})
            run.epoch_done(spec.name, epoch + 1)
    finally:
        bar.close()
    module.eval()
    run.log({"stage": spec.name, "event": "done"})
    write_tensors(directory / WEIGHTS, dict(module.state_dict()), metadata={"format": BASELINE_FORMAT})


@torch.no_grad()
def _evaluate(spec: BaselineSpec, module: torch.nn.Module, val: dict[str, torch.Tensor], config: dict[str, Any],
              step: int, nb: int) -> float:
    """The loss on the val trials in eval mode (no dropout; the model decides what else eval mode means)."""
    module.eval()
    n = next(iter(val.values())).shape[0]
    total = 0.0
    for rows in torch.arange(n).split(config["batch_size"]):
        loss, _ = spec.loss(module, {k: v[rows] for k, v in val.items()}, config, step, nb, False)
        total += float(loss) * len(rows) / n
    module.train()
    return total


@dataclass
class TrainedBaseline:
    """A trained neural baseline: its network, config and data description (config.json) and directory; each
    baseline sets SPEC and adds its own `sample` (and `describe`)."""

    net: torch.nn.Module
    config: dict[str, Any]
    data: dict[str, Any]
    model_dir: Path
    SPEC: ClassVar[BaselineSpec]

    @classmethod
    def fit(cls, session: xr.Dataset, model_dir: str | Path, **options):
        """Train on the session's train split into model_dir (options: preset, overrides, resume, overwrite,
        progress, on_epoch_end, inputs; see fit_baseline_dir)."""
        net, described = fit_baseline_dir(cls.SPEC, session, model_dir, **options)
        return cls(net.eval(), described["config"], described["data"], Path(model_dir))

    @classmethod
    def load(cls, model_dir: str | Path):
        net, described = load_baseline_dir(cls.SPEC, model_dir)
        return cls(net.eval(), described["config"], described["data"], Path(model_dir))

    @property
    def n_train(self) -> int:
        return len(self.data["train_trials"])

    def parameters(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}

    def trial_lengths(self, n: int, n_bins: int | None, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """(bins per generated trial, valid-bin mask [n, bins]): without n_bins each trial copies the length of a
        random training trial; with n_bins every trial has that many bins (any length)."""
        if n_bins is None:
            lengths = np.asarray(self.data["train_lengths"])[rng.integers(0, self.n_train, size=n)]
            n_bins = int(self.data["n_bins"])
        else:
            if int(n_bins) < 1:
                raise OptionError(f"--bins must be a positive number of bins, got {n_bins}")
            n_bins = int(n_bins)
            lengths = np.full(n, n_bins)
        return n_bins, np.arange(n_bins)[None, :] < lengths[:, None]
