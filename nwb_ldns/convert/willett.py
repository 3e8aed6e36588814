"""Write the Willett et al. 2023 speech-BCI release as NWB: one file per recording session.

Each session's sentences from train/, test/ and competitionHoldOut/ are put on one 50 Hz timeline, back to back, in
recording order (holdout = first blocks, then train, then test = last block; stable-sorted by blockIdx). The tx1
counts are a TimeSeries (time, 256 channels) in processing/ecephys; one trial per sentence records its split.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from nwb_ldns.convert import willett_channels
from nwb_ldns.convert.nwb_common import gzip, new_nwbfile, trials_table
from nwb_ldns.data.windows import SPLIT_COLUMN
from nwb_ldns.convert.willett_mat import (
    BIN_WIDTH_S, N_CHANNELS, SessionFile, SplitPart, check_file, find_session_files, read_part, session_date,
)
from nwb_ldns.errors import OutputExistsError
from nwb_ldns.fileio import atomic_output, check_output, hdf5_writer

COUNTS_SERIES = "tx1"
RECORDING_ORDER = {"holdout": 0, "train": 1, "test": 2}
WILLETT_2023 = "https://doi.org/10.1038/s41586-023-06377-x"
DRYAD = "https://doi.org/10.5061/dryad.x69p8czpq"


def output_name(session: str) -> str:
    """DANDI-style file name, e.g. t12.2022.04.28 -> sub-T12_ses-t12-2022-04-28_ecephys.nwb."""
    subject, _ = session_date(session)
    return f"sub-{subject.upper()}_ses-{session.replace('.', '-')}_ecephys.nwb"


def _pacific_midnight(day: date) -> datetime:
    """00:00 US/Pacific on the recording day (Stanford); fixed UTC-8 where no time-zone database is installed."""
    try:
        zone = ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # pragma: no cover - systems without tzdata
        zone = timezone(timedelta(hours=-8), "PST")
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _count_dtype(counts: np.ndarray) -> type:
    """The smallest unsigned integer type holding every count (the release stores uint8)."""
    peak = int(counts.max()) if counts.size else 0
    return next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if peak <= np.iinfo(t).max)


def _add_electrodes(nwb) -> None:
    table = willett_channels.channel_table()
    model = nwb.create_device_model(
        name="64-electrode microelectrode array",
        manufacturer="Blackrock Neurotech",
        description="8x8 intracortical microelectrode array (Utah array); electrode pitch assumed 400 um",
    )
    groups = {}
    for layout in willett_channels.arrays():
        device = nwb.create_device(
            name=f"array_{layout.name}", description=f"Array on {willett_channels.AREAS[layout.area]}, "
            f"{layout.name.split('_')[1]} position", model=model,
        )
        groups[layout.name] = nwb.create_electrode_group(
            name=layout.name, description=f"{layout.name.replace('_', ' ')} array (8x8, 64 electrodes) on "
            f"{willett_channels.AREAS[layout.area]}", location=willett_channels.location(layout.area), device=device,
        )
    nwb.add_electrode_column(name="array_row", description="row in the 8x8 grid, 0 = superior edge")
    nwb.add_electrode_column(name="array_col", description="column in the 8x8 grid, 0 = anterior edge")
    for channel in range(N_CHANNELS):
        nwb.add_electrode(
            id=channel, group=groups[table["array"][channel]],
            location=willett_channels.location(table["area"][channel]),
            rel_x=float(table["rel_x"][channel]), rel_y=float(table["rel_y"][channel]),
            array_row=int(table["row"][channel]), array_col=int(table["col"][channel]),
        )


def _build_nwbfile(session: str, parts: list[SplitPart]):
    from pynwb import TimeSeries
    from pynwb.file import Subject

    subject, day = session_date(session)
    rows = [
        (part.file.split, i, part) for part in sorted(parts, key=lambda p: RECORDING_ORDER[p.file.split])
        for i in range(len(part.tx1))
    ]
    order = np.argsort([part.blocks[i] for _, i, part in rows], kind="stable")
    rows = [rows[k] for k in order]
    lengths = np.array([part.tx1[i].shape[0] for _, i, part in rows])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    counts = np.concatenate([part.tx1[i] for _, i, part in rows])
    counts = counts.astype(_count_dtype(counts))
    split_sizes = {s: sum(1 for r in rows if r[0] == s) for s in RECORDING_ORDER}

    nwb = new_nwbfile(
        session_description=(
            f"Participant {subject.upper()} attempting to speak cued sentences, recording session {session} "
            f"({len(rows)} sentences: {split_sizes['train']} train, {split_sizes['test']} test, "
            f"{split_sizes['holdout']} holdout). Threshold-crossing counts (-3.5 x RMS) of 256 intracortical "
            "electrodes in 20 ms bins, converted from the Willett et al. 2023 competitionData release "
            f"({DRYAD}); sentences are laid end to end on one 50 Hz timeline (the release keeps no inter-trial "
            "time), so times are not the original clock times."
        ),
        session_start_time=_pacific_midnight(day),
        session_id=session.replace(".", "-"),
        experiment_description=(
            "Speech neuroprosthesis (BrainGate2 pilot clinical trial): intracortical recordings from area 6v and "
            "area 44 while the participant attempted to speak sentences shown on a screen."
        ),
        keywords=["speech BCI", "intracortical", "threshold crossings", "human", "area 6v", "area 44"],
        institution="Stanford University",
        experimenter=["Willett, Francis R."],
        related_publications=[WILLETT_2023, DRYAD],
        notes="Session start time is the recording date at 00:00 US/Pacific; the release has no time of day.",
    )
    nwb.subject = Subject(
        subject_id=subject.upper(),
        species="Homo sapiens",
        sex="F",
        age="P18Y/",
        description=(
            f"Participant {subject.upper()} of the BrainGate2 pilot clinical trial (amyotrophic lateral sclerosis); "
            "the release gives no age, so it is recorded as an open adult range."
        ),
    )
    _add_electrodes(nwb)
    ecephys = nwb.create_processing_module(
        name="ecephys", description="Binned threshold crossings of the 256 electrodes (competitionData tx1)."
    )
    ecephys.add(
        TimeSeries(
            name=COUNTS_SERIES,
            description=(
                "tx1 of competitionData: number of threshold crossings (-3.5 x RMS) per 20 ms bin; column j = "
                "electrode id j (channel j of the release, 0-based; row j of the electrodes table, whose location "
                "is 'area 6v' for columns 0-127 and 'area 44' for 128-255); rows = bins of all sentences "
                "concatenated in trials-table order (each trial's start_time / stop_time gives its rows)."
            ),
            data=gzip(counts, chunks=(min(len(counts), 4096), N_CHANNELS)),
            unit="counts",
            starting_time=0.0,
            rate=1.0 / BIN_WIDTH_S,
        )
    )
    nwb.trials = trials_table(
        np.round(offsets * BIN_WIDTH_S, 6), np.round((offsets + lengths) * BIN_WIDTH_S, 6),
        description="One row per sentence; split from the release folder (train/, test/, competitionHoldOut/).",
        columns={
            SPLIT_COLUMN: ("train, test or holdout (competitionHoldOut), from the release folder", [r[0] for r in rows]),
            "sentence": ("cued sentence text ('' where the release withholds it)",
                         [part.sentences[i] for _, i, part in rows]),
            "block": ("recording block (blockIdx; -1 if absent)", np.array([part.blocks[i] for _, i, part in rows])),
            "n_bins": ("number of 20 ms bins of the sentence", lengths.astype(np.int64)),
            "source_file": ("release file the sentence came from",
                            [f"{part.file.path.parent.name}/{part.file.path.name}" for _, i, part in rows]),
            "source_index": ("0-based index of the sentence in that file", np.array([i for _, i, _ in rows])),
        },
    )
    return nwb


def _plan(competition_dir: str | Path, out_dir: str | Path, overwrite: bool
          ) -> tuple[dict[str, list[SessionFile]], dict[str, Path], list[Path]]:
    """(sessions, their targets, every input file) after the checks that concern the whole command: the folder
    layout, existing outputs (without overwrite) and the output rule."""
    sessions = find_session_files(competition_dir)
    out_dir = Path(out_dir)
    targets = {session: out_dir / output_name(session) for session in sessions}
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{existing[0]} already exists ({len(existing)} of {len(targets)} outputs); pass --overwrite to "
            "replace them or choose another OUT_DIR"
        )
    inputs = [file.path for group in sessions.values() for file in group]
    for target in targets.values():
        check_output(target, kind="nwb", overwrite=overwrite, inputs=inputs, option="OUT_DIR")
    return sessions, targets, inputs


def _write_session(session: str, group: list[SessionFile], target: Path, inputs: list[Path], overwrite: bool) -> None:
    """Read one session's files and write its NWB file atomically (complete under its name, or absent)."""
    from pynwb import NWBHDF5IO

    parts = [read_part(file) for file in group]
    with atomic_output(target, overwrite=overwrite, kind="nwb", inputs=inputs, option="OUT_DIR") as tmp:
        with hdf5_writer(tmp) as h5, NWBHDF5IO(file=h5, mode="w") as io:
            io.write(_build_nwbfile(session, parts))


