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
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from nwb_ldns import __version__
from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.errors import GeneratedRangeWarning, OptionError
from nwb_ldns.training.conditions import condition_tensor, sample_categories, trace_channels, trace_dim
from nwb_ldns.models.spike_history import sample_with_history
from nwb_ldns.training.latents import centre_offsets, length_mask_channel, unstandardise

if TYPE_CHECKING:
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


def _check_memory(model: "LDNSModel", n: int, lengths: int | Sequence[int] | None) -> None:
    """Refuse before allocation an n whose counts, rates, latents and spike times would not fit in memory."""
    from nwb_ldns.limits import available_memory, check_fits

    n_units = int(model.data["n_units"])
    n_latent = int(model.config["autoencoder"]["latent"])
    mean_count = float(model.latent_stats.get("train_mean_count_per_bin") or 1.0)
    max_len = _longest(model, lengths)
    # per (trial, bin): float32 counts, rates and a copy while writing, the spike times (float64 + sort scratch)
    # of the expected counts, the float32 latents and the mask
    per_trial = max_len * (n_units * (12 + 16 * mean_count) + 4 * n_latent + 2)
    available = available_memory()
    fitting = int(available // per_trial) if available else None
    if fitting == 0:
        fix = f"give a shorter --length (now {max_len:,} bins)"
    else:
        fix = (f"lower --n{f' (about {fitting:,} fit now)' if fitting else ''} and generate the rest in further "
               "runs with other --seed values")
    check_fits(float(n) * per_trial, f"sampling {n:,} trials x {max_len:,} bins x {n_units:,} units", fix)


def generate(model: "LDNSModel", n: int, *, seed: int = 0, sampler: str = "ddpm", steps: int | None = None,
             lengths: int | Sequence[int] | None = None,
             conditions: Sequence[float] | Sequence[str] | str | None = None, batch_size: int = 512,
             progress: bool = True, conditions_source: str | None = None, spike_history: bool = False) -> xr.Dataset:
    """`n` generated trials (counts, rates, latents, mask) with provenance attrs; see the module docstring.

    spike_history: draw the counts bin by bin from the model's spike-history GLM on top of the generated rates
    (reference 3.7; needs a model fitted with --spike-history) instead of independent Poisson draws.

    conditions_source: where given conditions come from (e.g. "trial_reach_angle of the test trials of
    s.nwb"), recorded in the provenance instead of "given".
    """
    from nwb_ldns.models import DDPMSchedule, sample_latents
    from nwb_ldns.models.diffusion import DEFAULT_DDIM_STEPS

    _check_count("the number of trials to sample (n)", n)
    _check_count("batch_size", batch_size)
    n, batch_size = int(n), int(batch_size)
    _check_memory(model, n, lengths)
    if spike_history and getattr(model, "spike_history", None) is None:
        raise OptionError("this model has no spike-history GLM; fit it with `nwb-ldns fit ... --spike-history` "
                          "(or sample without --spike-history)")
    gen = torch.Generator().manual_seed(int(seed))
    trial_lengths, length_source = _lengths(model, n, lengths, gen)
    cond_values, condition_source = _conditions(model, n, conditions, gen)  # angles or class labels
    if conditions_source and conditions is not None:
        condition_source = conditions_source
    cfg = model.config["diffusion"]
    schedule = DDPMSchedule(cfg["num_steps"], cfg["beta_start"], cfg["beta_end"])
    n_latent = int(model.config["autoencoder"]["latent"])
    window = int(model.data["n_bins"])
    max_len = int(trial_lengths.max())
    n_units = int(model.data["n_units"])
    counts = np.zeros((n, max_len, n_units), np.float32)
    rates = np.zeros_like(counts)
    latents = np.zeros((n, max_len, n_latent), np.float32)
    used_steps = schedule.num_steps if sampler == "ddpm" else None
    observed = _LatentRange(n_latent)

    # batches of trials with the same sampling window (variable-length models: always the training window)
    if model.data["length_mask"]:
        groups = {window: np.arange(n)}
    else:
        groups = {int(L): np.flatnonzero(trial_lengths == L) for L in np.unique(trial_lengths)}
    for sample_len, members in groups.items():
        for start in range(0, members.size, batch_size):
            idx = members[start:start + batch_size]
            lens = torch.from_numpy(trial_lengths[idx])
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
            zs = sample_latents(model.denoiser, schedule, (idx.size, sample_len, n_latent), sampler=sampler,
                                steps=steps, generator=gen, extra=extra, cond=cond, progress=progress,
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
            if spike_history:
                drawn = sample_with_history(model.spike_history, lam.numpy(), gen)
                counts[idx] = drawn * valid.numpy()
            else:
                counts[idx] = torch.poisson(lam, generator=gen).numpy()
            rates[idx] = lam.numpy()
            latents[idx] = (z * valid).numpy()
    if sampler == "ddim":
        used_steps = len(schedule.ddim_timesteps(DEFAULT_DDIM_STEPS if steps is None else int(steps)))

    mask = np.arange(max_len)[None, :] < trial_lengths[:, None]
    mean_count = float(counts.sum() / max(int(mask.sum()) * n_units, 1))
    messages = range_warnings(model.latent_stats, observed.abs_max, observed.std(), mean_count)
    for message in messages:
        warnings.warn(message, GeneratedRangeWarning, stacklevel=3)
    attrs = provenance_attrs(model, seed=int(seed), sampler=sampler, steps=int(used_steps),
                             conditioning=_conditioning_text(model, cond_values, condition_source, length_source,
                                                             spike_history))
    attrs["sample_warnings"] = json.dumps(messages)
    extra_trial = {}
    is_trace = bool(trace_dim(model.data["condition"]))
    if cond_values is not None and not is_trace:  # the source's trial column (labels as str for a category)
        extra_trial[model.data["condition"]["variable"]] = cond_values
    unit_vars = {k: np.asarray(v) for k, v in model.data.get("unit_vars", {}).items()}
    ds = make_session_dataset(counts, model.data["bin_width"], mask=mask, split=np.full(n, "generated"),
                              unit_ids=np.asarray(model.data["unit_ids"]), time_offset=model.data["time_offset"],
                              extra_trial_vars=extra_trial, extra_unit_vars=unit_vars, attrs=attrs)
    ds["rates"] = (("trial", "time", "unit"), rates)
    ds["latents"] = (("trial", "time", "latent"), latents)
    ds = ds.assign_coords(latent=np.arange(n_latent))
    if is_trace:  # the requested behaviour of every generated trial, in the session's units
        ds["behavior"] = (("trial", "time", "behavior_dim"), cond_values)
        ds = ds.assign_coords(behavior_dim=np.asarray(model.data["condition"].get("dims") or
                                                      np.arange(cond_values.shape[2]).astype(str)))
        ds.attrs["behavior_series"] = model.data.get("session_attrs", {}).get("behavior_series", "")
        ds.attrs["behavior_lag"] = float(model.data.get("session_attrs", {}).get("behavior_lag", 0.0))
    return ds


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
