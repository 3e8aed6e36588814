"""The checks of the monkey half of LDNS on the MC_Maze stand-in, with the figures: conditioned vs unconditional
decoding (velocity R^2, reach-angle error) and the spike-history ISI check on a session with a refractory period.
Prints the numbers and writes the `nwb-ldns evaluate` reports (figures as PNG) under --out.

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/monkey_fixture_checks.py --out runs/monkey-checks [--seeds 2 7]

Fits (the tiny preset widened, see BUDGET; about 75 s each on 2 cores) go through the CLI, as a user would run
them. The real MC_Maze file is not downloadable here; the stand-in follows its published layout
(nwb_ldns.testing.write_mc_maze_like) with units cosine-tuned to the reach direction.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

# the tiny preset widened (8 latents, a 2-block denoiser of width 64) and trained longer: about 75 s per fit on 2
# cores; the plain tiny preset learns the angle only for some seeds
BUDGET = [arg for item in ("autoencoder.latent=8", "autoencoder.hidden=64", "diffusion.hidden=64",
                           "diffusion.n_blocks=2", "autoencoder.epochs=60", "diffusion.epochs=300")
          for arg in ("--set", item)]


def cli(*args: object) -> str:
    command = [str(Path(sys.executable).with_name("nwb-ldns")), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout


def unconditional_scores(root: Path, maze: Path) -> dict:
    """The unconditional samples scored against the SAME requested angles and velocity traces as the conditioned
    ones (what chance looks like for these trials): a conditioned model must do better than this."""
    import warnings

    from nwb_ldns.data import load_session
    from nwb_ldns.metrics.evaluate import behaviour_decoding
    from nwb_ldns.data.generated import load_generated

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = load_session(maze, recipe="mc_maze")
        none, angle, velocity = (load_generated(str(root / f"{name}.nwb")) for name in ("none", "angle", "velocity"))
    train = real.isel(trial=np.flatnonzero(real["split"].values == "train"))
    held = real.isel(trial=np.flatnonzero(real["split"].values != "train"))
    scored = none.assign(trial_reach_angle=("trial", angle["trial_reach_angle"].values),
                         behavior=(("trial", "time", "behavior_dim"), velocity["behavior"].values))
    decoding = behaviour_decoding(train, held, [scored])
    return {"r2": decoding["r2_generated"][0], "angle_error_deg": float(np.degrees(decoding["angle_error_generated"][0]))}


def conditioning(out: Path, seed: int, reuse: bool = False) -> dict:
    """Fit unconditional, angle and velocity models on a 160-trial stand-in; sample 60 trials each with the
    conditions of the held-out trials; evaluate with a report. reuse: score files an earlier run left."""
    from nwb_ldns.testing import write_mc_maze_like

    root = out / f"conditioning-seed{seed}"
    root.mkdir(parents=True, exist_ok=True)
    maze = root / "sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb"
    if reuse and (root / "metrics.json").is_file():
        return _conditioning_result(root, maze, seed)
    write_mc_maze_like(maze, n_trials=160, n_heldin=16, n_heldout=4, n_early_onset=0, seed=seed)
    for condition in ("none", "angle", "velocity"):
        cli("fit", maze, "--preset", "tiny", *BUDGET, "--condition", condition, "--seed", seed,
            "--out", root / f"{condition}.ldns", "--overwrite", "--quiet")
    common = ["--n", 60, "--split", "test", "--per-trace", 4, "--overwrite", "--quiet"]
    cli("sample", root / "none.ldns", "--out", root / "none.nwb", "--n", 60, "--overwrite", "--quiet")
    cli("sample", root / "angle.ldns", "--out", root / "angle.nwb", "--condition", f"angle=from:{maze}", *common)
    cli("sample", root / "velocity.ldns", "--out", root / "velocity.nwb", "--condition", f"velocity=from:{maze}",
        *common)
    cli("evaluate", maze, root / "none.nwb", root / "angle.nwb", root / "velocity.nwb", "--json",
        root / "metrics.json", "--report", root / "report", "--overwrite")
    return _conditioning_result(root, maze, seed)


def _conditioning_result(root: Path, maze: Path, seed: int) -> dict:
    result = json.loads((root / "metrics.json").read_text())
    decoding = result["decoding"]
    names = [g["name"] for g in result["generated"]]
    return {"seed": seed, "report": str(root / "report"), "r2_heldout_real": decoding["r2_heldout_real"],
            "angle_error_heldout_real_deg": np.degrees(decoding["angle_error_heldout_real"]),
            "r2": dict(zip(names, decoding["r2_generated"])),
            "angle_error_deg": {n: (None if e is None else float(np.degrees(e)))
                                for n, e in zip(names, decoding["angle_error_generated"])},
            "unconditional_vs_the_same_requests": unconditional_scores(root, maze)}


def spike_history(out: Path, reuse: bool = False) -> dict:
    """A session whose units cannot fire in the 2 bins after a spike: fit with --spike-history, sample with and
    without it, evaluate with a report (its ISI figure shows the refractory period)."""
    from nwb_ldns.testing import refractory_counts, write_counts_session

    root = out / "spike-history"
    root.mkdir(parents=True, exist_ok=True)
    if reuse and (root / "report" / "index.html").is_file():
        return _history_result(root)
    write_counts_session(root / "refractory.nwb", refractory_counts(200, 48, 8)[0], 0.01)
    cli("fit", root / "refractory.nwb", "--preset", "tiny", "--spike-history", "--set", "autoencoder.epochs=30",
        "--set", "diffusion.epochs=60", "--set", "spike_history.history=5", "--set", "spike_history.max_spikes=1",
        "--out", root / "m.ldns", "--overwrite", "--quiet")
    cli("sample", root / "m.ldns", "--n", 150, "--out", root / "poisson.nwb", "--overwrite", "--quiet")
    cli("sample", root / "m.ldns", "--n", 150, "--spike-history", "--out", root / "history.nwb", "--overwrite",
        "--quiet")
    cli("evaluate", root / "refractory.nwb", root / "poisson.nwb", root / "history.nwb", "--no-memorisation",
        "--report", root / "report", "--overwrite")
    return _history_result(root)


def _history_result(root: Path) -> dict:
    from nwb_ldns.data import load_session
    from nwb_ldns.testing import short_isi_fraction

    real = load_session(root / "refractory.nwb")
    fractions = {"real (train)": short_isi_fraction(real["counts"].values[real["split"].values == "train"], 3)}
    for name in ("poisson", "history"):
        fractions[name] = short_isi_fraction(load_session(root / f"{name}.nwb")["counts"].values, 3)
    return {"report": str(root / "report"), "short_isi_fraction_below_3_bins": fractions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/monkey-checks"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[2])
    parser.add_argument("--reuse", action="store_true", help="score the files an earlier run left in --out")
    args = parser.parse_args()
    results = {"conditioning": [conditioning(args.out, seed, args.reuse) for seed in args.seeds],
               "spike_history": spike_history(args.out, args.reuse)}
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
