"""Read the Willett et al. 2023 `competitionData` release: find the session files and load their sentences.

Layout (Dryad doi:10.5061/dryad.x69p8czpq): competitionData/{train,test,competitionHoldOut}/t12.YYYY.MM.DD.mat,
MATLAB v5 files read with scipy.io.loadmat. Only tx1 (threshold crossings at -3.5 x RMS, 20 ms bins, 256 channels),
sentenceText and blockIdx are read; holdout files may lack sentenceText.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from nwb_ldns.errors import InputFileError, SessionContentError

SPLIT_FOLDERS = {"train": "train", "test": "test", "competitionHoldOut": "holdout"}
N_CHANNELS = 256
BIN_WIDTH_S = 0.02
SESSION_NAME = re.compile(r"^(?P<subject>[a-z]+\d+)\.(?P<year>\d{4})\.(?P<month>\d{2})\.(?P<day>\d{2})$")
_VARIABLES = ["tx1", "sentenceText", "blockIdx"]


@dataclass(frozen=True)
class SessionFile:
    """One .mat file: the recording session it belongs to and its split."""

    path: Path
    session: str  # file stem, e.g. "t12.2022.04.28"
    split: str  # "train" | "test" | "holdout"


@dataclass
class SplitPart:
    """The sentences of one session file, in file order."""

    file: SessionFile
    tx1: list[np.ndarray]  # one (T_i, 256) integer array per sentence
    sentences: list[str]  # "" where the file has no labels
    blocks: np.ndarray  # (S,) int, -1 where the file has no blockIdx


def session_date(session: str) -> tuple[str, date]:
    """(subject, recording date) from a session name like t12.2022.04.28."""
    match = SESSION_NAME.match(session)
    if match is None:
        raise InputFileError(
            f"cannot read a recording date from '{session}.mat'; competitionData files are named like "
            "t12.2022.04.28.mat (rename the file or remove it from the folder)"
        )
    return match["subject"], date(int(match["year"]), int(match["month"]), int(match["day"]))


def find_session_files(competition_dir: str | Path) -> dict[str, list[SessionFile]]:
    """Session name -> its files (train, test, holdout order); names ending in .mat only, sorted."""
    root = Path(competition_dir)
    if not root.is_dir():
        raise InputFileError(f"{root} is not a directory; pass the extracted competitionData folder")
    if not any((root / folder).is_dir() for folder in SPLIT_FOLDERS) and (root / "competitionData").is_dir():
        root = root / "competitionData"
    folders = [folder for folder in SPLIT_FOLDERS if (root / folder).is_dir()]
    if not folders:
        raise InputFileError(
            f"{root} has no train/, test/ or competitionHoldOut/ folder; pass the extracted competitionData folder "
            "(tar -xzf competitionData.tar.gz)"
        )
    sessions: dict[str, list[SessionFile]] = {}
    for folder in folders:
        for path in sorted(p for p in (root / folder).iterdir() if p.name.endswith(".mat") and p.is_file()):
            session_date(path.stem)
            sessions.setdefault(path.stem, []).append(SessionFile(path, path.stem, SPLIT_FOLDERS[folder]))
    if not sessions:
        raise InputFileError(
            f"no .mat files in {', '.join(str(root / f) for f in folders)}; expected t12.YYYY.MM.DD.mat session files"
        )
    return dict(sorted(sessions.items()))


def check_file(file: SessionFile) -> None:
    """Cheap header check (no data read): the file is a MATLAB v5 file with a tx1 variable."""
    from scipy.io import whosmat

    try:
        names = {entry[0] for entry in whosmat(str(file.path))}
    except MemoryError:  # not a damaged file: keep it (and its traceback)
        raise
    except Exception as error:  # scipy raises ValueError/MatReadError/TypeError/... on damaged files
        raise InputFileError(
            f"cannot read {file.path} as a MATLAB v5 .mat file ({type(error).__name__}: {error}); "
            "re-extract it from competitionData.tar.gz"
        ) from None
    if "tx1" not in names:
        raise SessionContentError(
            f"{file.path} has no 'tx1' variable (found {sorted(names)}); the file is truncated (re-extract it from "
            "competitionData.tar.gz) or is not a competitionData session file (they hold tx1..tx4, spikePow, "
            "blockIdx and sentenceText)"
        )


def _as_counts(trial: object, file: SessionFile, index: int) -> np.ndarray:
    array = np.asarray(trial)
    where = f"{file.path} tx1 sentence {index}"
    if array.dtype.kind not in "biuf" or array.ndim != 2 or array.shape[1] != N_CHANNELS or array.shape[0] == 0:
        raise SessionContentError(
            f"{where} is {array.dtype} {array.shape}, expected a (bins > 0, {N_CHANNELS}) numeric count matrix; "
            "the file is not in the competitionData format"
        )
    if not np.all(np.isfinite(array)) or (array < 0).any() or not np.array_equal(array, np.round(array)):
        raise SessionContentError(f"{where} holds negative, non-integer or non-finite counts; re-extract the file")
    return array


def _text(value: object) -> str:
    """A sentence from a char-matrix row (str) or a cell element (array of str)."""
    if isinstance(value, np.ndarray):
        value = "".join(str(v) for v in value.ravel())
    return str(value).strip()


def read_part(file: SessionFile) -> SplitPart:
    """Load tx1, sentenceText and blockIdx of one file (other variables are not read)."""
    from scipy.io import loadmat

    check_file(file)
    try:
        mat = loadmat(str(file.path), variable_names=_VARIABLES)
    except MemoryError:  # not a damaged file: keep it (and its traceback)
        raise
    except Exception as error:
        raise InputFileError(
            f"cannot read {file.path} ({type(error).__name__}: {error}); re-extract it from competitionData.tar.gz"
        ) from None
    raw = np.asarray(mat["tx1"])
    trials = list(raw.ravel()) if raw.dtype == object else [raw]
    tx1 = [_as_counts(trial, file, i) for i, trial in enumerate(trials)]
    n = len(tx1)
    if n == 0:
        raise SessionContentError(f"{file.path} has an empty tx1 (no sentences); remove the file")

    sentences = [""] * n
    if "sentenceText" in mat and np.size(mat["sentenceText"]) > 0:
        text = [_text(s) for s in np.asarray(mat["sentenceText"]).ravel()]
        if len(text) != n:
            raise SessionContentError(
                f"{file.path} has {len(text)} sentenceText rows but {n} tx1 trials; the file is inconsistent"
            )
        sentences = text
    blocks = np.full(n, -1, dtype=np.int64)
    if "blockIdx" in mat and np.size(mat["blockIdx"]) > 0:
        values = np.asarray(mat["blockIdx"]).ravel()
        if len(values) != n:
            raise SessionContentError(
                f"{file.path} has {len(values)} blockIdx values but {n} tx1 trials; the file is inconsistent"
            )
        blocks = values.astype(np.int64)
    return SplitPart(file=file, tx1=tx1, sentences=sentences, blocks=blocks)
