"""evaluate(): every generated set against the real TRAINING trials, with bootstrap spread and noise floor.

This is what `nwb-ldns evaluate` prints and writes as JSON; the report module draws figures from the same
datasets. The result is plain JSON-able data (numbers, strings, lists).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import xarray as xr

from nwb_ldns import __version__
from nwb_ldns.errors import OptionError, SessionContentError
from nwb_ldns.metrics.agreement import AGREEMENT_KEYS, agreement_between, agreement_statistics
from nwb_ldns.metrics.bootstrap import protocol_table
from nwb_ldns.metrics.conditions import ANGLE_VARIABLE, condition_psth, condition_psth_lines
from nwb_ldns.metrics.decoding import RidgeDecoder, circular_error, decoded_angles, r2_score
from nwb_ldns.metrics.memorisation import memorisation_check
from nwb_ldns.metrics.smoothing import smooth_counts
from nwb_ldns.metrics.verdict import display_name, equal_size_verdict, is_baseline, pool_trials, set_label

DECODER_SMOOTHING_S = 0.03  # the reference smooths spikes with a 30 ms Gaussian for its monkey analyses


def training_trials(real: xr.Dataset, split: str = "train") -> xr.Dataset:
    """The real trials of one split (the models are fitted on, and compared with, the training split)."""
    if "split" not in real or "counts" not in real:
        raise SessionContentError("real data lack 'counts'/'split'; load them with nwb_ldns.data.load_session")
    chosen = real.isel(trial=np.flatnonzero(real["split"].values == split))
    if chosen.sizes["trial"] == 0:
        found = sorted(set(real["split"].values.tolist()))
        raise SessionContentError(f"the real session has no '{split}' trials (splits found: {found}); "
                                  "give the trials table a 'split' column or load without one for a seeded split")
    return chosen


def _mask(ds: xr.Dataset) -> np.ndarray | None:
    return ds["mask"].values if "mask" in ds else None


def _check_compatible(real: xr.Dataset, ds: xr.Dataset, name: str) -> list[str]:
    notes = []
    if ds.sizes.get("unit") != real.sizes["unit"]:
        raise SessionContentError(f"{name} has {ds.sizes.get('unit')} units but the real session has "
                                  f"{real.sizes['unit']}; evaluate samples of a model trained on this session")
    bw_real, bw = float(real.attrs["bin_width"]), float(ds.attrs.get("bin_width", np.nan))
    if not np.isclose(bw_real, bw, rtol=1e-6, atol=0.0):
        raise SessionContentError(f"{name} has bin width {bw} s but the real session {bw_real} s; load the real "
                                  f"file with --bin-width {bw}")
    if not np.array_equal(ds["unit"].values, real["unit"].values):
        notes.append(f"{name}: unit ids differ from the real session's; units are matched by position")
    return notes


def fit_behaviour_decoder(train: xr.Dataset) -> tuple[RidgeDecoder, float] | None:
    """(decoder, smoothing in bins): the reference's ridge decoder from 30 ms-smoothed real training spikes to
    behaviour (alpha 1e-6, bins as samples); None when the session has no behaviour. evaluate and the report both
    use this one fit."""
    if "behavior" not in train:
        return None
    std_bins = DECODER_SMOOTHING_S / float(train.attrs["bin_width"])
    decoder = RidgeDecoder.fit(smooth_counts(train["counts"].values, std_bins, _mask(train)),
                               train["behavior"].values, mask=_mask(train))
    return decoder, std_bins


def decode_behaviour(decoder: RidgeDecoder, std_bins: float, ds: xr.Dataset) -> np.ndarray:
    """float64[trial, time, dim] behaviour decoded from a set's spikes."""
    features = smooth_counts(ds["counts"].values, std_bins, _mask(ds))
    return decoder.predict(features.reshape(-1, features.shape[2])).reshape(*features.shape[:2], -1)


def _decoding_r2(decoder: RidgeDecoder, ds: xr.Dataset, std_bins: float) -> float | None:
    if "behavior" not in ds or ds["behavior"].shape[2] != decoder.coef.shape[1]:
        return None
    mask = _mask(ds)
    keep = np.ones((ds.sizes["trial"], ds.sizes["time"]), bool) if mask is None else mask
    return r2_score(ds["behavior"].values[keep], decode_behaviour(decoder, std_bins, ds)[keep])


