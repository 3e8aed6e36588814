"""Many sessions: one model per session (or one converted file per Willett session) through an executor.

Why: a dandiset of 50 sessions wants one model each. Each session is an independent task (a picklable top-level
function taking plain arguments: path strings and dicts), so any `concurrent.futures.Executor` runs them: our own
bounded `ProcessPoolExecutor` (spawn context: torch and fork do not mix) for `fit --out-dir DIR --jobs J`, or the
caller's executor (`dask.distributed.Client.get_executor()`, a ray or mpi4py executor) on a cluster. No scheduler
of ours: the executor decides where and when a task runs.

A failing session never stops the others: every task returns a `SessionOutcome` (ok, or failed with its one-line
error), and `summary_table` / `exit_code` turn the outcomes into what the CLI prints and returns. Outputs follow the
one output rule (`fit` and the converters write atomically), so a failed session leaves nothing under its name.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
import warnings
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait, FIRST_COMPLETED
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

from nwb_ldns.errors import NWBLDNSError, OptionError

FIT_OPTIONS = frozenset({"preset", "overrides", "condition", "resume", "overwrite"})
MP_CONTEXT = "spawn"  # a fresh interpreter per worker: torch's thread pools do not survive fork


@dataclass(frozen=True)
class SessionOutcome:
    """What one task did: small and picklable, so it comes back from any executor."""

    session: str  # the session as given (path or URL)
    output: str  # the model directory (or NWB file) the task writes
    status: str  # "ok" | "failed"
    seconds: float
    error: str | None = None  # one line: our error's message, or "Type: message" for an unexpected exception
    user_error: bool = False  # the failure was an NWBLDNSError (fixable input or option), not a bug
    notes: tuple[str, ...] = ()  # reader notes and warnings of the task
    traceback: str | None = None  # of an unexpected exception (a bug to report)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Task:
    """One unit of work: `function(**kwargs, emit=...)` writes `output` for `session`."""

    session: str
    output: str
    function: Callable[..., Any]  # a top-level function (picklable by reference)
    kwargs: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------- naming

def model_name(session: str) -> str:
    """<stem>.ldns for a session path or URL (a .nwb.zarr store loses both suffixes): `fit`'s default name."""
    if "://" in session:
        name = Path(urlparse(session).path).name or "session"
    else:
        name = Path(session).name
    stem = name[: -len(".nwb.zarr")] if name.endswith(".nwb.zarr") else Path(name).stem
    return (stem or "session") + ".ldns"


def model_dirs(sessions: Sequence[str], out_dir: str | os.PathLike) -> list[Path]:
    """DIR/<stem>.ldns for each session; two sessions with one name are refused (they would share a model)."""
    out = Path(out_dir)
    seen: dict[str, str] = {}
    for session in sessions:
        name = model_name(session)
        if name in seen:
            problem = "is given twice" if seen[name] == session else f"and {seen[name]} both"
            raise OptionError(f"{session} {problem} would write {out / name}; give each session once, or fit "
                              "same-named sessions into different --out-dir folders")
        seen[name] = session
    return [out / model_name(session) for session in sessions]


# --------------------------------------------------------------------------------------------------- fit task

def fit_session_task(session: str, model_dir: str, reading_options: Mapping[str, Any],
                     fit_options: Mapping[str, Any], emit: Callable[[str, Any], None] | None = None) -> str:
    """Read one session and fit its model into `model_dir` (what `fit SESSION --out MODEL_DIR` does); returns it.

    reading_options: `load_session` keyword arguments. fit_options: preset, overrides (dotted keys), condition
    (the `fit --condition` value, resolved against this session), resume, overwrite. `emit(kind, payload)`
    reports ("plan", {stage: epochs}) and ("epoch", (stage, epoch)) for a progress display.
    """
    from nwb_ldns.data import load_session
    from nwb_ldns.training.fit import fit

    emit = emit or (lambda kind, payload: None)
    if Path(model_dir).exists() and not (fit_options.get("overwrite") or fit_options.get("resume")):
        from nwb_ldns.errors import OutputExistsError  # said before reading a session that may take minutes

        raise OutputExistsError(f"{model_dir} already exists; pass --overwrite to replace it or --resume to "
                                "continue an interrupted run")
    data = load_session(session, **dict(reading_options))
    overrides = dict(fit_options.get("overrides") or {})
    if fit_options.get("condition") is not None:
        from nwb_ldns.training.conditions import condition_overrides  # the one --condition rule (needs the data)

        overrides.update(condition_overrides(str(fit_options["condition"]), data))
    emit("plan", _epoch_totals(data, Path(model_dir), fit_options, overrides))
    fit(data, model_dir, preset=fit_options.get("preset"), overrides=overrides or None,
        resume=bool(fit_options.get("resume")), overwrite=bool(fit_options.get("overwrite")), progress=False,
        on_epoch_end=lambda stage, epoch: emit("epoch", (stage, epoch)))
    return model_dir


