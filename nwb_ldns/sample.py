"""Generation: denoiser -> standardised latents -> un-standardise -> AE decoder -> rates -> Poisson counts.

The result is an xarray.Dataset in the session schema (split "generated") with rates, latents and the provenance
attributes of docs/CONTRACT.md, so `write_synthetic` can turn it into NWB without knowing about the model.
Variable-length models sample in their full window with a centred length-mask channel and keep the centred
valid bins (ldns-reference.md §3.5); fixed-length models can be sampled at any length (length generalisation,
§3.6), one group of equal lengths at a time. Everything random comes from one seeded CPU generator.
After sampling, the standardised latents (and, when the model records it, the mean spike count) are checked
against the training range; a model that diverges gets a `GeneratedRangeWarning` and attrs "sample_warnings".
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from nwb_ldns import __version__
from nwb_ldns.data.schema import validate_session_dataset
from nwb_ldns.errors import GeneratedRangeWarning, OptionError
from nwb_ldns.training.conditions import condition_tensor, sample_categories, trace_channels, trace_dim
from nwb_ldns.models.spike_history import sample_with_history
from nwb_ldns.training.latents import centre_offsets, length_mask_channel, unstandardise

if TYPE_CHECKING:
    from nwb_ldns.export.spill import SpillSource
    from nwb_ldns.model_dir import LDNSModel


def _lengths(model: "LDNSModel", n: int, lengths: int | Sequence[int] | None, gen: torch.Generator
             ) -> tuple[np.ndarray, str]:
    window = int(model.data["n_bins"])
    if lengths is None:
        if model.data["length_mask"]:
            hist = model.latent_stats["train_lengths"]
            values = np.array([int(k) for k in hist])
            probs = torch.tensor([float(hist[k]) for k in hist], dtype=torch.float64)
            picks = torch.multinomial(probs, n, replacement=True, generator=gen).numpy()
            return values[picks], "drawn from the train trial lengths"
        return np.full(n, window), "training length"
    try:
        arr = np.atleast_1d(np.asarray(lengths, dtype=np.float64))
    except (TypeError, ValueError):
        raise OptionError(f"lengths must be whole numbers of bins, got {lengths!r}") from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0):
        raise OptionError(f"lengths must be whole numbers of bins, got {lengths!r}")
    arr = arr.astype(np.int64)
    if arr.size == 1:
        arr = np.full(n, int(arr[0]))
    if arr.size != n:
        raise OptionError(f"got {arr.size} lengths for {n} trials; give one length or exactly one per trial")
    if arr.min() < 1:
        raise OptionError(f"lengths must be >= 1 bin, got {int(arr.min())}")
    if model.data["length_mask"] and arr.max() > window:
        raise OptionError(f"this variable-length model was trained on {window}-bin windows; lengths must be <= "
                          f"{window}, got {int(arr.max())}")
    return arr, "given"


def _conditions(model: "LDNSModel", n: int, conditions: Sequence[float] | Sequence[str] | str | None,
                gen: torch.Generator) -> tuple[np.ndarray | None, str]:
    spec = model.data.get("condition")
    if not spec:
        if conditions is not None:
            raise OptionError("this model is unconditional; drop the conditions (train with "
                              "`nwb-ldns fit --condition COLUMN` to condition on a trial column)")
        return None, ""
    if spec.get("kind") == "category":  # labels (str), drawn or checked against the train classes
        return sample_categories(spec, n, conditions, gen)
    if spec.get("kind") == "trace":
        return _traces(model, spec, n, conditions), "given"
    if conditions is None:
        angles = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
        return angles.numpy(), "uniform(-pi, pi)"
    try:
        angles = np.asarray(conditions, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise OptionError(f"this model is conditioned on the angle {spec['variable']}; give angles in radians, "
                          f"got {conditions!r}") from None
    if angles.size == 1:
        angles = np.full(n, angles[0])
    if angles.size != n or not np.all(np.isfinite(angles)):
        raise OptionError(f"give one finite angle (radians) or exactly {n}, got {angles.size}")
    return angles, "given"


def _traces(model: "LDNSModel", spec: Mapping[str, Any], n: int, conditions: Any) -> np.ndarray:
    """The behaviour traces (n, bins, dims) a trace-conditioned model generates from: required, one per trial."""
    shape = (n, int(model.data["n_bins"]), int(spec["dim"]))
    if conditions is None:
        raise OptionError(f"this model is conditioned on the behaviour trace {spec['variable']}: give {n} traces of "
                          f"shape {shape[1:]} (CLI: --condition velocity=from:SESSION.nwb)")
    traces = np.asarray(conditions, dtype=np.float64)
    if traces.shape != shape or not np.all(np.isfinite(traces)):
        raise OptionError(f"give finite behaviour traces of shape {shape} (trials, bins, dims), got "
                          f"{traces.shape}")
    return traces.astype(np.float32)


@torch.no_grad()
def _decode(model: "LDNSModel", zs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(model.latent_stats["mean"], dtype=torch.float32)
    std = torch.tensor(model.latent_stats["std"], dtype=torch.float32)
    z = unstandardise(zs, mean, std)
    rates = model.autoencoder.decode(z.to(model.device)).float().cpu()
    _check_rates(model, rates)
    return z.float().cpu(), rates


MAX_RATE = 1e6  # spikes of one unit in one bin: ten times what fit trains on (nwb_ldns.training.fit.MAX_COUNT)


def _check_rates(model: "LDNSModel", rates: torch.Tensor) -> None:
    """Refuse decoded rates that are NaN, infinite, negative or absurd.

    Why: a model whose latent_stats.json or weights hold finite but far out-of-range values (1e308 becomes inf in
    float32) decodes to such rates, and torch.poisson then fails with a traceback or returns counts nothing can
    write.
    """
    if rates.numel() == 0:
        return
    top, bottom = float(rates.max()), float(rates.min())
    if math.isfinite(top) and math.isfinite(bottom) and 0.0 <= bottom and top <= MAX_RATE:
        return
    from nwb_ldns.errors import InputFileError
    from nwb_ldns.model_schema import fix_advice

    where = getattr(model, "model_dir", None)
    advice = fix_advice(where, resumable=False) if where is not None else "re-train it with `nwb-ldns fit`"
    raise InputFileError(f"{where or 'the model'} decodes the generated latents to firing rates from {bottom:g} to "
                         f"{top:g} spikes per bin (expected 0 to {MAX_RATE:g}): its latent_stats.json or weights "
                         f"are out of range (edited, damaged or from a diverged run); {advice}")


LATENT_STD_RANGE = (0.5, 2.0)  # the training latents are standardised: per-channel std 1
ABS_MAX_FACTOR = 1.5  # generated max |z| above this multiple of the training max (or clip) is out of range
COUNT_FACTOR = 1.5  # generated mean count per bin more than this factor off the training mean
ADVICE = "train longer, use --preset auto, or check the samples with nwb-ldns evaluate"


class _LatentRange:
    """Running per-channel moments and max |z| of the generated standardised latents over valid bins."""

    def __init__(self, channels: int) -> None:
        self.n, self.abs_max = 0, 0.0
        self.sum, self.sq = np.zeros(channels), np.zeros(channels)

    def add(self, zs: torch.Tensor, valid: torch.Tensor) -> None:
        values = zs.double().numpy()[valid.numpy()]  # [valid bins, channel]
        if values.size:
            self.n += values.shape[0]
            self.sum += values.sum(0)
            self.sq += (values ** 2).sum(0)
            self.abs_max = max(self.abs_max, float(np.abs(values).max()))

    def std(self) -> np.ndarray:
        mean = self.sum / max(self.n, 1)
        return np.sqrt(np.maximum(self.sq / max(self.n, 1) - mean ** 2, 0.0))


ABS_MAX_FLOOR = 4.5


def range_warnings(latent_stats: dict[str, Any], abs_max: float, channel_std: Sequence[float],
                   mean_count_per_bin: float) -> list[str]:
    """Messages for generated latents/counts outside the training range (empty when all is in range).

    Rules: max |z| > 1.5 x latent_stats["standardised_abs_max"] (or x "clip" when the latents were clipped);
    a channel's std outside [0.5, 2] (training std is 1); mean count per bin and unit more than 1.5x off
    latent_stats["train_mean_count_per_bin"] when the model records it.
    """
    out = []
    limit = latent_stats.get("standardised_abs_max") or latent_stats.get("clip")
    if limit:  # a few thousand standard-normal values reach |z| ~ 3.5-4.5; samples may exceed that by chance
        limit = max(float(limit), ABS_MAX_FLOOR)
    if limit and abs_max > ABS_MAX_FACTOR * float(limit):
        what = "training max" if latent_stats.get("standardised_abs_max") else "training clip"
        out.append(f"generated standardised latents reach |z| = {abs_max:.3g}, above {ABS_MAX_FACTOR:g} x the "
                   f"{what} {float(limit):.3g}: the denoiser leaves the training range; {ADVICE}")
    std = np.asarray(channel_std, dtype=np.float64)
    low, high = LATENT_STD_RANGE
    bad = np.flatnonzero(~((std >= low) & (std <= high)))
    if bad.size:
        listed = ", ".join(f"{int(c)}: {std[c]:.3g}" for c in bad[:8]) + (", ..." if bad.size > 8 else "")
        out.append(f"generated standardised latents have per-channel std outside [{low:g}, {high:g}] (training: "
                   f"1) in {bad.size} of {std.size} channels ({listed}); {ADVICE}")
    train_mean = latent_stats.get("train_mean_count_per_bin")
    if train_mean and np.isfinite(mean_count_per_bin):
        ratio = mean_count_per_bin / float(train_mean)
        if not (1 / COUNT_FACTOR <= ratio <= COUNT_FACTOR):
            out.append(f"generated mean spike count per bin and unit {mean_count_per_bin:.3g} is {ratio:.2g} x the "
                       f"training mean {float(train_mean):.3g}; {ADVICE}")
    return out


def _check_count(what: str, value: Any) -> None:
    """A whole number >= 1: int() would silently turn 2.5 trials into 2 and "3" into 3."""
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not whole or value < 1:
        raise OptionError(f"{what} must be a whole number >= 1, got {value!r}; pass e.g. n=10")


def _longest(model: "LDNSModel", lengths: int | Sequence[int] | None) -> int:
    """Upper bound of the generated trial length, before the lengths are drawn or checked (_lengths checks them)."""
    try:
        given = np.asarray(lengths if lengths is not None else [], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        given = np.empty(0)  # refused by _lengths with its own message
    given = given[np.isfinite(given)]
    return int(max([int(model.data["n_bins"])] + ([float(given.max())] if given.size else [])))


def _per_trial_bytes(model: "LDNSModel", max_len: int) -> float:
    """Memory per generated trial held in memory: float32 counts, rates and a copy while writing, the spike times
    (float64 + sort scratch) of the expected counts, the float32 latents and the mask."""
    n_units = int(model.data["n_units"])
    n_latent = int(model.config["autoencoder"]["latent"])
    mean_count = float(model.latent_stats.get("train_mean_count_per_bin") or 1.0)
    return float(max_len) * (n_units * (12 + 16 * mean_count) + 4 * n_latent + 2)


def _grid_text(model: "LDNSModel", n: int, max_len: int) -> str:
    return f"sampling {n:,} trials x {max_len:,} bins x {int(model.data['n_units']):,} units"


def _check_memory(model: "LDNSModel", n: int, lengths: int | Sequence[int] | None) -> None:
    """Refuse before allocation an n whose counts, rates, latents and spike times would not fit in memory."""
    from nwb_ldns.limits import available_memory, check_fits

    max_len = _longest(model, lengths)
    per_trial = _per_trial_bytes(model, max_len)
    available = available_memory()
    fitting = int(available // per_trial) if available else None
    if fitting == 0:
        fix = f"give a shorter --length (now {max_len:,} bins)"
    else:
        fix = (f"lower --n{f' (about {fitting:,} fit now)' if fitting else ''} and generate the rest in further "
               "runs with other --seed values, or write them to a file with `nwb-ldns sample` (it streams)")
    check_fits(float(n) * per_trial, _grid_text(model, n, max_len), fix)


STREAM_TRIAL_BYTES = 256  # per trial while streaming: length, start/stop, condition, trial-table columns
STREAM_WRITER_BYTES = 400 * 2**20  # the writer's blocks (4M counts and their spike times, series rows)


def _check_stream(model: "LDNSModel", n: int, lengths: int | Sequence[int] | None, batch_size: int,
                  folder: Path, target: Path) -> None:
    """Refuse a streamed sample whose one batch (or per-trial table) exceeds memory, or whose spill files and NWB
    file exceed the free disk space beside the output; before anything is allocated or written."""
    from nwb_ldns.limits import available_disk, check_disk_fits, check_fits

    max_len = _longest(model, lengths)
    batch = min(n, batch_size)
    memory = batch * _per_trial_bytes(model, max_len) + float(n) * (STREAM_TRIAL_BYTES + max_len) + STREAM_WRITER_BYTES
    check_fits(memory, f"{_grid_text(model, n, max_len)} in batches of {batch:,} trials",
               f"lower --batch-size (now {batch_size:,}) or give a shorter --length (now {max_len:,} bins)")
    n_units = int(model.data["n_units"])
    n_latent = int(model.config["autoencoder"]["latent"])
    behaviour = int((model.data.get("condition") or {}).get("dim") or 0) if trace_dim(model.data["condition"]) else 0
    mean_count = float(model.latent_stats.get("train_mean_count_per_bin") or 1.0)
    # per (trial, bin): spilled uint8 counts and float32 rows, then the NWB file's float32 rows, two float64
    # timestamps and the float64 spike times of the expected counts
    per_bin = n_units * (1 + 4 + 4 + 8 * mean_count) + 8 * (n_latent + behaviour) + 16 + 8 * bool(behaviour)
    per_trial = max_len * per_bin + STREAM_TRIAL_BYTES
    free = available_disk(folder)
    fitting = int(free // per_trial) if free is not None else None
    fix = (f"lower --n{f' (about {fitting:,} fit now)' if fitting else ''} and generate the rest in further runs "
           "with other --seed values, or write --out to a disk with more space")
    check_disk_fits(float(n) * per_trial, target, f"{_grid_text(model, n, max_len)}", fix)


@dataclass
class _Plan:
    """What one sample run generates, settled before the first batch: lengths, conditions, batches."""

    n: int
    seed: int
    sampler: str
    steps: int | None
    batch_size: int
    spike_history: bool
    gen: torch.Generator
    trial_lengths: np.ndarray
    length_source: str
    cond_values: np.ndarray | None
    condition_source: str

    @property
    def max_len(self) -> int:
        return int(self.trial_lengths.max())

    @property
    def mask(self) -> np.ndarray:
        return np.arange(self.max_len)[None, :] < self.trial_lengths[:, None]


def _plan(model: "LDNSModel", n: int, *, seed: int, sampler: str, steps: int | None,
          lengths: int | Sequence[int] | None, conditions: Any, batch_size: int, conditions_source: str | None,
          spike_history: bool) -> _Plan:
    if spike_history and getattr(model, "spike_history", None) is None:
        raise OptionError("this model has no spike-history GLM; fit it with `nwb-ldns fit ... --spike-history` "
                          "(or sample without --spike-history)")
    gen = torch.Generator().manual_seed(int(seed))
    trial_lengths, length_source = _lengths(model, n, lengths, gen)
    cond_values, condition_source = _conditions(model, n, conditions, gen)  # angles or class labels
    if conditions_source and conditions is not None:
        condition_source = conditions_source
    return _Plan(n, int(seed), sampler, steps, batch_size, spike_history, gen, trial_lengths, length_source,
                 cond_values, condition_source)


@dataclass
class _Batch:
    idx: np.ndarray  # trial indices
    counts: np.ndarray  # (trial, time, unit) float32, zero outside the valid bins
    rates: np.ndarray
    latents: np.ndarray


def _batches(model: "LDNSModel", plan: _Plan, observed: "_LatentRange", progress: bool) -> Iterator[_Batch]:
    """Generate the planned trials batch by batch (one generator, in a fixed order: the seed fixes the output for
    a given batch size); `observed` collects the latent range, a bar counts the trials."""
    from nwb_ldns.models import DDPMSchedule

    cfg = model.config["diffusion"]
    schedule = DDPMSchedule(cfg["num_steps"], cfg["beta_start"], cfg["beta_end"])
    n_latent = int(model.config["autoencoder"]["latent"])
    window = int(model.data["n_bins"])
    max_len, trial_lengths, cond_values, gen = plan.max_len, plan.trial_lengths, plan.cond_values, plan.gen
    # batches of trials with the same sampling window (variable-length models: always the training window)
    if model.data["length_mask"]:
        groups = {window: np.arange(plan.n)}
    else:
        groups = {int(L): np.flatnonzero(trial_lengths == L) for L in np.unique(trial_lengths)}
    bar = None
    if progress:
        from nwb_ldns.progress import bar as progress_bar

        bar = progress_bar(total=plan.n, desc=f"generating trials ({plan.sampler})", unit="trial")
    try:
        for sample_len, members in groups.items():
            for start in range(0, members.size, plan.batch_size):
                idx = members[start:start + plan.batch_size]
                yield _one_batch(model, plan, schedule, idx, sample_len, window, n_latent, observed)
                if bar is not None:
                    bar.update(idx.size)
    finally:
        if bar is not None:
            bar.close()


def _one_batch(model: "LDNSModel", plan: _Plan, schedule: Any, idx: np.ndarray, sample_len: int, window: int,
               n_latent: int, observed: "_LatentRange") -> _Batch:
    from nwb_ldns.models import sample_latents

    cfg = model.config["diffusion"]
    max_len, gen, cond_values = plan.max_len, plan.gen, plan.cond_values
    lens = torch.from_numpy(plan.trial_lengths[idx])
    extra = length_mask_channel(lens, window) if model.data["length_mask"] else None
    cond = None
    if trace_dim(model.data["condition"]):
        if sample_len != window:
            raise OptionError(f"a trace-conditioned model generates its training length ({window} bins) "
                              "only; drop --length")
        traces = trace_channels(model.data["condition"], cond_values[idx])
        extra = traces if extra is None else torch.cat([extra, traces], dim=-1)
    elif cond_values is not None:
        cond = condition_tensor(model.data["condition"], cond_values[idx])
    zs = sample_latents(model.denoiser, schedule, (idx.size, sample_len, n_latent), sampler=plan.sampler,
                        steps=plan.steps, generator=gen, extra=extra, cond=cond, progress=False,
                        clip_x0=cfg.get("sample_clip")).float().cpu()
    if model.data["length_mask"]:  # keep the centred valid bins, left-align them like the source trials
        left = centre_offsets(lens, window)
        pos = (left[:, None] + torch.arange(max_len)[None, :]).clamp(max=window - 1)
        zs = torch.gather(zs, 1, pos[..., None].expand(-1, -1, n_latent))
    else:
        zs = torch.nn.functional.pad(zs, (0, 0, 0, max_len - sample_len))
    z, lam = _decode(model, zs)
    valid = (torch.arange(max_len)[None, :] < lens[:, None])[..., None]
    observed.add(zs, valid[..., 0])
    lam = lam * valid
    if plan.spike_history:
        counts = sample_with_history(model.spike_history, lam.numpy(), gen) * valid.numpy()
    else:
        counts = torch.poisson(lam, generator=gen).numpy()
    return _Batch(idx, np.asarray(counts, dtype=np.float32), lam.numpy(), (z * valid).numpy())


def _used_steps(model: "LDNSModel", plan: _Plan) -> int:
    from nwb_ldns.models import DDPMSchedule
    from nwb_ldns.models.diffusion import DEFAULT_DDIM_STEPS

    cfg = model.config["diffusion"]
    schedule = DDPMSchedule(cfg["num_steps"], cfg["beta_start"], cfg["beta_end"])
    if plan.sampler == "ddim":
        return len(schedule.ddim_timesteps(DEFAULT_DDIM_STEPS if plan.steps is None else int(plan.steps)))
    return schedule.num_steps


def _metadata(model: "LDNSModel", plan: _Plan, observed: "_LatentRange", n_spikes: float) -> xr.Dataset:
    """Everything of the generated Dataset but its big arrays: coords, mask, trial/unit columns, provenance attrs
    (with the range warnings, issued here); the in-memory and the streamed sample share it."""
    n, max_len, mask, cond_values = plan.n, plan.max_len, plan.mask, plan.cond_values
    n_units = int(model.data["n_units"])
    mean_count = float(n_spikes / max(int(mask.sum()) * n_units, 1))
    messages = range_warnings(model.latent_stats, observed.abs_max, observed.std(), mean_count)
    for message in messages:
        warnings.warn(message, GeneratedRangeWarning, stacklevel=4)
    attrs = provenance_attrs(model, seed=plan.seed, sampler=plan.sampler, steps=_used_steps(model, plan),
                             conditioning=_conditioning_text(model, cond_values, plan.condition_source,
                                                             plan.length_source, plan.spike_history))
    attrs["sample_warnings"] = json.dumps(messages)
    bin_width = float(model.data["bin_width"])
    data_vars: dict[str, Any] = {
        "mask": (("trial", "time"), mask),
        "split": (("trial",), np.full(n, "generated").astype(str)),
        "align_time": (("trial",), np.zeros(n)),
    }
    is_trace = bool(trace_dim(model.data["condition"]))
    if cond_values is not None and not is_trace:  # the source's trial column (labels as str for a category)
        data_vars[model.data["condition"]["variable"]] = (("trial",), np.asarray(cond_values))
    for name, values in model.data.get("unit_vars", {}).items():
        data_vars[name] = (("unit",), np.asarray(values))
    n_latent = int(model.config["autoencoder"]["latent"])
    coords: dict[str, Any] = {"trial": np.arange(n, dtype=np.int64),
                              "time": model.data["time_offset"] + np.arange(max_len) * bin_width,
                              "unit": np.asarray(model.data["unit_ids"], dtype=np.int64),
                              "latent": np.arange(n_latent)}
    meta = xr.Dataset(data_vars, coords=coords, attrs={"bin_width": bin_width, **attrs})
    if is_trace:  # the requested behaviour of every generated trial, in the session's units
        meta = meta.assign_coords(behavior_dim=np.asarray(model.data["condition"].get("dims") or
                                                          np.arange(cond_values.shape[2]).astype(str)))
        meta.attrs["behavior_series"] = model.data.get("session_attrs", {}).get("behavior_series", "")
        meta.attrs["behavior_lag"] = float(model.data.get("session_attrs", {}).get("behavior_lag", 0.0))
    return meta


def _check_options(n: int, batch_size: int) -> tuple[int, int]:
    _check_count("the number of trials to sample (n)", n)
    _check_count("batch_size", batch_size)
    return int(n), int(batch_size)


def generate(model: "LDNSModel", n: int, *, seed: int = 0, sampler: str = "ddpm", steps: int | None = None,
             lengths: int | Sequence[int] | None = None,
             conditions: Sequence[float] | Sequence[str] | str | None = None, batch_size: int = 512,
             progress: bool = True, conditions_source: str | None = None, spike_history: bool = False) -> xr.Dataset:
    """`n` generated trials (counts, rates, latents, mask) with provenance attrs; see the module docstring.

    spike_history: draw the counts bin by bin from the model's spike-history GLM on top of the generated rates
    (reference 3.7; needs a model fitted with --spike-history) instead of independent Poisson draws.

    conditions_source: where given conditions come from (e.g. "trial_reach_angle of the test trials of
    s.nwb"), recorded in the provenance instead of "given". Everything is held in memory (refused when it
    would not fit); `sample_to_nwb` streams to a file instead.
    """
    n, batch_size = _check_options(n, batch_size)
    _check_memory(model, n, lengths)
    plan = _plan(model, n, seed=seed, sampler=sampler, steps=steps, lengths=lengths, conditions=conditions,
                 batch_size=batch_size, conditions_source=conditions_source, spike_history=spike_history)
    n_units = int(model.data["n_units"])
    n_latent = int(model.config["autoencoder"]["latent"])
    counts = np.zeros((n, plan.max_len, n_units), np.float32)
    rates = np.zeros_like(counts)
    latents = np.zeros((n, plan.max_len, n_latent), np.float32)
    observed = _LatentRange(n_latent)
    for batch in _batches(model, plan, observed, progress):
        counts[batch.idx], rates[batch.idx], latents[batch.idx] = batch.counts, batch.rates, batch.latents
    meta = _metadata(model, plan, observed, float(counts.sum()))
    ds = meta.assign(counts=(("trial", "time", "unit"), counts))
    ds = ds[["counts", *[name for name in meta.data_vars]]]  # the variable order of make_session_dataset
    validate_session_dataset(ds)
    ds["rates"] = (("trial", "time", "unit"), rates)
    ds["latents"] = (("trial", "time", "latent"), latents)
    if "behavior_dim" in meta.coords:
        ds["behavior"] = (("trial", "time", "behavior_dim"), plan.cond_values)
    from nwb_ldns.data.attributes import describe_variables

    return describe_variables(ds, source=f"generated by LDNS (nwb-ldns {__version__}), seed {seed}")


def spill_samples(model: "LDNSModel", plan: _Plan, folder: Path, progress: bool = True) -> "SpillSource":
    """Generate the planned trials batch by batch into spill files in `folder`; the writer's source for them."""
    from nwb_ldns.export.spill import Spill, SpillSource

    n_latent = int(model.config["autoencoder"]["latent"])
    series = {"rates": int(model.data["n_units"]), "latents": n_latent}
    is_trace = bool(trace_dim(model.data["condition"]))
    if is_trace:
        series["behavior"] = int(plan.cond_values.shape[2])
    spill = Spill(folder, plan.mask, int(model.data["n_units"]), series)
    try:
        observed = _LatentRange(n_latent)
        for batch in _batches(model, plan, observed, progress):
            arrays = {"rates": batch.rates, "latents": batch.latents}
            if is_trace:
                arrays["behavior"] = plan.cond_values[batch.idx]
            spill.add(batch.idx, batch.counts, arrays)
        meta = _metadata(model, plan, observed, float(spill.unit_totals.sum()))
    except BaseException:
        spill.close()
        raise
    return SpillSource(meta, spill)


