"""`nwb-ldns compare`: fit several generators on one session, sample each into NWB, score them together.

Why one recipe: the LDNS paper's monkey table (ldns-reference.md section 5.1) compares models on the same four
statistics (population-count KL, pairwise-correlation RMSE, mean- and std-ISI RMSE; mean +- std over 5 bootstrap
resamples, with the real-vs-real floor). A user choosing a generator wants that table for their own session, with
every model reading the same session and writing the same kind of NWB file, scored by the same `evaluate`.

Layout of the output directory (every file through the output rule of nwb_ldns.fileio):

    compare_plan.json   the settings (written first: marks the directory as ours and guards --resume)
    models/<name>.*     fitted models: ldns.ldns (an LDNS model directory), <baseline>/ for the neural baselines
    samples/<name>.nwb  the generated trials of each model (nwb_ldns.export.write_synthetic)
    compare.json        the evaluation (nwb_ldns.metrics.evaluate's result) plus a "comparison" section
    report/             the HTML report (nwb_ldns.report) with the paper's table on top

A rerun with --resume reuses every finished model and sample file (a sample older than its model is redrawn);
--overwrite builds the whole directory anew beside the old one and swaps it in when complete.

Models are a registry (`MODELS`): each entry knows how to fit on the session (with a budget and `--set`
overrides) and write N samples. LFADS, pi-VAE and TNDM are registered by import name and appear once their
modules (nwb_ldns.baselines.lfads, .pivae, .tndm) are installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nwb_ldns.errors import OptionError, OutputExistsError

FORMAT = "nwb-ldns-compare"
FORMAT_VERSION = 1
PLAN = "compare_plan.json"
RESULT = "compare.json"
BUDGETS = ("tiny", "default")
# settings that change a fitted model or its samples: a --resume with other values would mix two runs (a model's
# --set values are checked per model: a resume may add models with their own settings)
RUN_KEYS = ("session_sha256", "reading", "budget", "preset", "n", "seed", "sampler", "steps", "spike_placement")
PLAN_DEFAULTS = {"spike_placement": "even"}  # keys added after a plan format was written: their value then

Say = Callable[[str], None]


# ---------------------------------------------------------------------------------------------------------------
# the registry


@dataclass(frozen=True)
class Fitted:
    """A fitted model as compare holds it: the object that samples, and where it was saved (None: not saved)."""

    model: Any
    path: Path | None
    reused: bool


class Entry:
    """One model in the comparison: how to fit it on a session and write N samples as NWB."""

    name: str = ""
    label: str = ""
    module: str = ""  # the import name that provides it (a missing module: the model is not available)
    set_keys: tuple[str, ...] | None = None  # valid --set keys (None: checked by the model's own config)

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def model_path(self, models_dir: Path) -> Path | None:
        return None

    def fit(self, session, models_dir: Path, *, budget: str, preset: str | None, overrides: dict[str, str],
            progress: bool, inputs: list[Path]) -> Fitted:
        raise NotImplementedError

    def write_samples(self, fitted: Fitted, n: int, out: Path, *, seed: int, sampler: str, steps: int | None,
                      progress: bool, inputs: list[Path], spike_placement: str = "even") -> None:
        from nwb_ldns.export import write_synthetic

        write_synthetic(fitted.model.sample(n, seed=seed), out, overwrite=out.exists(), inputs=inputs,
                        progress=progress, spike_placement=spike_placement)


def _weights_time(path: Path | None) -> float | None:
    """Newest modification time of the files of a model (to tell a sample drawn from an older model)."""
    if path is None or not path.exists():
        return None
    files = [path] if path.is_file() else list(path.glob("*.safetensors"))  # weights, not logs a reuse may touch
    return max((p.stat().st_mtime for p in files), default=None)


class LDNSEntry(Entry):
    name, label, module = "ldns", "LDNS", "nwb_ldns.training.fit"

    def model_path(self, models_dir: Path) -> Path:
        return models_dir / "ldns.ldns"

    def fit(self, session, models_dir, *, budget, preset, overrides, progress, inputs) -> Fitted:
        from nwb_ldns.fileio import is_model_dir
        from nwb_ldns.train import fit

        path = self.model_path(models_dir)
        resume = is_model_dir(path)
        finished = resume and (path / "denoiser.safetensors").is_file()
        model = fit(session, path, preset=None if resume else (preset or ("tiny" if budget == "tiny" else "auto")),
                    overrides=None if resume else (overrides or None), resume=resume, progress=progress,
                    overwrite=path.exists() and not resume)
        return Fitted(model, path, finished)

    def write_samples(self, fitted, n, out, *, seed, sampler, steps, progress, inputs, spike_placement="even") -> None:
        from nwb_ldns.sample import sample_to_nwb

        sample_to_nwb(fitted.model, n, out, seed=seed, sampler=sampler, steps=steps, progress=progress,
                      overwrite=out.exists(), inputs=inputs, spike_placement=spike_placement)


class SimpleBaselineEntry(Entry):
    """PSTH-Poisson and LDS-Poisson: fitted in seconds from the training trials, nothing saved."""

    def __init__(self, name: str, label: str, module: str, set_keys: dict[str, type]) -> None:
        self.name, self.label, self.module = name, label, module
        self.types = set_keys
        self.set_keys = tuple(set_keys)

    def fit(self, session, models_dir, *, budget, preset, overrides, progress, inputs) -> Fitted:
        from nwb_ldns.baselines import fit_baseline

        options = {key: _typed(f"{self.name}.{key}", value, self.types[key]) for key, value in overrides.items()}
        return Fitted(fit_baseline(self.name, session, **options), None, False)


class NeuralBaselineEntry(Entry):
    """A trained baseline with a model directory (LFADS, pi-VAE, TNDM): its module's class with fit/load/sample."""

    def __init__(self, name: str, label: str, module: str) -> None:
        self.name, self.label, self.module = name, label, module

    def model_path(self, models_dir: Path) -> Path:
        return models_dir / self.name

    def _class(self):
        module = importlib.import_module(self.module)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if value.__module__ == module.__name__ and all(hasattr(value, m) for m in ("fit", "load", "sample")):
                return value
        raise OptionError(f"{self.module} has no model class with fit/load/sample; the {self.name} baseline is not "
                          "usable in this version of nwb-ldns: leave it out of --models")

    def _preset(self, budget: str) -> str | None:
        module = importlib.import_module(self.module)
        presets = getattr(module, "PRESETS", None) or getattr(getattr(module, "SPEC", None), "presets", None) or {}
        return "tiny" if budget == "tiny" and "tiny" in presets else None

    def fit(self, session, models_dir, *, budget, preset, overrides, progress, inputs) -> Fitted:
        from nwb_ldns.baselines.trainer import WEIGHTS, is_baseline_dir

        path = self.model_path(models_dir)
        resume = is_baseline_dir(path)
        finished = resume and (path / WEIGHTS).is_file()
        cls = self._class()
        model = cls.fit(session, path, preset=self._preset(budget), overrides=overrides or None, resume=resume,
                        overwrite=path.exists() and not resume, progress=progress, inputs=inputs)
        return Fitted(model, path, finished)


