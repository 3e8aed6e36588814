"""`fit`: session Dataset -> trained model directory (autoencoder, latents, denoiser), resumable at any point.

The run directory is the model directory itself. config.json is written first; each final file is written
atomically when its stage ends (autoencoder.safetensors, latent_stats.json, then denoiser.safetensors, whose
presence marks a finished model); checkpoints/ holds the newest resume state. A crash therefore leaves a
directory that `fit(..., resume=True)` continues, and no final file is ever half-written.

The model directory is locked (flock) while a run writes it, so a second `fit` into it is refused. A new run over an
existing model (`overwrite=True`) trains beside it in `.<name>.replacement.partial` and takes its place only when
complete, so a killed replacement leaves the old model intact (and `resume=True` continues the replacement).
"""

from __future__ import annotations

import json
import os
import time
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr

from nwb_ldns.config import DEFAULT_PRESET, flatten, resolve_config
from nwb_ldns.data.schema import session_shape, validate_session_dataset
from nwb_ldns.errors import (NWBLDNSError, OptionError, OutputExistsError, OutputWriteError, SessionContentError,
                             TrainingDivergedError)
from nwb_ldns.fileio import as_output_write_error, check_output, is_model_dir, lock_directory, replace_path
from nwb_ldns.model_dir import (LDNSModel, build_networks, model_description, read_safetensors, state_bytes,
                                write_bytes)
