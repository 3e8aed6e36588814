"""Does LDNS beat the simple baselines on a session? Fit, sample, fit PSTH-Poisson and LDS, evaluate all.

For one session and reader options: fit LDNS under a stated budget (a preset and `--set` overrides), sample as
many trials as the training split, fit and sample the PSTH-Poisson and LDS baselines, and evaluate every set
against the held-out test trials and against the train trials, with the real-vs-real noise floor computed on
real sets of the same size as the compared sets (held-out trials vs train trials). Prints the table with the wall
times and writes it as JSON. This is the benchmark of the "Real recordings" issue; docs/results.md has its runs.

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/real_quality.py SESSION.nwb --out runs/q \
        --trials-table intervals/recognition_table --align start_time --window 0 1.5 --bin-width 0.02 \
        [--preset auto] [--set diffusion.epochs=100 ...] [--sampler ddim --steps 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

COLUMNS = ("kl_pop_count", "rmse_corr", "rmse_mean_isi", "rmse_std_isi")
HEADER = ("KL pop. count", "corr RMSE", "mean-ISI RMSE (s)", "std-ISI RMSE (s)")


def _reader_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"bin_width": args.bin_width}
    if args.trials_table:
        opts["trials_table"] = args.trials_table
    if args.align:
        opts["align"] = args.align
    if args.window:
        opts["window"] = tuple(args.window)
    if args.window_length:
        opts["window_length"] = args.window_length
    return opts


def bootstrap_statistics(counts: np.ndarray, reference: np.ndarray, k: int, bin_width: float, maxval: int,
                         n_draws: int, seed: int) -> dict[str, tuple[float, float]]:
    """Mean ± std over n_draws bootstrap draws of k trials of `counts`, each compared with the full reference."""
    from nwb_ldns.metrics.headline import compare, summarise

    (ref_stats,) = summarise(reference, bin_width)
    rng = np.random.RandomState(seed)
    draws = [compare(summarise(counts[rng.choice(len(counts), k, replace=True)], bin_width)[0], ref_stats, maxval)
             for _ in range(n_draws)]
    return {key: (float(np.mean([d[key] for d in draws])), float(np.std([d[key] for d in draws])))
            for key in COLUMNS}


def compare_sets(real, sets: Mapping[str, np.ndarray], reference_split: str, n_draws: int, seed: int
                 ) -> dict[str, Any]:
    """Floor and every set against one reference split, all at the same set size k."""
    from nwb_ldns.metrics.population import per_trial_histograms

    split = real["split"].values
    others = ("train", "val") if reference_split == "test" else ("val", "test")
    n_pool = int(np.isin(split, others).sum())
    k = min(n_pool, min(len(c) for c in sets.values()))
    maxval = int(max(per_trial_histograms(real["counts"].values).shape[1] - 1,
                     *(per_trial_histograms(c).shape[1] - 1 for c in sets.values())))
    bin_width = float(real.attrs["bin_width"])
    reference = real["counts"].values[split == reference_split]
    return {
        "reference": reference_split, "n_reference": int((split == reference_split).sum()), "k": int(k),
        "floor_pool": "+".join(others), "maxval": maxval, "n_draws": n_draws,
        # the floor: k real trials of the other splits, the size of the compared sets, vs the same reference (a
        # floor from half-size sets would sit above models compared at full size)
        "floor": bootstrap_statistics(real["counts"].values[np.isin(split, others)], reference, k, bin_width, maxval,
                                      n_draws, seed),
        "sets": {name: bootstrap_statistics(counts, reference, k, bin_width, maxval, n_draws, seed)
                 for name, counts in sets.items()},
    }


def run_benchmark(session_path: str | Path, out_dir: str | Path, *, reader: Mapping[str, Any] | None = None,
                  preset: str | None = None, overrides: Mapping[str, Any] | None = None, sampler: str = "ddpm",
                  steps: int | None = None, seed: int = 0, n_draws: int = 5, progress: bool = True,
                  condition: str | None = None) -> dict[str, Any]:
    """Fit LDNS and both baselines on the session's train trials, sample, evaluate; return the result dict.

    condition: a categorical trial column (e.g. "condition"); LDNS is then conditioned on it and sampled with the
    labels of the train trials, and the PSTH baseline gets one PSTH per label.
    """
    import torch

    from nwb_ldns.baselines import fit_baseline
    from nwb_ldns.data import load_session
    from nwb_ldns.training.fit import fit

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    session = load_session(session_path, **dict(reader or {}))
    n_train = int((session["split"].values == "train").sum())
    times: dict[str, dict[str, float]] = {}
    sets: dict[str, np.ndarray] = {}

    start = time.perf_counter()
    variable = None if condition in (None, "none") else (condition if condition.startswith("trial_")
                                                           else f"trial_{condition}")
    if variable is not None:
        overrides = {**dict(overrides or {}), "diffusion.condition": variable}
    model = fit(session, out_dir / "model.ldns", preset=preset, overrides=overrides, progress=progress,
                overwrite=True)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    labels = None
    if variable is not None:
        labels = [str(v) for v in session[variable].values[session["split"].values == "train"]]
    generated = model.sample(n_train, seed=seed, sampler=sampler, steps=steps, progress=progress,
                             conditions=labels)
    label = (f"LDNS {model.config['preset']} {sampler}" + (f"-{steps}" if steps else "")
             + (f", conditioned on {condition}" if variable else ""))
    times[label] = {"fit_s": fit_s, "sample_s": time.perf_counter() - start}
    sets[label] = generated["counts"].values
    for name, title in (("psth", "PSTH-Poisson"), ("lds", "LDS")):
        start = time.perf_counter()
        baseline = fit_baseline(name, session, **({"condition": variable or "auto"} if name == "psth" else {}))
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        sets[title] = baseline.sample(n_train, seed=seed)["counts"].values
        times[title] = {"fit_s": fit_s, "sample_s": time.perf_counter() - start}

    comparisons = [compare_sets(session, sets, split, n_draws, seed) for split in ("test", "train")]
    return {
        "session": str(session_path), "reader": {k: list(v) if isinstance(v, tuple) else v
                                                 for k, v in dict(reader or {}).items()},
        "shape": {"trials": int(session.sizes["trial"]), "bins": int(session.sizes["time"]),
                  "units": int(session.sizes["unit"]), "n_train": n_train,
                  "n_test": int((session["split"].values == "test").sum())},
        "preset": model.config["preset"], "condition": variable, "overrides": {k: str(v) for k, v in dict(overrides or {}).items()},
        "config": model.config, "sampler": sampler, "steps": steps, "seed": seed,
        "torch_threads": torch.get_num_threads(), "times": times, "comparisons": comparisons,
    }


def _cell(value: tuple[float, float]) -> str:
    mean, std = value
    return f"{mean:.4g} ± {std:.2g}" if np.isfinite(mean) else "inf"


def format_result(result: Mapping[str, Any]) -> str:
    """Markdown tables (one per reference split) with the wall times, as docs/results.md shows them."""
    lines = []
    shape = result["shape"]
    lines.append(f"{result['session']}: {shape['trials']} trials x {shape['bins']} bins x {shape['units']} units "
                 f"({shape['n_train']} train / {shape['n_test']} test); reader {json.dumps(result['reader'])}")
    for comp in result["comparisons"]:
        lines.append("")
        lines.append(f"vs the {comp['n_reference']} {comp['reference']} trials, every set as {comp['n_draws']} "
                     f"bootstrap draws of k={comp['k']} trials (floor: k real {comp['floor_pool']} trials)")
        lines.append("| set | " + " | ".join(HEADER) + " | fit s | sample s |")
        lines.append("|---" * (len(HEADER) + 3) + "|")
        lines.append(f"| real {comp['floor_pool']} trials (the floor) | "
                     + " | ".join(_cell(comp["floor"][k]) for k in COLUMNS) + " | - | - |")
        for name, stats in comp["sets"].items():
            t = result["times"][name]
            lines.append(f"| {name} | " + " | ".join(_cell(stats[k]) for k in COLUMNS)
                         + f" | {t['fit_s']:.1f} | {t['sample_s']:.1f} |")
    return "\n".join(lines)


def wins(result: Mapping[str, Any], reference: str = "test", keys: Sequence[str] = ("kl_pop_count", "rmse_corr")
         ) -> dict[str, dict[str, bool]]:
    """Whether the LDNS row is lower than each baseline by more than both bootstrap stds, per key."""
    comp = next(c for c in result["comparisons"] if c["reference"] == reference)
    ldns = next(name for name in comp["sets"] if name.startswith("LDNS"))
    out: dict[str, dict[str, bool]] = {}
    for name, stats in comp["sets"].items():
        if name == ldns:
            continue
        out[name] = {k: comp["sets"][ldns][k][0] + comp["sets"][ldns][k][1] < stats[k][0] - stats[k][1]
                     for k in keys}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("session", help="NWB session")
    parser.add_argument("--out", required=True, help="folder for the model directory and result JSON")
    parser.add_argument("--trials-table", default=None)
    parser.add_argument("--align", default=None)
    parser.add_argument("--window", nargs=2, type=float, default=None)
    parser.add_argument("--window-length", type=float, default=None)
    parser.add_argument("--bin-width", type=float, default=0.02)
    parser.add_argument("--preset", default=None, help="LDNS preset (default: fit's default)")
    parser.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    parser.add_argument("--sampler", default="ddpm", choices=("ddim", "ddpm"),
                        help="default: ddpm over all diffusion steps, as `nwb-ldns sample`")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: all for ddpm, 50 for ddim)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--condition", default=None,
                        help="categorical trial column: condition LDNS on it (and one PSTH per label)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from nwb_ldns.config import parse_set_options

    torch.set_num_threads(args.threads)
    result = run_benchmark(args.session, args.out, reader=_reader_options(args), preset=args.preset,
                           overrides=parse_set_options(args.set), sampler=args.sampler,
                           steps=args.steps if args.sampler == "ddim" else None, seed=args.seed,
                           progress=not args.no_progress, condition=args.condition)
    result["command"] = " ".join(sys.argv)
    text = format_result(result)
    print(text)
    print("LDNS beats (KL, corr) vs held-out:", json.dumps(wins(result)))
    out = Path(args.out)
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    (out / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