def _typed(option: str, value: str, kind: type) -> Any:
    if value.lower() in ("none", "null", ""):
        return None
    try:
        return kind(value)
    except ValueError:
        raise OptionError(f"--set {option}={value!r} must be a {kind.__name__} (or none)") from None


MODELS: dict[str, Entry] = {
    "ldns": LDNSEntry(),
    "psth": SimpleBaselineEntry("psth", "PSTH-Poisson", "nwb_ldns.baselines.psth", {"condition": str}),
    "lds": SimpleBaselineEntry("lds", "LDS-Poisson", "nwb_ldns.baselines.lds", {"n_latents": int, "smooth_s": float}),
    "lfads": NeuralBaselineEntry("lfads", "LFADS", "nwb_ldns.baselines.lfads"),
    "pivae": NeuralBaselineEntry("pivae", "pi-VAE", "nwb_ldns.baselines.pivae"),
    "tndm": NeuralBaselineEntry("tndm", "TNDM", "nwb_ldns.baselines.tndm"),
}


def available_models() -> list[str]:
    """The registered models whose code is installed, in registry order."""
    return [name for name, entry in MODELS.items() if entry.available()]


def parse_models(text: str | Sequence[str]) -> list[str]:
    """`"ldns,psth,lds"` -> ["ldns", "psth", "lds"]; unknown or unavailable names are one OptionError with the list."""
    items = text.split(",") if isinstance(text, str) else [part for item in text for part in item.split(",")]
    names = []
    for item in (part.strip().lower() for part in items):
        if item and item not in names:
            names.append(item)
    available = available_models()
    if not names:
        raise OptionError(f"--models is empty; give a comma-separated list from: {', '.join(available)}")
    for name in names:
        if name not in MODELS:
            raise OptionError(f"unknown model {name!r} in --models; available: {', '.join(available)}")
        if name not in available:
            raise OptionError(f"model {name!r} is not available in this installation ({MODELS[name].module} is "
                              f"missing); available: {', '.join(available)}")
    return names