def _angle_error(decoder: RidgeDecoder, ds: xr.Dataset, std_bins: float) -> float | None:
    """Median circular error (radians) between each trial's reach angle (requested, or true for real trials) and
    the angle of the velocity decoded from its spikes; None without an angle or a 2-d velocity decoder."""
    if ANGLE_VARIABLE not in ds or decoder.coef.shape[1] != 2 or ds.sizes["trial"] == 0:
        return None
    from nwb_ldns.data.nlb import MC_MAZE

    if ds.sizes["time"] <= MC_MAZE.angle_bin:
        return None
    velocity = decode_behaviour(decoder, std_bins, ds)
    errors = circular_error(decoded_angles(velocity, MC_MAZE.angle_bin), ds[ANGLE_VARIABLE].values)
    errors = errors[np.isfinite(errors)]
    return float(np.median(errors)) if errors.size else None


def behaviour_decoding(train: xr.Dataset, heldout: xr.Dataset, generated: list[xr.Dataset]) -> dict | None:
    """Ridge decoder (alpha 1e-6, bins as samples) from 30 ms-smoothed real training spikes to behaviour.

    R^2 on held-out real trials (how well behaviour can be read out at all) and, for generated sets that carry
    behaviour (e.g. velocity-conditioned samples), R^2 of their requested behaviour decoded from their spikes.
    None when the real session has no behaviour.
    """
    fitted = fit_behaviour_decoder(train)
    if fitted is None:
        return None
    decoder, std_bins = fitted
    return {
        "features": f"counts smoothed with a {DECODER_SMOOTHING_S * 1e3:g} ms Gaussian",
        "r2_heldout_real": _decoding_r2(decoder, heldout, std_bins) if heldout.sizes["trial"] else None,
        "r2_generated": [_decoding_r2(decoder, ds, std_bins) for ds in generated],
        "angle_error_heldout_real": _angle_error(decoder, heldout, std_bins) if heldout.sizes["trial"] else None,
        "angle_error_generated": [_angle_error(decoder, ds, std_bins) for ds in generated],
    }