def _epoch_totals(data, model_dir: Path, fit_options: Mapping[str, Any], overrides: Mapping[str, Any]
                  ) -> dict[str, int] | None:
    """Epochs per stage the run is configured for (early stopping may end sooner); None when unknown."""
    import json

    from nwb_ldns.config import DEFAULT_PRESET
    from nwb_ldns.training.fit import sized_config
    from nwb_ldns.training.lengths import drop_long_trials, max_bins_setting

    try:
        if fit_options.get("resume") and (model_dir / "config.json").is_file():
            config = json.loads((model_dir / "config.json").read_text())["config"]
        else:
            preset = fit_options.get("preset") or DEFAULT_PRESET
            trimmed, _ = drop_long_trials(data, max_bins_setting(None, preset, overrides))
            config, _ = sized_config(trimmed, preset, overrides or None)
        totals = {"autoencoder": int(config["autoencoder"]["epochs"])}
        if config.get("spike_history", {}).get("enabled"):
            totals["spike_history"] = int(config["spike_history"]["epochs"])
        totals["diffusion"] = int(config["diffusion"]["epochs"])
        return totals
    except (NWBLDNSError, KeyError, TypeError, ValueError, OSError):
        return None  # fit itself reports what is wrong


def fit_tasks(sessions: Sequence[str], out_dir: str | os.PathLike, *, reading_options: Mapping[str, Any] | None = None,
              fit_options: Mapping[str, Any] | None = None) -> list[Task]:
    """One `fit_session_task` per session, writing DIR/<stem>.ldns."""
    fit_options = dict(fit_options or {})
    unknown = sorted(set(fit_options) - FIT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown fit_options {unknown}; expected some of {sorted(FIT_OPTIONS)}")
    sessions = [str(s) for s in sessions]
    return [Task(session, str(target), fit_session_task,
                 {"session": session, "model_dir": str(target), "reading_options": dict(reading_options or {}),
                  "fit_options": fit_options})
            for session, target in zip(sessions, model_dirs(sessions, out_dir))]


def fit_sessions(sessions: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, jobs: int = 1,
                 executor: Executor | None = None, reading_options: Mapping[str, Any] | None = None,
                 fit_options: Mapping[str, Any] | None = None, progress: bool = True,
                 torch_threads: int | None = None) -> list[SessionOutcome]:
    """Fit one model per session into out_dir/<session stem>.ldns; one outcome per session, in the given order.

    jobs: sessions fitted at once in our own spawn process pool (1: one after the other in this process).
    executor: any `concurrent.futures.Executor` to run the tasks instead (the cluster entry point, e.g.
    `dask.distributed.Client(...).get_executor()`); it decides how many run at once, and progress then shows
    each session when it finishes. torch_threads: torch threads per task (default: cpu_count // jobs in our
    pool; untouched in this process and in a caller's executor).
    """
    tasks = fit_tasks([str(s) for s in sessions], out_dir, reading_options=reading_options, fit_options=fit_options)
    created = _make_out_dir(Path(out_dir))
    try:
        return run_tasks(tasks, jobs=jobs, executor=executor, progress=progress, torch_threads=torch_threads)
    finally:
        if created and not any(Path(out_dir).iterdir()):
            Path(out_dir).rmdir()  # every session failed before writing: leave no empty folder behind


def _make_out_dir(out_dir: Path) -> bool:
    """Create out_dir (and its parents) if absent; returns whether it was created."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"--out-dir {out_dir} is a file; pass a folder for the model directories")
    if out_dir.is_dir():
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    return True


# --------------------------------------------------------------------------------------------------- running

def run_task(index: int, task: Task, events: Any = None, torch_threads: int | None = None) -> SessionOutcome:
    """Run one task where the executor put it; never raises for a failed session (its outcome says why).

    events: anything with `put((index, kind, payload))` (a multiprocessing Manager queue) for the progress display.
    """
    started = time.perf_counter()
    if torch_threads:
        import torch

        torch.set_num_threads(int(torch_threads))

    def emit(kind: str, payload: Any) -> None:
        if events is not None:
            events.put((index, kind, payload))

    emit("start", None)
    notes: list[str] = []
    handler = _NoteHandler(notes)
    train_logger = logging.getLogger("nwb_ldns.train")
    train_logger.addHandler(handler)
    previous_level, previous_propagate = train_logger.level, train_logger.propagate
    train_logger.propagate = False  # fit's lines become notes, not lines between the display's (the CLI's -v/-q)
    if train_logger.getEffectiveLevel() > logging.INFO:
        train_logger.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                task.function(**task.kwargs, emit=emit)
            finally:
                notes[:0] = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    except NWBLDNSError as error:
        return _failed(task, started, str(error), True, notes)
    except Exception as error:  # noqa: BLE001 - reported in the outcome with its traceback, not swallowed
        from nwb_ldns.fileio import as_output_write_error

        write_error = as_output_write_error(error)  # a full or read-only disk is the user's to fix
        if write_error is not None:
            return _failed(task, started, str(write_error), True, notes)
        return _failed(task, started, f"{type(error).__name__}: {error}", False, notes, traceback.format_exc())
    finally:
        train_logger.removeHandler(handler)
        train_logger.setLevel(previous_level)
        train_logger.propagate = previous_propagate
    return SessionOutcome(task.session, task.output, "ok", time.perf_counter() - started, notes=tuple(notes))


class _NoteHandler(logging.Handler):
    """Keeps fit's warning lines (e.g. a model that does not beat a PSTH) of this thread as notes."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.INFO)
        self.notes = notes
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread == self.thread and message.startswith("warning:"):
            self.notes.append(message[len("warning:"):].strip())


def _failed(task: Task, started: float, message: str, user_error: bool, notes: list[str],
            trace: str | None = None) -> SessionOutcome:
    return SessionOutcome(task.session, task.output, "failed", time.perf_counter() - started,
                          " ".join(message.split()), user_error, tuple(notes), trace)


def _init_worker(threads: int) -> None:
    """Pool worker start, before anything imports torch or numpy: cap their thread pools (jobs x threads <= cores;
    torch reads OMP_NUM_THREADS when it starts, so a task that never needs torch does not pay for importing it)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


def run_tasks(tasks: Sequence[Task], *, jobs: int = 1, executor: Executor | None = None, progress: bool = True,
              torch_threads: int | None = None, what: str = "session") -> list[SessionOutcome]:
    """Run every task (in this process, our spawn pool of `jobs`, or the caller's executor); outcomes in order."""
    from nwb_ldns.batch_progress import Display

    if jobs < 1:
        raise OptionError(f"--jobs {jobs}: run at least 1 job at a time")
    tasks = list(tasks)
    display = Display([task.session for task in tasks], enabled=progress, what=what)
    try:
        if executor is not None:
            outcomes = _run_on(executor, tasks, range(len(tasks)), display, None, torch_threads)
        elif jobs == 1 or len(tasks) <= 1:
            outcomes = {i: run_task(i, task, display, torch_threads) for i, task in enumerate(tasks)}
            for i, outcome in outcomes.items():
                display.finish(i, outcome)
        else:
            outcomes = _run_pool(tasks, min(jobs, len(tasks)), display, torch_threads)
    finally:
        display.close()
    return [outcomes[i] for i in range(len(tasks))]


def _run_pool(tasks: list[Task], jobs: int, display, torch_threads: int | None) -> dict[int, SessionOutcome]:
    """Our bounded spawn pool. A worker killed by the system (out of memory) breaks the pool: the sessions it was
    running fail with that reason, and the ones not started yet go to a fresh pool."""
    threads = torch_threads or max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context(MP_CONTEXT)
    remaining = list(range(len(tasks)))
    outcomes: dict[int, SessionOutcome] = {}
    with context.Manager() as manager:
        events = manager.Queue()
        while remaining:
            with ProcessPoolExecutor(max_workers=min(jobs, len(remaining)), mp_context=context,
                                     initializer=_init_worker, initargs=(threads,)) as pool:
                outcomes.update(_run_on(pool, tasks, remaining, display, events, None))
            remaining = [i for i in remaining if i not in outcomes]
    return outcomes


def _run_on(executor: Executor, tasks: list[Task], indices: Sequence[int], display, events: Any,
            torch_threads: int | None) -> dict[int, SessionOutcome]:
    """Submit tasks, show progress while they run, collect outcomes (tasks a broken pool never started are left
    out so the caller can resubmit them)."""
    futures: dict[Future, int] = {executor.submit(run_task, i, tasks[i], events, torch_threads): i for i in indices}
    outcomes: dict[int, SessionOutcome] = {}
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(events, display)
            for future in done:
                index = futures[future]
                outcome = _outcome_of(future, tasks[index], display.started(index))
                if outcome is not None:
                    outcomes[index] = outcome
                    display.finish(index, outcome)
        _drain(events, display)
    except BaseException:  # Ctrl-C: do not start the sessions still waiting
        for future in pending:
            future.cancel()
        raise
    return outcomes


def _drain(events: Any, display) -> None:
    if events is None:
        return
    import queue

    while True:
        try:
            display.put(events.get_nowait())
        except queue.Empty:
            return
        except (EOFError, OSError, BrokenPipeError):  # the manager went away (interpreter shutting down)
            return


def _outcome_of(future: Future, task: Task, started: bool) -> SessionOutcome | None:
    """The task's outcome; a task lost with its worker fails if it had started (None: resubmit it)."""
    try:
        return future.result()
    except BrokenProcessPool:
        if not started:
            return None
        return SessionOutcome(task.session, task.output, "failed", 0.0,
                              "its worker process died (killed, e.g. out of memory, while this or a concurrent "
                              "session ran); rerun it alone, with fewer --jobs or on a machine with more memory",
                              user_error=False)
    except Exception as error:  # noqa: BLE001 - an executor's own failure (e.g. the task could not be pickled)
        return SessionOutcome(task.session, task.output, "failed", 0.0, f"{type(error).__name__}: {error}",
                              user_error=False, traceback="".join(traceback.format_exception(error)))


# --------------------------------------------------------------------------------------------------- summary

def summary_table(outcomes: Sequence[SessionOutcome], *, output_header: str = "model directory",
                  what: str = "session") -> str:
    """The table printed at the end: session, status, output (none for a failure), seconds, error; then a total."""
    rows = [(o.session, o.status, o.output if o.ok else "-", f"{o.seconds:.1f}", o.error or "") for o in outcomes]
    header = (what, "status", output_header, "seconds", "error")
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4]
             for row in [header, *rows]]
    lines = [line.rstrip() for line in lines]
    failed = [o for o in outcomes if not o.ok]
    total = f"{len(outcomes) - len(failed)} of {len(outcomes)} {what}s ok"
    if failed:
        bugs = sum(not o.user_error for o in failed)
        total += f", {len(failed)} failed" + (f" ({bugs} unexpected: a bug to report, traceback above)" if bugs
                                              else ": fix what the error says and rerun those")
    return "\n".join([*lines, total])


def exit_code(outcomes: Sequence[SessionOutcome]) -> int:
    """0 when every task succeeded; 2 when every failure was a user error (NWBLDNSError); else 1 (a bug)."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return 0
    return 2 if all(o.user_error for o in failed) else 1
