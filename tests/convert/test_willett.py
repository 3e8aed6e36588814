"""The Willett competitionData converter on fixtures built like the real release (data-formats.md §1.6)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from nwb_ldns.convert import convert_willett
from nwb_ldns.convert.willett_channels import arrays, channel_table
from nwb_ldns.errors import InputFileError, NWBLDNSError, OutputExistsError, SessionContentError
from tests.convert.helpers import write_competition_mat

FIRST = "sub-T12_ses-t12-2022-04-28_ecephys.nwb"
SECOND = "sub-T12_ses-t12-2022-05-05_ecephys.nwb"


def _read(path):
    from pynwb import NWBHDF5IO

    io = NWBHDF5IO(str(path), "r")
    return io, io.read()


def test_channel_map_covers_256_channels_once():
    grids = np.concatenate([layout.grid.ravel() for layout in arrays()])
    assert sorted(grids.tolist()) == list(range(256))
    table = channel_table()
    assert set(table["array"][:32]) == {"6v_inferior"} and set(table["array"][32:96]) == {"6v_superior"}
    assert set(table["array"][96:128]) == {"6v_inferior"} and set(table["array"][128:160]) == {"44_inferior"}
    assert set(table["array"][160:224]) == {"44_superior"} and set(table["array"][224:]) == {"44_inferior"}
    # readme grid corners: 6v superior top-left is channel 62, 44 inferior bottom-right is 253
    assert (table["row"][62], table["col"][62]) == (0, 0) and (table["row"][253], table["col"][253]) == (7, 7)


def test_converts_one_file_per_session_with_exact_counts(competition_dir, tmp_path):
    root, truth = competition_dir
    paths = convert_willett(root, tmp_path / "out")
    assert [p.name for p in paths] == [FIRST, SECOND]

    io, nwb = _read(paths[0])
    with io:
        series = nwb.processing["ecephys"]["tx1"]
        assert series.rate == 50.0 and series.starting_time == 0.0 and series.timestamps is None
        data = series.data[:]
        assert data.shape == (60 + 70 + 55 + 40 + 90 + 50 + 30, 256)
        trials = nwb.trials.to_dataframe()
        # recording order: holdout (blocks 1, 2), train (3, 3, 4), test (5, 5)
        assert trials["data_split"].tolist() == ["holdout"] * 2 + ["train"] * 3 + ["test"] * 2
        assert trials["block"].tolist() == [1, 2, 3, 3, 4, 5, 5]
        assert trials["sentence"].tolist() == ["", "", "hello world", "how are you", "i am fine", "good night",
                                               "see you"]
        for _, row in trials.iterrows():
            first = int(round(row["start_time"] * 50))
            rows = data[first : first + row["n_bins"]]
            assert int(round((row["stop_time"] - row["start_time"]) * 50)) == row["n_bins"]
            np.testing.assert_array_equal(rows, truth[("t12.2022.04.28", row["data_split"])][row["source_index"]])
        assert nwb.session_id == "t12-2022-04-28"
        assert nwb.session_start_time.utcoffset().total_seconds() == -7 * 3600  # PDT on 2022-04-28
        assert (nwb.subject.subject_id, nwb.subject.species, nwb.subject.sex, nwb.subject.age) == (
            "T12", "Homo sapiens", "F", "P18Y/")
        electrodes = nwb.electrodes.to_dataframe()
        assert len(electrodes) == 256 and electrodes.index.tolist() == list(range(256))
        assert sorted(nwb.electrode_groups) == ["44_inferior", "44_superior", "6v_inferior", "6v_superior"]
        assert electrodes.loc[62, "group_name"] == "6v_superior"
        assert (electrodes.loc[62, "rel_x"], electrodes.loc[62, "rel_y"]) == (0.0, 2800.0)

    io, nwb = _read(paths[1])
    with io:
        assert nwb.trials["data_split"].data[:].tolist() == ["train", "train", "test"]
        assert len(nwb.processing["ecephys"]["tx1"].data) == 270


def test_output_is_dandi_clean(competition_dir, tmp_path, inspect_dandi):
    root, _ = competition_dir
    for path in convert_willett(root, tmp_path / "out"):
        assert inspect_dandi(path) == []


def test_inputs_not_modified_and_parent_folder_accepted(competition_dir, tmp_path):
    root, _ = competition_dir
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    paths = convert_willett(root.parent, tmp_path / "out")  # the folder holding competitionData/
    assert len(paths) == 2
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_existing_output_refused_without_overwrite(competition_dir, tmp_path):
    root, _ = competition_dir
    out = tmp_path / "out"
    out.mkdir()
    (out / SECOND).write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        convert_willett(root, out)
    assert (out / SECOND).read_bytes() == b"old" and not (out / FIRST).exists()
    with pytest.raises(OutputExistsError, match="not an NWB file written by nwb-ldns"):  # not ours to replace
        convert_willett(root, out, overwrite=True)
    assert (out / SECOND).read_bytes() == b"old" and not (out / FIRST).exists()  # checked before writing any
    (out / SECOND).unlink()
    convert_willett(root, out)
    convert_willett(root, out, overwrite=True)  # our own outputs are replaced
    assert (out / SECOND).stat().st_size > 10_000


def test_missing_directory(tmp_path):
    with pytest.raises(InputFileError, match="not a directory"):
        convert_willett(tmp_path / "nope", tmp_path / "out")


def test_folder_without_split_folders(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(InputFileError, match="train/"):
        convert_willett(tmp_path / "data", tmp_path / "out")


def test_no_mat_files(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("x")
    with pytest.raises(InputFileError, match="no .mat files"):
        convert_willett(tmp_path, tmp_path / "out")


def test_corrupt_mat_file_named_and_nothing_written(competition_dir, tmp_path):
    root, _ = competition_dir
    (root / "test" / "t12.2022.05.05.mat").write_bytes(b"MATLAB 5.0 MAT-file, but then garbage" + b"\x00" * 200)
    with pytest.raises(InputFileError, match=r"t12\.2022\.05\.05\.mat"):
        convert_willett(root, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_truncated_mat_file(competition_dir, tmp_path):
    root, _ = competition_dir
    path = root / "train" / "t12.2022.04.28.mat"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(NWBLDNSError, match=r"t12\.2022\.04\.28\.mat.*(truncated|re-extract)"):
        convert_willett(root, tmp_path / "out")


def test_mat_without_tx1(tmp_path):
    import scipy.io as sio

    (tmp_path / "train").mkdir()
    sio.savemat(tmp_path / "train" / "t12.2022.04.28.mat", {"spikePow": np.zeros((3, 3))})
    with pytest.raises(SessionContentError, match="tx1"):
        convert_willett(tmp_path, tmp_path / "out")


def test_wrong_channel_count(tmp_path):
    import scipy.io as sio

    tx = np.empty((1, 1), dtype=object)
    tx[0, 0] = np.ones((300, 128), np.uint8)
    (tmp_path / "train").mkdir()
    sio.savemat(tmp_path / "train" / "t12.2022.04.28.mat", {"tx1": tx})
    with pytest.raises(SessionContentError, match="256"):
        convert_willett(tmp_path, tmp_path / "out")


def test_badly_named_session_file(tmp_path):
    write_competition_mat(tmp_path / "train" / "session1.mat", [300], ["x"], [1])
    with pytest.raises(InputFileError, match="t12.2022.04.28"):
        convert_willett(tmp_path, tmp_path / "out")


def test_cli_converts_and_reports_errors_in_one_line(competition_dir, tmp_path):
    from nwb_ldns.cli.main import cli

    root, _ = competition_dir
    runner = CliRunner()
    result = runner.invoke(cli, ["convert", "willett", str(root), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert FIRST in result.output and SECOND in result.output
    again = runner.invoke(cli, ["convert", "willett", str(root), str(tmp_path / "out")])
    assert again.exit_code == 2 and "--overwrite" in again.output
    missing = runner.invoke(cli, ["convert", "willett", str(tmp_path / "missing"), str(tmp_path / "o2")])
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1
    assert issubclass(InputFileError, NWBLDNSError)