def _agreement_floor(reference: xr.Dataset, bin_width: float, seed: int, maxval: int) -> dict[str, float] | None:
    """Pearson agreement of one random half of the real trials with the other (what sampling noise allows)."""
    n = reference.sizes["trial"]
    if n < 4:
        return None
    order = np.random.default_rng(seed).permutation(n)
    a, b = reference.isel(trial=np.sort(order[: n // 2])), reference.isel(trial=np.sort(order[n // 2:]))
    return agreement_between(_agreement_statistics(a, bin_width), _agreement_statistics(b, bin_width), maxval)


def _agreement_statistics(ds: xr.Dataset, bin_width: float) -> dict[str, np.ndarray]:
    return agreement_statistics(ds["counts"].values, bin_width, _mask(ds))


def evaluate(real: xr.Dataset, generated: list[xr.Dataset], *, names: list[str] | None = None,
             n_resamples: int = 5, seed: int = 42, maxval: int | None = None, split: str = "train",
             memorisation: bool = True, baselines: list[str] | None = None) -> dict:
    """Headline statistics (bootstrap mean/std and full-set values) of each generated set vs the real trials of
    `split` (the training trials by default, as the reference; "test" compares with held-out trials).

    Also reports the real-vs-real noise floor, the Pearson agreement of per-neuron statistics the LDNS authors
    report (with its real-vs-real value: one half of the `split` trials against the other), per set a
    memorisation check (nearest training trial, against held-out real trials), behaviour-decoding R^2
    when the real session has behaviour, and the per-condition PSTH correlation (nwb_ldns.metrics.conditions)
    of the sets that share a condition with it. `verdict` judges every set on equal-size subsets
    (nwb_ldns.metrics.verdict); `baselines` names the generated sets that are baselines, besides those whose
    attrs model_name is not "LDNS".
    """
    if not generated:
        raise SessionContentError("no generated sets to evaluate; pass at least one SYNTH.nwb")
    names = list(names) if names else [str(ds.attrs.get("model_name") or f"set{i}") for i, ds in enumerate(generated)]
    if len(set(names)) < len(names):  # unique names: the verdict keys wins/losses by name
        names = [f"{name} #{i}" for i, name in enumerate(names)]
    if len(names) != len(generated):
        raise SessionContentError(f"{len(names)} names for {len(generated)} generated sets")
    unknown = sorted(set(baselines or []) - set(names))
    if unknown:
        raise OptionError(f"baselines {unknown} are not among the generated sets {names}; name generated sets")
    labels = [set_label(ds.attrs, name) for name, ds in zip(names, generated)]
    flags = [name in (baselines or []) or is_baseline(ds.attrs) for name, ds in zip(names, generated)]
    reference = training_trials(real, split)
    notes: list[str] = []
    for name, ds in zip(names, generated):
        notes += _check_compatible(reference, ds, name)
    bin_width = float(reference.attrs["bin_width"])
    table = protocol_table(
        reference["counts"].values, [ds["counts"].values for ds in generated], bin_width,
        real_mask=_mask(reference), model_masks=[_mask(ds) for ds in generated],
        n_resamples=n_resamples, seed=seed, maxval=maxval,
    )
    train = training_trials(real, "train") if split != "train" else reference
    heldout = real.isel(trial=np.flatnonzero(~np.isin(real["split"].values, ["train", "generated"])))
    reference_stats = _agreement_statistics(reference, bin_width)  # once, shared by every generated set
    results = []
    for name, label, flag, ds, stats in zip(names, labels, flags, generated, table["models"]):
        entry = {"name": name, "label": label, "baseline": flag, "n_trials": int(ds.sizes["trial"]),
                 "n_bins": int(ds.sizes["time"]), "model_name": str(ds.attrs.get("model_name", "")), **stats,
                 "agreement": agreement_between(reference_stats, _agreement_statistics(ds, bin_width),
                                                table["maxval"])}
        if memorisation:
            check = memorisation_check(
                train["counts"].values, ds["counts"].values,
                heldout["counts"].values if heldout.sizes["trial"] else None,
                train_mask=_mask(train), generated_mask=_mask(ds),
                heldout_mask=_mask(heldout) if heldout.sizes["trial"] else None)
            entry["memorisation"] = {k: v for k, v in check.items() if k not in ("generated", "heldout")}
        warned = _sample_warnings(ds)
        if warned:
            entry["sample_warnings"] = warned
            notes += [f"{name}: sampling warned: {text}" for text in warned]
        results.append(entry)
    pool, pool_name = pool_trials(real, split)
    verdict = equal_size_verdict(reference, pool, pool_name, generated, names, labels, flags,
                                 maxval=table["maxval"], n_resamples=n_resamples, seed=seed)
    if verdict is None:
        notes.append("no equal-size verdict: fewer than 2 trials per subset (reference, other real trials or a "
                     "generated set too small)")
    elif verdict["fallback"]:
        notes.append(f"verdict floor from disjoint halves of the '{split}' trials: the session has no other real "
                     "trials to draw an equal-size floor from")
    return {
        "real": {
            "source_path": str(real.attrs.get("source_path", "")),
            "source_identifier": str(real.attrs.get("source_identifier", "")),
            "split": split,
            "n_trials": int(reference.sizes["trial"]),
            "n_heldout_trials": int(heldout.sizes["trial"]),
            "n_units": int(train.sizes["unit"]),
            "n_bins": int(train.sizes["time"]),
            "bin_width": bin_width,
        },
        "settings": {"n_resamples": n_resamples, "seed": seed, "maxval": table["maxval"],
                     "maxval_given": maxval is not None},
        "keys": table["keys"],
        "noise_floor": table["noise_floor"],
        "agreement_floor": _agreement_floor(reference, bin_width, seed, table["maxval"]),
        "generated": results,
        "verdict": verdict,
        "decoding": behaviour_decoding(train, heldout, generated),
        "condition_psth": condition_psth(train, heldout, generated),
        "notes": notes,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nwb_ldns_version": __version__,
    }


def _sample_warnings(ds: xr.Dataset) -> list[str]:
    """The warnings `nwb_ldns.sample.generate` stored in attrs "sample_warnings" (JSON list text)."""
    text = ds.attrs.get("sample_warnings") or ""
    try:
        values = json.loads(text) if text else []
    except (TypeError, ValueError):
        return [str(text)]
    return [str(v) for v in values] if isinstance(values, list) else [str(values)]


def json_ready(obj):
    """The result with NaN/inf floats as null (strict JSON) and numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


LABELS = {
    "kl_pop_count": "KL pop. count",
    "rmse_corr": "RMSE corr (ref.)",
    "rmse_corr_pairs": "RMSE corr (pairs)",
    "rmse_mean_isi": "RMSE mean ISI (s)",
    "rmse_std_isi": "RMSE std ISI (s)",
    "rmse_rate_hz": "RMSE rate (Hz)",
}


def _cell(mean: float, std: float | None) -> str:
    if mean is None or not np.isfinite(mean):
        return "nan"
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def table_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the metric table: the noise floor first, then every generated set."""
    keys = result["keys"]
    header = ["set", "trials"] + [LABELS.get(k, k) for k in keys]
    floor = result["noise_floor"]
    rows = [["real vs real (noise floor)", str(result["real"]["n_trials"] // 2)]
            + [_cell(floor["mean"][k], floor["std"][k]) for k in keys]]
    for entry in result["generated"]:
        rows.append([display_name(entry), str(entry["n_trials"])]
                    + [_cell(entry["mean"][k], entry["std"][k]) for k in keys])
    return header, rows


def decoding_lines(result: dict) -> list[str]:
    """One line per behaviour-decoding R^2 (none when the real session has no behaviour), then the per-condition
    PSTH correlation lines (nwb_ldns.metrics.conditions; none when no set has a condition)."""
    psth_lines = condition_psth_lines(result, [display_name(entry) for entry in result["generated"]])
    dec = result.get("decoding")
    if not dec:
        return psth_lines
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"behaviour decoding R^2 ({dec['features']}, ridge alpha 1e-6): "
             f"held-out real {fmt(dec['r2_heldout_real'])}"]
    for entry, r2 in zip(result["generated"], dec["r2_generated"]):
        if r2 is not None:
            lines.append(f"  {display_name(entry)}: {fmt(r2)} (its requested behaviour decoded from its spikes)")
    errors = dec.get("angle_error_generated") or []
    if dec.get("angle_error_heldout_real") is not None or any(e is not None for e in errors):
        deg = lambda v: "n/a" if v is None else f"{np.degrees(v):.1f} deg"  # noqa: E731
        lines.append(f"reach angle decoded from spikes, median circular error vs the trial's angle: held-out real "
                     f"{deg(dec.get('angle_error_heldout_real'))}")
        for entry, error in zip(result["generated"], errors):
            if error is not None:
                lines.append(f"  {display_name(entry)}: {deg(error)} (vs its requested angle; chance is 90 deg)")
    return lines + psth_lines


def format_table(result: dict) -> str:
    """Plain-text table for the terminal (mean ± std over bootstrap resamples)."""
    header, rows = table_rows(result)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
    s = result["settings"]
    which = "training" if result["real"]["split"] == "train" else f"held-out '{result['real']['split']}'"
    out.append(f"mean ± std over {s['n_resamples']} bootstrap resamples (seed {s['seed']}) vs "
               f"{result['real']['n_trials']} real {which} trials; KDE grid 0..{s['maxval']}")
    return "\n".join(out)


AGREEMENT_LABELS = {"r_mean_isi": "mean ISI", "r_std_isi": "std ISI", "r_corr_matrix": "corr. matrix",
                    "r_corr_pairs": "corr. pairs", "r_pop_count_density": "pop. count density"}


def agreement_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the Pearson agreement table: the real half-vs-half row first (when there is one)."""
    header = ["Pearson r vs real"] + [AGREEMENT_LABELS[k] for k in AGREEMENT_KEYS]
    rows = []
    if result.get("agreement_floor"):
        rows.append(["real half vs half"] + [f"{result['agreement_floor'][k]:.4f}" for k in AGREEMENT_KEYS])
    rows += [[display_name(e)] + [f"{e['agreement'][k]:.4f}" for k in AGREEMENT_KEYS] for e in result["generated"]]
    return header, rows


def agreement_lines(result: dict) -> list[str]:
    """The Pearson agreement table (the LDNS authors' Lorenz check) as plain-text lines."""
    header, rows = agreement_rows(result)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