def parse_sets(items: Sequence[str], models: Sequence[str]) -> dict[str, dict[str, str]]:
    """`--set MODEL.KEY=VALUE` items -> {model: {key: value}}; the model must be one of --models."""
    from nwb_ldns.config import parse_set_options

    out: dict[str, dict[str, str]] = {}
    for dotted, value in parse_set_options(list(items)).items():
        name, sep, key = dotted.partition(".")
        name = name.lower()
        if not sep or not key:
            raise OptionError(f"--set {dotted}={value} needs MODEL.KEY=VALUE, e.g. --set ldns.autoencoder.epochs=50 "
                              "or --set lfads.epochs=100")
        if name not in models:
            raise OptionError(f"--set {dotted}: {name!r} is not one of --models ({', '.join(models)})")
        keys = MODELS[name].set_keys
        if keys is not None and key not in keys:
            raise OptionError(f"--set {dotted}: {name} has no setting {key!r}; valid: {', '.join(keys)}")
        out.setdefault(name, {})[key] = value
    return out


# ---------------------------------------------------------------------------------------------------------------
# the output directory


def staging_dir(target: Path) -> Path:
    """Where --overwrite builds the replacement, so the old comparison survives until the new one is complete."""
    return target.with_name(f".{target.name}.replacement.partial")


def prepare_output(target: str | os.PathLike, session: str | os.PathLike, *, resume: bool, overwrite: bool
                   ) -> tuple[Path, bool, bool]:
    """(directory to work in, whether it replaces `target` at the end, whether this call created it); applies the
    output rule before any work. A run that stops before writing into a directory it created removes it again
    (`discard_if_empty`).

    A new DIR is created. An existing DIR needs --resume (continue it: finished models and samples are reused) or
    --overwrite (a new comparison built beside it, swapped in when complete); either only for a directory that
    `compare` wrote.
    """
    from nwb_ldns.fileio import check_output, is_our_compare_dir, refuse_input_as_output, refuse_unwritable

    target = Path(target)
    if resume and overwrite:
        raise OptionError("--resume and --overwrite contradict each other: --resume reuses the finished models and "
                          "samples in --out, --overwrite starts over; pass one of them")
    refuse_input_as_output(target, [session], "--out")
    refuse_unwritable(target)
    staging = staging_dir(target)
    if not target.exists() or (target.is_dir() and not target.is_symlink() and not any(target.iterdir())):
        created = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        return target, False, created
    if not is_our_compare_dir(target):
        check_output(target, kind="compare", overwrite=True, inputs=[session])  # names the problem: not ours
    if resume:
        return (staging, True, False) if is_our_compare_dir(staging) else (target, False, False)
    if not overwrite:
        raise OutputExistsError(f"{target} already exists; pass --resume to reuse its finished models and samples, "
                                "or --overwrite to start the comparison over")
    check_output(target, kind="compare", overwrite=True, inputs=[session])
    if staging.exists():
        shutil.rmtree(staging)  # an earlier replacement that never finished
    staging.mkdir()
    return staging, True, True