@dataclass
class SampleSummary:
    """What `sample_to_nwb` wrote."""

    path: Path
    n_trials: int
    n_bins: int
    n_units: int
    n_spikes: int


def sample_to_nwb(model: "LDNSModel", n: int, out: str | Path, *, seed: int = 0, sampler: str = "ddpm",
                  steps: int | None = None, lengths: int | Sequence[int] | None = None,
                  conditions: Sequence[float] | Sequence[str] | str | None = None, batch_size: int = 512,
                  progress: bool = True, conditions_source: str | None = None, spike_history: bool = False,
                  backend: str = "hdf5", compression: str | None = None, overwrite: bool = False,
                  inputs: Sequence[str | Path] = (), spike_placement: str = "even") -> SampleSummary:
    """Generate `n` trials and write them to the NWB file `out`, streaming: never all in memory at once.

    Batches are spilled to temporary files beside `out` (inside its `.partial` folder) and the file is written
    from them unit by unit and trial block by trial block, so memory stays at about one batch whatever `n` is;
    the disk needs room for the spill and the file (checked first). Same options and the same file as
    `write_synthetic(generate(...))` for a given seed and batch size. Progress: a bar over the generated trials
    and one over the units written. spike_placement: "even" or "uniform" (seeded with `seed`; see write_synthetic).
    """
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.fileio import check_output

    from nwb_ldns.export.spikes import check_placement

    n, batch_size = _check_options(n, batch_size)
    check_placement(spike_placement)
    out = Path(out)
    check_output(out, kind="nwb", overwrite=overwrite, inputs=inputs)
    _check_stream(model, n, lengths, batch_size, out.parent, out)
    plan = _plan(model, n, seed=seed, sampler=sampler, steps=steps, lengths=lengths, conditions=conditions,
                 batch_size=batch_size, conditions_source=conditions_source, spike_history=spike_history)
    spikes: list[int] = []

    def produce(staging: Path) -> "SpillSource":
        source = spill_samples(model, plan, staging, progress)
        spikes.append(int(source.unit_totals.sum()))
        return source

    path = write_synthetic(produce, out, backend=backend, compression=compression, overwrite=overwrite,
                           inputs=inputs, progress=progress, spike_placement=spike_placement)
    return SampleSummary(path, n, plan.max_len, int(model.data["n_units"]), spikes[0])