def convert_willett(competition_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Convert every session of a competitionData folder; returns the NWB paths written, in session order.

    Every file's header is checked first, so a damaged file stops the conversion before anything is written
    (`convert_willett_sessions` instead converts each session on its own and reports the failures).
    """
    from nwb_ldns.progress import bar as progress_bar

    sessions, targets, inputs = _plan(competition_dir, out_dir, overwrite)
    for group in sessions.values():  # fail before writing anything
        for file in group:
            check_file(file)
    written = []
    for session, group in progress_bar(sessions.items(), desc="Willett sessions", unit="session", disable=None):
        _write_session(session, group, targets[session], inputs, overwrite)
        written.append(targets[session])
    return written


def convert_willett_session(session: str, files: list[tuple[str, str]], target: str, inputs: list[str],
                            overwrite: bool = False, emit=None) -> str:
    """Convert one session (its (path, split) files) to `target`: the picklable task of `convert_willett_sessions`."""
    group = [SessionFile(Path(path), session, split) for path, split in files]
    for file in group:
        check_file(file)
    _write_session(session, group, Path(target), [Path(p) for p in inputs], overwrite)
    return target


def convert_willett_sessions(competition_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False,
                             jobs: int = 1, executor=None, progress: bool = True) -> list:
    """Convert each session as its own task (`jobs` processes, or a caller's concurrent.futures executor): a session
    whose files are damaged fails alone, with its error in its outcome, and the others are still written.
    Returns one `nwb_ldns.batch.SessionOutcome` per session, in session order."""
    from nwb_ldns.batch import Task, run_tasks

    sessions, targets, inputs = _plan(competition_dir, out_dir, overwrite)
    tasks = [Task(session, str(targets[session]), convert_willett_session,
                  {"session": session, "files": [(str(file.path), file.split) for file in group],
                   "target": str(targets[session]), "inputs": [str(p) for p in inputs], "overwrite": overwrite})
             for session, group in sessions.items()]
    return run_tasks(tasks, jobs=jobs, executor=executor, progress=progress)