def discard_if_empty(work: Path) -> None:
    """Leave nothing behind when a run stops before its plan is written (a bad session, bad options)."""
    try:
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
    except OSError:
        pass


def _check_plan(work: Path, plan: dict[str, Any]) -> None:
    """Write the plan to a new directory; on --resume refuse settings that would mix two runs."""
    from nwb_ldns.fileio import atomic_output

    path = work / PLAN
    if path.is_file():
        saved = json.loads(path.read_text())
        saved = {**PLAN_DEFAULTS, **saved}
        changed = [key for key in RUN_KEYS if saved.get(key) != plan.get(key)]
        saved_sets, sets = saved.get("sets") or {}, plan["sets"]
        changed += [f"--set {name}.*" for name in plan["models"] if name in saved.get("models", [])
                    and saved_sets.get(name, {}) != sets.get(name, {})]
        if changed:
            shown = [f"{k}={saved.get(k)!r}" for k in changed if k in RUN_KEYS]
            shown += [f"{name}: {saved_sets.get(name, {})}" for name in plan["models"] if f"--set {name}.*" in changed]
            raise OptionError(f"--resume: {work} was started with other settings ({', '.join(changed)} differ; "
                              f"it has {', '.join(shown)}); run again with the same session and options, or pass "
                              "--overwrite to start over")
        models = saved.get("models", []) + [name for name in plan["models"] if name not in saved.get("models", [])]
        plan = {**saved, "models": models, "sets": {**saved_sets, **sets}}
        if plan == saved:
            return
    with atomic_output(path, overwrite=path.exists()) as tmp:
        tmp.write_text(json.dumps(plan, indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------------------------
# the paper's table


# (evaluate key, column header, scale): the LDNS monkey table's columns and units (ldns-reference.md 5.1)
PAPER_COLUMNS = (
    ("kl_pop_count", "KL pop. count (x1e-3)", 1e3),
    ("rmse_corr", "RMSE corr (x1e-3)", 1e3),
    ("rmse_mean_isi", "RMSE mean ISI (s)", 1.0),
    ("rmse_std_isi", "RMSE std ISI (s)", 1.0),
)
FLOOR_LABEL = "real vs real (noise floor)"


def _cell(mean: float | None, std: float | None, scale: float) -> str:
    """The paper's style, "3.79 ± 0.44": the mean to 3 significant digits, both to the same decimals, enough to
    show the std's first digit."""
    if mean is None or not np.isfinite(mean):
        return "nan"
    value = mean * scale
    decimals = _decimals(value, 3)
    if std is None or not np.isfinite(std):
        return f"{value:.{decimals}f}"
    decimals = min(max(decimals, _decimals(std * scale, 1)), 8)
    return f"{value:.{decimals}f} ± {std * scale:.{decimals}f}"


def _decimals(value: float, significant: int) -> int:
    """Decimals that show `significant` digits of value (0 for large values, 3 for zero)."""
    return max(0, significant - 1 - int(np.floor(np.log10(abs(value))))) if value else 3


def paper_table(result: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the paper's monkey table: one row per generated set, then the real-vs-real floor."""
    header = ["model"] + [title for _, title, _ in PAPER_COLUMNS]
    rows = []
    for entry in result["generated"]:
        name = f"{entry['label']} ({entry['name']})" if entry["label"] != entry["name"] else entry["name"]
        rows.append([name] + [_cell(entry["mean"][k], entry["std"][k], s) for k, _, s in PAPER_COLUMNS])
    floor = result["noise_floor"]
    rows.append([FLOOR_LABEL] + [_cell(floor["mean"][k], floor["std"][k], s) for k, _, s in PAPER_COLUMNS])
    return header, rows


def markdown_table(result: Mapping[str, Any]) -> str:
    """The paper's table as GitHub markdown, with one line saying what was compared."""
    header, rows = paper_table(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    real, settings = result["real"], result["settings"]
    lines.append("")
    lines.append(f"mean ± std over {settings['n_resamples']} bootstrap resamples of each set (seed "
                 f"{settings['seed']}), each vs all {real['n_trials']} real '{real['split']}' trials; lower is "
                 "better. Floor: a random half of the real trials vs the other half.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# the run


@dataclass
class ModelRun:
    """What compare did for one model (the comparison section of compare.json)."""

    name: str
    label: str
    model_path: str | None
    sample_path: str
    fit_seconds: float
    sample_seconds: float
    fit_reused: bool
    sample_reused: bool


@dataclass
class Comparison:
    """The outcome: the evaluation result (compare.json) and where things were written."""

    out_dir: Path
    result: dict[str, Any]
    runs: list[ModelRun] = field(default_factory=list)

    @property
    def json_path(self) -> Path:
        return self.out_dir / RESULT

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report" / "index.html"


def default_n(session, reference_split: str) -> int:
    """The number of real trials the samples are compared with (the paper draws as many samples as that)."""
    from nwb_ldns.metrics.evaluate import training_trials

    return int(training_trials(session, reference_split).sizes["trial"])


def read_samples(path: Path):
    """A sample file read back exactly as `nwb-ldns evaluate` reads a SYNTH.nwb (with its provenance attrs)."""
    from nwb_ldns.data.generated import read_generated

    return read_generated(path)


def run_compare(session, session_path: str | os.PathLike, models: Sequence[str], out_dir: str | os.PathLike, *,
                work_dir: str | os.PathLike | None = None, replacing: bool = False,
                reading: Mapping[str, Any] | None = None, budget: str = "default", preset: str | None = None,
                sets: Mapping[str, Mapping[str, str]] | None = None, n: int | None = None, seed: int = 0,
                sampler: str = "ddpm", steps: int | None = None, reference_split: str = "test",
                n_resamples: int = 5, report: bool = True, progress: bool = True, spike_placement: str = "even",
                say: Say = print) -> Comparison:
    """Fit every model on `session` (read from session_path with `reading`), sample, evaluate, write the report.

    work_dir/replacing come from `prepare_output` (default: out_dir itself, which must then be new or ours).
    """
    from nwb_ldns.fileio import atomic_output, lock_directory, replace_path, sha256_file
    from nwb_ldns.metrics.evaluate import evaluate, json_ready

    if budget not in BUDGETS:
        raise OptionError(f"--budget {budget!r} is not one of {', '.join(BUDGETS)}")
    if "tndm" in models and "behavior" not in session:  # refused before any model is fitted, not after LDNS
        raise OptionError("tndm decodes behaviour and this session has none: add --behavior SERIES (e.g. "
                          "processing/behavior/hand_vel; an MC_Maze file gives it with --recipe mc_maze) or drop "
                          "tndm from --models")
    target = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else target
    session_path = Path(session_path)
    inputs = [session_path]
    n = default_n(session, reference_split) if n is None else int(n)
    if n < 1:
        raise OptionError(f"--n must be a positive number of trials, got {n}")
    sets = {name: dict(values) for name, values in (sets or {}).items()}
    plan = {"format": FORMAT, "format_version": FORMAT_VERSION, "session": str(session_path.resolve()),
            "session_sha256": sha256_file(session_path), "reading": json_ready(dict(reading or {})),
            "budget": budget, "preset": preset, "sets": sets, "n": n, "seed": int(seed), "sampler": sampler,
            "steps": steps, "spike_placement": spike_placement, "models": list(models)}
    with lock_directory(work):
        _check_plan(work, plan)
        models_dir, samples_dir = work / "models", work / "samples"
        models_dir.mkdir(exist_ok=True)
        samples_dir.mkdir(exist_ok=True)
        runs = []
        for i, name in enumerate(models, start=1):
            runs.append(_one_model(MODELS[name], session, models_dir, samples_dir, i, len(models), budget=budget,
                                   preset=preset, overrides=sets.get(name, {}), n=n, seed=seed, sampler=sampler,
                                   steps=steps, progress=progress, inputs=inputs, spike_placement=spike_placement,
                                   say=say))
        say(f"evaluating {len(runs)} sample sets against the real '{reference_split}' trials "
            f"({n_resamples} bootstrap resamples)")
        generated = [read_samples(Path(run.sample_path)) for run in runs]
        result = evaluate(session, generated, names=[run.name for run in runs], n_resamples=n_resamples,
                          split=reference_split)
        result["real"]["path"] = str(session_path)
        for entry, run in zip(result["generated"], runs):
            entry["path"] = str(target / Path(run.sample_path).relative_to(work))
        header, rows = paper_table(result)
        result["comparison"] = {
            "models": [{**run.__dict__, "sample_path": str(target / Path(run.sample_path).relative_to(work)),
                        "model_path": None if run.model_path is None
                        else str(target / Path(run.model_path).relative_to(work))} for run in runs],
            "settings": {k: plan[k] for k in ("budget", "preset", "sets", "n", "seed", "sampler", "steps",
                                              "spike_placement")},
            "table": {"header": header, "rows": rows, "columns": [k for k, _, _ in PAPER_COLUMNS],
                      "scales": [s for _, _, s in PAPER_COLUMNS]},
        }
        with atomic_output(work / RESULT, overwrite=(work / RESULT).exists(), kind="json", inputs=inputs) as tmp:
            tmp.write_text(json.dumps(json_ready(result), indent=2, allow_nan=False))
        if report:
            from nwb_ldns.report import write_report

            say("writing the report (figures of every set side by side)")
            write_report(work / "report", session, generated, result, overwrite=(work / "report").exists(),
                         inputs=inputs)
    if replacing:
        replace_path(work, target)
    return Comparison(target, result, runs)


def _one_model(entry: Entry, session, models_dir: Path, samples_dir: Path, i: int, total: int, *, budget: str,
               preset: str | None, overrides: dict[str, str], n: int, seed: int, sampler: str, steps: int | None,
               progress: bool, inputs: list[Path], say: Say, spike_placement: str = "even") -> ModelRun:
    """Fit (or reuse) one model, then write (or reuse) its samples; one progress line per step."""
    tag = f"[{i}/{total}] {entry.name}"
    out = samples_dir / f"{entry.name}.nwb"
    if entry.model_path(models_dir) is None and out.exists():  # nothing saved to refit from: the samples stand
        say(f"{tag}: reused {out}")
        return ModelRun(entry.name, entry.label, None, str(out), 0.0, 0.0, True, True)
    path = entry.model_path(models_dir)
    if path is None:
        say(f"{tag}: fitting {entry.label}")
    else:
        say(f"{tag}: {'reusing or resuming' if path.exists() else 'fitting'} {entry.label} in {path} (budget {budget})")
    started = time.monotonic()
    fitted = entry.fit(session, models_dir, budget=budget, preset=preset if entry.name == "ldns" else None,
                       overrides=overrides, progress=progress, inputs=inputs)
    fit_seconds = time.monotonic() - started
    where = f" -> {fitted.path}" if fitted.path is not None else ""
    say(f"{tag}: {'reused the fitted model' if fitted.reused else f'fitted in {fit_seconds:.0f} s'}{where}")
    weights_time = _weights_time(fitted.path)
    fresh = fitted.reused and out.exists() and (weights_time is None or out.stat().st_mtime >= weights_time)
    started = time.monotonic()
    if fresh:
        say(f"{tag}: reused {out}")
    else:
        say(f"{tag}: sampling {n} trials -> {out}")
        entry.write_samples(fitted, n, out, seed=seed, sampler=sampler, steps=steps, progress=progress,
                            inputs=inputs, spike_placement=spike_placement)
        say(f"{tag}: sampled in {time.monotonic() - started:.0f} s")
    sample_seconds = time.monotonic() - started
    return ModelRun(entry.name, entry.label, None if fitted.path is None else str(fitted.path), str(out),
                    round(fit_seconds, 2), round(sample_seconds, 2), fitted.reused, fresh)