def _conditioning_text(model: "LDNSModel", values: np.ndarray | None, condition_source: str, length_source: str,
                       spike_history: bool = False) -> str:
    parts: dict[str, Any] = {}
    if spike_history:  # how the counts were drawn from the rates (reference 3.7)
        section = model.config["spike_history"]
        parts["spike_history"] = {"model": "per-neuron Poisson GLM on own history and log rate",
                                  "history_bins": int(section["history"]), "max_spikes": int(section["max_spikes"]),
                                  "weights": "spike_history.safetensors"}
    spec = model.data.get("condition") or {}
    if values is not None and spec.get("kind") == "category":
        parts["category"] = {"variable": spec["variable"], "kind": "category", "encoding": "one_hot",
                             "classes": list(spec["classes"]), "source": condition_source}
        if condition_source == "label":
            parts["category"]["label"] = str(values[0])
    elif values is not None and spec.get("kind") == "trace":
        parts["trace"] = {"variable": spec["variable"], "encoding": "extra_channels", "dims": spec.get("dims"),
                          "source": condition_source, "written_to": "processing/behavior/conditioning_behavior"}
    elif values is not None:
        parts["angle"] = {"variable": model.data["condition"]["variable"], "encoding": "cos_sin",
                          "source": condition_source}
    if model.data["length_mask"]:
        parts["length_mask"] = {"source": length_source, "window": int(model.data["n_bins"])}
    return json.dumps(parts) if parts else ""


def provenance_attrs(model: "LDNSModel", *, seed: int, sampler: str, steps: int, conditioning: str) -> dict[str, Any]:
    """The attrs `write_synthetic` turns into the ndx-ldns provenance (docs/CONTRACT.md)."""
    attrs: dict[str, Any] = {
        "model_name": "LDNS",
        "model_version": __version__,
        "model_config": json.dumps(model.description()),
        "weights_sha256": model.weights_sha256,
        "seed": seed,
        "sampler": sampler,
        "sampler_steps": steps,
        "conditioning": conditioning,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_split": "train",
    }
    attrs.update(model.data.get("source", {}))
    attrs["bin_width"] = float(model.data["bin_width"])
    return attrs