from nwb_ldns.model_schema import check_config, check_data, check_state, fix_advice
from nwb_ldns.training import distributed
from nwb_ldns.training.autoencoder import train_autoencoder
from nwb_ldns.training.conditions import condition_tensor, describe_condition, trace_channels
from nwb_ldns.training.common import EpochCallback, Run, batches_per_epoch, resolve_device, use_bf16
from nwb_ldns.training.diffusion import train_denoiser
from nwb_ldns.training.latents import apply_latent_set, build_latent_set, encode
from nwb_ldns.training.lengths import drop_long_trials, max_bins_setting
from nwb_ldns.training.history import HISTORY_FILE, fit_history_stage
from nwb_ldns.training.history import STAGE as HISTORY_STAGE
from nwb_ldns.training.quality import fit_quality, train_psth
from nwb_ldns.training.state import load_checkpoint, truncate_lines, write_json
from nwb_ldns.training.trial_store import masked_mean_count, split_counts


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def split_indices(session: xr.Dataset, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(train trial positions, val trial positions, where val came from). Holds out val from train if needed."""
    split = session["split"].values.astype(str)
    train = np.flatnonzero(split == "train")
    val = np.flatnonzero(split == "val")
    if train.size == 0:
        raise SessionContentError("the session has no 'train' trials; give the trials table a split column "
                                  "with train/val/test values or let load_session make a random split")
    if val.size:
        return train, val, "session val split"
    if train.size < 2:
        raise SessionContentError("need at least 2 train trials to hold out a validation trial; add trials")
    n_val = min(train.size - 1, max(1, int(round(val_fraction * train.size))))
    order = torch.randperm(train.size, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(train[order[n_val:]]), np.sort(train[order[:n_val]]), f"held out {n_val} of the train trials (seed {seed})"


def describe_data(session: xr.Dataset, config: Mapping[str, Any], train: np.ndarray, val: np.ndarray,
                  val_source: str) -> dict[str, Any]:
    """The data description stored in config.json: shapes, units, source identity, split, mask/condition use."""
    mask = session["mask"].values
    variable = not bool(mask.all())
    mode = config["latents"]["length_mask"]
    if variable:
        lengths = mask.sum(1)
        if not np.array_equal(mask, np.arange(mask.shape[1])[None, :] < lengths[:, None]):
            raise SessionContentError("variable-length trials must be left-aligned (mask True for a prefix of bins)")
        if mode == "off":
            raise OptionError("the session has variable-length trials; latents.length_mask=off only works for "
                              "fixed-length sessions (use --set latents.length_mask=auto)")
    condition = None
    name = config["diffusion"]["condition"]
    if name is not None:  # an angle or a category (nwb_ldns.training.conditions); configs from before
        kind = config["diffusion"].get("condition_kind", "angle")  # condition_kind existed only had angles
        condition = describe_condition(session, name, kind, train, val)
    attrs = session.attrs
    return {
        **session_shape(session),
        "unit_vars": {v: [_jsonable(x) for x in session[v].values] for v in session.data_vars
                      if v.startswith("unit_") and session[v].dims == ("unit",)},
        "variable_length": variable,
        "length_mask": variable if mode == "auto" else mode == "on",
        "condition": condition,
        "n_train": int(train.size),
        "n_val": int(val.size),
        "val_source": val_source,
        "train_trials": [int(t) for t in session["trial"].values[train]],
        "val_trials": [int(t) for t in session["trial"].values[val]],
        "source": {k: _jsonable(v) for k, v in attrs.items() if k.startswith("source_")},
        "session_attrs": {k: _jsonable(v) for k, v in attrs.items() if not k.startswith("source_")},
    }


MAX_COUNT = 100_000  # spikes of one unit in one bin: far above any recording, exact in float32


def check_training_counts(session: xr.Dataset) -> None:
    """Counts the Poisson model can learn: whole numbers up to MAX_COUNT (1e30 spikes overflow every loss to NaN;
    fractional counts are rates or smoothed data, not spikes)."""
    from nwb_ldns.data.counts_cache import stored_dtype, trial_blocks

    if getattr(stored_dtype(session["counts"]), "kind", "f") == "u":
        return  # a big session's counts cache of uint8/uint16: whole numbers below MAX_COUNT by its dtype
    for _, counts in trial_blocks(session["counts"]):  # block by block for a cached (float32) session
        if counts.size and float(np.max(counts)) > MAX_COUNT:
            raise SessionContentError(f"counts reach {float(np.max(counts)):g} spikes in one bin (at most "
                                      f"{MAX_COUNT} expected); check the counts or use a smaller --bin-width")
        if counts.size and not np.array_equal(counts, np.round(counts)):
            raise SessionContentError("counts contain fractional values; fit trains on spike counts (whole "
                                      "numbers), pass binned spike counts, not rates or smoothed data")


def _tensors(session: xr.Dataset, positions: np.ndarray) -> dict[str, torch.Tensor]:
    out = {
        "counts": split_counts(session, positions),  # a TrialCounts reading the on-disk cache of a big session
        "mask": torch.from_numpy(np.ascontiguousarray(session["mask"].values[positions], dtype=bool)),
    }
    if "rates" in session and session["rates"].dims == ("trial", "time", "unit"):
        out["rates"] = torch.from_numpy(np.ascontiguousarray(session["rates"].values[positions], dtype=np.float32))
    if "behavior" in session:  # the traces a velocity model's held-out check conditions on
        out["behavior"] = torch.from_numpy(np.nan_to_num(np.ascontiguousarray(session["behavior"].values[positions],
                                                                              dtype=np.float32)))
    return out


def _conditions(session: xr.Dataset, data: Mapping[str, Any], positions: np.ndarray) -> torch.Tensor | None:
    if not data["condition"] or data["condition"].get("kind") == "trace":  # traces are extra channels
        return None
    if data["condition"].get("kind") == "category":
        return condition_tensor(data["condition"], session[data["condition"]["variable"]].values[positions])
    angles = np.asarray(session[data["condition"]["variable"]].values[positions], dtype=np.float64)
    if not np.all(np.isfinite(angles)):
        raise SessionContentError(f"condition variable {data['condition']['variable']} has NaN/inf for some train "
                                  "trials; drop those trials or choose another variable")
    return torch.from_numpy(np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32))


def _with_traces(extra: torch.Tensor | None, session: xr.Dataset, data: Mapping[str, Any],
                 positions: np.ndarray) -> torch.Tensor | None:
    """The denoiser's extra channels: the length mask (if any) first, then a trace condition's channels."""
    spec = data["condition"]
    if not spec or spec.get("kind") != "trace":
        return extra
    traces = trace_channels(spec, session[spec["variable"]].values[positions])
    return traces if extra is None else torch.cat([extra, traces.to(extra.dtype)], dim=-1)


def _same_data(saved: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    keys = ("n_units", "n_bins", "bin_width", "unit_ids", "train_trials", "val_trials", "length_mask", "condition")
    diff = [k for k in keys if saved.get(k) != fresh.get(k)]
    if saved["source"].get("source_sha256") != fresh["source"].get("source_sha256"):
        diff.append("source_sha256")
    return diff


def _resume_description(out_dir: Path, preset: str | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """config.json of the run to resume, after checking that preset/overrides would not change its config."""
    if not is_model_dir(out_dir):
        raise OptionError(f"cannot resume: {out_dir} is not a model directory started by `nwb-ldns fit`; "
                          "run without --resume to start a new one")
    described = json.loads((out_dir / "config.json").read_text())
    check_config(described.get("config"), out_dir / "config.json", out_dir)
    check_data(described.get("data"), out_dir / "config.json", out_dir)
    config = described["config"]
    if preset is not None and preset != config["preset"]:
        raise OptionError(f"--resume: {out_dir} was started with preset {config['preset']!r}, not {preset!r}; "
                          "drop --preset or start a new run with --overwrite")
    if overrides:
        saved = {k: v for k, v in flatten(config).items() if k != "preset"}
        if resolve_config(config["preset"], {**saved, **flatten(overrides)}) != config:
            raise OptionError("--resume continues a run with its saved config; drop --set/--epochs/--seed "
                              "or start a new run with --overwrite")
    return described


def _prepare_output(target: Path, resume: bool, overwrite: bool, inputs: list[str]) -> bool:
    """Apply the output rule before anything is written; create a new target. Returns whether we created it."""
    if resume:
        if not is_model_dir(target):
            raise OptionError(f"cannot resume: {target} is not a model directory started by `nwb-ldns fit`; "
                              "run without --resume to start a new one")
        return False
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it or --resume "
                                "to continue an interrupted run")
    check_output(target, kind="model", overwrite=overwrite, inputs=inputs)
    if target.exists():
        return False
    try:
        target.mkdir(parents=True)
    except FileExistsError:
        raise OutputExistsError(f"{target} was created by another process meanwhile; choose another --out") from None
    return True


def _staging_dir(target: Path) -> Path:
    """Where `fit --overwrite` trains the replacement, so the old model survives until the new one is complete."""
    return target.with_name(f".{target.name}.replacement.partial")


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _run_directory(target: Path, resume: bool) -> tuple[Path, bool]:
    """(directory this run trains in, whether it replaces `target` when complete); clears unusable leftovers.

    A new run into a model directory trains beside it (`_staging_dir`); --resume continues such an interrupted
    replacement if there is one, else the run in `target` itself.
    """
    staging = _staging_dir(target)
    _remove_path(staging.with_name(staging.name + ".retired.partial"))  # an old model a killed swap left behind
    if resume and is_model_dir(staging):
        return staging, True
    _remove_path(staging)  # a replacement killed before its config.json, or one a new run starts over
    if not resume and any(target.iterdir()):
        return staging, True
    return target, False


def _remove_stale_partials(directory: Path) -> None:
    """Temporary `.partial` folders left by a killed run (in the model directory and checkpoints/)."""
    for folder in (directory, directory / "checkpoints"):
        if folder.is_dir():
            for stale in folder.glob(".*.partial"):
                _remove_path(stale)


def plan(session: xr.Dataset, *, preset: str | None = None, overrides: Mapping[str, Any] | None = None
         ) -> dict[str, Any]:
    """What `fit` would do, without training or writing: resolved config, data summary, parameter counts, steps."""
    from nwb_ldns.models import count_parameters

    validate_session_dataset(session)
    check_training_counts(session)
    session, _ = drop_long_trials(session, max_bins_setting(None, preset, overrides))  # noted in data.session_attrs
    config, (train_pos, val_pos, val_source) = sized_config(session, preset or DEFAULT_PRESET, overrides)
    data = describe_data(session, config, train_pos, val_pos, val_source)
    torch.manual_seed(int(config["seed"]))
    autoencoder, denoiser = build_networks(config, data)
    steps = {}
    for stage in ("autoencoder", "diffusion"):
        nb = batches_per_epoch(len(train_pos), config[stage]["batch_size"])
        steps[stage] = {"batches_per_epoch": nb, "total_steps": nb * config[stage]["epochs"]}
    summary = {k: v for k, v in data.items() if k not in ("train_trials", "val_trials", "unit_ids", "unit_vars")}
    return {
        "config": config,
        "data": summary,
        "parameters": {"autoencoder": count_parameters(autoencoder), "denoiser": count_parameters(denoiser)},
        "steps": steps,
        "device": str(resolve_device(config["training"]["device"])),
    }


def sized_config(session: xr.Dataset, preset: str, overrides: Mapping[str, Any] | None
                 ) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray, str]]:
    """The resolved config (the `auto` preset sized from the session's train split) and the train/val split."""
    base = resolve_config(preset, overrides)
    split = split_indices(session, base["training"]["val_fraction"], int(base["seed"]))
    if preset != "auto":
        return base, split
    shape = {"n_train": int(split[0].size), "n_bins": int(session.sizes["time"]),
             "n_units": int(session.sizes["unit"]), "variable_length": not bool(session["mask"].values.all())}
    return resolve_config(preset, overrides, shape=shape), split


def _finished_stage_lines(log_path: Path, history_done: bool = False) -> int:
    """Log lines to keep when resuming with no checkpoint: those up to the autoencoder's "done" record, if any
    (and up to the spike-history "done" record when its weights were written).

    Why: a run stopped in the denoiser stage before its first checkpoint restarts that stage, but the finished
    autoencoder (and its log) stays.
    """
    if not log_path.is_file():
        return 0
    keep = 0
    finished = {"autoencoder"} | ({HISTORY_STAGE} if history_done else set())
    for number, line in enumerate(log_path.read_text().splitlines(), start=1):
        record = json.loads(line) if line.strip() else {}
        if record.get("stage") in finished and record.get("event") == "done":
            keep = number
    return keep


def fit(session: xr.Dataset, out_dir: str | os.PathLike, *, preset: str | None = None,
        overrides: Mapping[str, Any] | None = None, resume: bool = False, progress: bool = True,
        overwrite: bool = False, on_epoch_end: EpochCallback | None = None) -> LDNSModel:
    """Train an LDNS model on the session's train split and write it to `out_dir`; return the loaded model.

    preset: default "auto" (sized from the session). resume=True continues the run in `out_dir` from its newest checkpoint with the
    saved config (preset and overrides must not change it). overwrite=True replaces an existing model directory.
    `on_epoch_end(stage, epoch)` runs after every epoch's checkpoint (raise in it to stop training).
    """
    ranks = distributed.current()
    distributed.join(ranks)
    if not ranks.is_main:
        return _follow(session, ranks, on_epoch_end)
    announcer = _Announcer(ranks)
    try:
        validate_session_dataset(session)
        check_training_counts(session)
        target = Path(out_dir)
        from nwb_ldns.data.multi import session_paths

        created = _prepare_output(target, resume, overwrite, session_paths(session))  # every pooled session
        try:
            with lock_directory(target):
                return _fit_locked(session, target, preset=preset, overrides=overrides, resume=resume,
                                   progress=progress, on_epoch_end=on_epoch_end, announcer=announcer)
        except BaseException:
            if created and target.is_dir() and not any(target.iterdir()):
                target.rmdir()  # refused before writing anything: leave no empty folder behind
            raise
    finally:
        announcer.close()  # a run that stopped before training tells the other ranks to stop too


class _Announcer:
    """Rank 0's plan of the run, sent once to the other ranks of a data-parallel fit (or a stop, if rank 0 ends
    before training: a refused option, a finished model)."""

    def __init__(self, ranks: distributed.Ranks) -> None:
        self.ranks, self.sent = ranks, False

    def send(self, plan: dict[str, Any]) -> None:
        if self.ranks.active and not self.sent:
            self.ranks.broadcast(plan)
        self.sent = True

    def close(self) -> None:
        self.send({"stop": True})


def _follow(session: xr.Dataset, ranks: distributed.Ranks, on_epoch_end: EpochCallback | None) -> None:
    """A rank > 0 of a data-parallel fit: train with rank 0 on its plan; write nothing; return None."""
    plan = ranks.broadcast(None)
    if plan.get("stop"):
        return None
    config = plan["config"]
    session, _ = drop_long_trials(session, config["training"].get("max_bins"))
    device = resolve_device(config["training"]["device"], ranks)
    out_dir = Path(plan["out_dir"])
    run = Run(out_dir, device, use_bf16(config["training"]["precision"], device), False, on_epoch_end, ranks)
    checkpoint = load_checkpoint(run.checkpoint_dir) if plan["checkpoint"] else None
    _train_stages(session, run, config, plan["data"], np.asarray(plan["train"], dtype=np.int64),
                  np.asarray(plan["val"], dtype=np.int64), checkpoint)
    return None


def _fit_locked(session: xr.Dataset, target: Path, *, preset: str | None, overrides: Mapping[str, Any] | None,
                resume: bool, progress: bool, on_epoch_end: EpochCallback | None, announcer: "_Announcer") -> LDNSModel:
    """`fit` with the target locked against a second process (see `fit` for the arguments).

    A new run that diverges leaves nothing behind: its directory could only be resumed into the same divergence
    (a resume keeps the config), so the user's fix is a new run with a lower learning rate. A new run that cannot
    write (disk full, read-only) is removed too, which frees what it took; a resumed run keeps its checkpoints.
    """
    out_dir, replacing = _run_directory(target, resume)
    try:
        return _train_run(session, target, out_dir, replacing, preset=preset, overrides=overrides, resume=resume,
                          progress=progress, on_epoch_end=on_epoch_end, announcer=announcer)
    except (TrainingDivergedError, OutputWriteError, OSError) as error:
        write_failed = as_output_write_error(error)
        if isinstance(error, OSError) and write_failed is None:
            raise  # not a full or read-only disk: a bug or a fault we do not handle
        if not resume:
            _discard_new_run(out_dir, target)
        if write_failed is not None and write_failed is not error:
            raise write_failed from error
        raise


def _discard_new_run(out_dir: Path, target: Path) -> None:
    """Remove what a new run wrote: its staging directory, or the contents of the (locked) target."""
    if out_dir != target:
        _remove_path(out_dir)
        return
    for child in out_dir.iterdir():
        _remove_path(child)


def _train_run(session: xr.Dataset, target: Path, out_dir: Path, replacing: bool, *, preset: str | None,
               overrides: Mapping[str, Any] | None, resume: bool, progress: bool,
               on_epoch_end: EpochCallback | None, announcer: _Announcer) -> LDNSModel:
    """The training run in `out_dir` (the target or its replacement's staging directory)."""
    described = _resume_description(out_dir, preset, overrides) if resume else None
    session, length_note = drop_long_trials(session, max_bins_setting(described, preset, overrides))
    if described:
        config = described["config"]
        train_pos, val_pos, val_source = split_indices(session, config["training"]["val_fraction"], int(config["seed"]))
    else:
        config, (train_pos, val_pos, val_source) = sized_config(session, preset or DEFAULT_PRESET, overrides)
    seed = int(config["seed"])
    data = describe_data(session, config, train_pos, val_pos, val_source)
    _conditions(session, data, train_pos)  # a bad condition is refused before anything is written
    device = resolve_device(config["training"]["device"], announcer.ranks)
    run = Run(out_dir, device, use_bf16(config["training"]["precision"], device), progress, on_epoch_end,
              announcer.ranks)
    if length_note:
        run.say(length_note)

    if described:
        _remove_stale_partials(out_dir)
        mismatch = _same_data(described["data"], data)
        if mismatch:
            raise OptionError(f"cannot resume {out_dir}: the session differs from the one it was started on "
                              f"({', '.join(mismatch)}); pass the same session and session options")
        if replacing:
            run.say(f"resuming the interrupted replacement of {target} (in {out_dir}); the old model stays "
                    "until it is complete")
        if (out_dir / "denoiser.safetensors").is_file():
            model = LDNSModel.load(out_dir, device=device)
            if _logged_quality(run.log_path):
                run.say(f"{out_dir} is already fully trained; nothing to resume")
            else:  # killed during the held-out check: finish it, so the log equals an uninterrupted run's
                _check_quality(run, model, _tensors(session, train_pos), _tensors(session, val_pos), seed)
            return _finish(model, target, replacing)
        checkpoint = load_checkpoint(run.checkpoint_dir)
        if checkpoint is not None:  # its weights against the networks this config builds
            check_state(checkpoint["model"], build_networks(config, data)[checkpoint["stage"] == "diffusion"],
                        run.checkpoint_dir / "latest.json", out_dir)
        ae_done = (out_dir / "autoencoder.safetensors").is_file()
        keep = checkpoint["log_lines"] if checkpoint and not (ae_done and checkpoint["stage"] == "autoencoder") \
            else _finished_stage_lines(run.log_path, (out_dir / HISTORY_FILE).is_file())  # finished stages keep theirs
        truncate_lines(run.log_path, keep)
    else:
        checkpoint = None
        out_dir.mkdir(parents=True, exist_ok=True)  # the (empty, locked) target or the replacement's staging
        run.checkpoint_dir.mkdir()
        write_json(out_dir / "config.json", model_description(config, data))
        run.log_path.touch()
    if "held out" in val_source:
        run.say(f"the session has no 'val' trials: {val_source} for validation")

    checkpoint_given = checkpoint is not None
    if checkpoint is None and not (out_dir / "autoencoder.safetensors").is_file():
        from nwb_ldns.models import count_parameters

        probe = build_networks(config, data)
        run.log({"event": "start", "device": str(device), "bf16": run.bf16, "n_train": data["n_train"],
                 "n_val": data["n_val"], "val_source": val_source,
                 "reader_notes": json.loads(session.attrs.get("reader_notes") or "[]"),
                 "parameters": {"autoencoder": count_parameters(probe[0]), "denoiser": count_parameters(probe[1])},
                 **({"processes": run.ranks.world} if run.ranks.active else {})})
        if device.type == "cpu":
            from nwb_ldns.training.timing import estimate_fit_seconds, format_duration

            estimate = estimate_fit_seconds(config, data["n_train"], data["n_bins"])
            run.say(f"estimated fit time on 2 CPU cores: at most {format_duration(estimate['total'])} (autoencoder "
                    f"{format_duration(estimate['autoencoder'])}, diffusion {format_duration(estimate['diffusion'])}); "
                    "early stopping usually ends sooner")
    announcer.send({"config": config, "data": data, "out_dir": str(out_dir), "train": train_pos.tolist(),
                    "val": val_pos.tolist(), "checkpoint": checkpoint_given})
    train, val = _train_stages(session, run, config, data, train_pos, val_pos, checkpoint)
    model = LDNSModel.load(out_dir, device=device)
    _check_quality(run, model, train, val, seed)
    model = _finish(model, target, replacing)
    run.say(f"fit finished in {time.time() - run.started:.0f} s")  # the CLI then prints "model directory: ..." once
    return model


def _train_stages(session: xr.Dataset, run: Run, config: dict[str, Any], data: dict[str, Any], train_pos: np.ndarray,
                  val_pos: np.ndarray, checkpoint: dict[str, Any] | None
                  ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Autoencoder, spike history, latents and denoiser, on every rank of a data-parallel run (only rank 0
    writes); returns the train and val tensors for the held-out check."""
    seed, device, out_dir = int(config["seed"]), run.device, run.out_dir
    cond = _conditions(session, data, train_pos)
    torch.manual_seed(seed)
    autoencoder, denoiser = build_networks(config, data)
    train, val = _tensors(session, train_pos), _tensors(session, val_pos)
    if getattr(autoencoder, "rate_offset", None) is not None:
        autoencoder.set_rate_offset(train_psth(train["counts"], train["mask"],
                                               config["autoencoder"]["offset_smoothing_bins"]))

    ae_path = out_dir / "autoencoder.safetensors"
    if ae_path.is_file():
        ae_state = read_safetensors(ae_path, fix_advice(out_dir, resumable=False))[0]
        check_state(ae_state, autoencoder, ae_path, out_dir)
        autoencoder.load_state_dict(ae_state)
    else:
        ae_resume = checkpoint if checkpoint and checkpoint["stage"] == "autoencoder" else None
        best, summary = train_autoencoder(autoencoder, train, val, config["autoencoder"], seed, run, ae_resume)
        autoencoder.load_state_dict(best)
        run.log({"stage": "autoencoder", "event": "done", **summary})  # before the file: a resume keeps it
        if run.writes:
            write_bytes(ae_path, state_bytes(autoencoder))
        run.say(f"autoencoder: best validation Poisson NLL {summary['best_val_poisson_nll']:.4f} at epoch "
                f"{summary['best_epoch']} -> {ae_path}")
    autoencoder.to(device)
    if config["spike_history"]["enabled"] and run.writes and not (out_dir / HISTORY_FILE).is_file():
        fit_history_stage(autoencoder, train, config, seed + 3, run, out_dir)  # rank 0 alone: a small GLM

    z = encode(autoencoder, train["counts"], config["autoencoder"]["batch_size"], device)
    latents, extra, stats = build_latent_set(z, train["mask"], data["length_mask"], config["latents"]["clip"])
    extra = _with_traces(extra, session, data, train_pos)
    if not all(np.isfinite(stats["mean"] + stats["std"])):
        raise TrainingDivergedError("the autoencoder's latents are NaN or infinite: training diverged and no model "
                                    f"was written; lower --set autoencoder.lr (now {config['autoencoder']['lr']:g}) "
                                    "and run fit again")
    stats["train_mean_count_per_bin"] = masked_mean_count(train["counts"], train["mask"])  # sample compares with it
    if run.writes:
        write_bytes(out_dir / "latent_stats.json", json.dumps(stats, indent=2).encode())

    val_set = None
    if config["diffusion"]["val_every"] and val["counts"].shape[0]:
        val_z, val_extra = apply_latent_set(encode(autoencoder, val["counts"], config["autoencoder"]["batch_size"],
                                                   device), val["mask"], stats)
        val_set = {"latents": val_z, "extra": _with_traces(val_extra, session, data, val_pos),
                   "cond": _conditions(session, data, val_pos)}
    dn_resume = checkpoint if checkpoint and checkpoint["stage"] == "diffusion" else None
    ema_state, summary = train_denoiser(denoiser, latents, extra, cond, config["diffusion"], seed + 2, run, dn_resume,
                                        val=val_set, masked=bool(data["length_mask"]))
    denoiser.load_state_dict(ema_state)
    run.log({"stage": "diffusion", "event": "done", **summary})
    if run.writes:
        write_bytes(out_dir / "denoiser.safetensors", state_bytes(denoiser))  # last: marks the model complete
    return train, val


def _check_quality(run: Run, model: LDNSModel, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor],
                   seed: int) -> None:
    """The held-out check against a PSTH: its log record and the lines fit prints (seeded, so a rerun after a
    kill gives the same record). A model too untrained to score (e.g. absurd rates after a few steps) is still
    written: the check says why it could not run instead of failing the fit."""
    try:
        quality = fit_quality(model, train, val, seed)
    except NWBLDNSError as error:
        run.log({"event": "quality", "skipped": str(error)})
        run.say(f"warning: the held-out check could not run ({error}); the model is written, but train longer "
                "before sampling from it")
        return
    run.log({"event": "quality", **quality["numbers"]})
    for line in quality["lines"]:
        run.say(line)


def _logged_quality(log_path: Path) -> bool:
    """Whether the run's log holds the held-out check's record (a kill during the check leaves it out)."""
    lines = log_path.read_text().splitlines() if log_path.is_file() else []
    return any(line.strip() and json.loads(line).get("event") == "quality" for line in lines)


def _finish(model: LDNSModel, target: Path, replacing: bool) -> LDNSModel:
    """Drop temporary leftovers; a complete replacement takes the old model's place (atomically where possible)."""
    _remove_stale_partials(model.model_dir)
    if replacing:
        replace_path(model.model_dir, target)
        model.model_dir = target
    return model

