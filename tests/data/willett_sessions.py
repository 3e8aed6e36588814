"""Two small sessions in the Willett et al. 2023 layout, written by `convert willett` from competitionData-format
.mat fixtures (tests/convert/helpers.py): 256-channel tx1 counts in 20 ms bins, the electrodes table of the four
arrays, trials with the release's train/test split, and two sentences longer than the human preset's 512 bins.
"""

from __future__ import annotations

from pathlib import Path

from tests.convert.helpers import write_competition_mat

# (session, split) -> sentence lengths in bins; 600 and 520 are over the reference's max_seqlen of 512
LENGTHS = {
    ("t12.2022.04.28", "train"): [30, 600, 40],
    ("t12.2022.04.28", "test"): [520, 35],
    ("t12.2022.05.05", "train"): [25, 45],
    ("t12.2022.05.05", "test"): [33],
}
N_LONG = {"train": 1, "test": 1}


def write_willett_sessions(root: Path) -> list[Path]:
    """Convert the fixture release under root; returns the two NWB files in session order."""
    from nwb_ldns.convert import convert_willett

    release = root / "competitionData"
    for seed, ((session, split), lengths) in enumerate(LENGTHS.items()):
        sentences = [f"sentence {seed} {i}" for i in range(len(lengths))]
        blocks = [2 + seed] * len(lengths)
        write_competition_mat(release / split / f"{session}.mat", lengths, sentences, blocks, seed=seed)
    return convert_willett(release, root / "nwb")
