"""export_dandiset and `nwb-ldns export`: dandi organize's names, dandiset.yaml, offline dandi validate, failures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from nwb_ldns.errors import InputFileError, OutputExistsError
from nwb_ldns.export import export_dandiset, write_synthetic
from nwb_ldns.export.dandi_names import FileFacts, organized_paths
from nwb_ldns.export.dandiset import DandiValidationError
from nwb_ldns.export.testing import make_generated_dataset


def _dandi(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real `dandi` command (networking is not needed for validate or organize)."""
    env = dict(os.environ, DANDI_NO_ET="1")
    return subprocess.run(
        [str(Path(sys.executable).with_name("dandi")), *args], capture_output=True, text=True, env=env, timeout=300,
        cwd=cwd,
    )


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.glob("sub-*/*"))


def test_export_then_dandi_validate_exits_zero(synthetic_files, tmp_path):
    from dandi.dandiset import Dandiset

    result = export_dandiset([synthetic_files["hdf5"], synthetic_files["zarr"]], tmp_path / "ds",
                             dandiset_id="DANDI:000123", for_upload=True)
    assert result.ok and result.dandi_returncode == 0 and result.inspector_errors == []
    # one subject, one session: dandi organize names them by subject only
    assert _tree(tmp_path / "ds") == ["sub-mock01/sub-mock01.nwb", "sub-mock01/sub-mock01.nwb.zarr"]
    assert Dandiset(tmp_path / "ds").identifier == "000123"  # as `dandi upload` reads it
    assert result.dandiset_id == "000123" and "dandi upload" in result.summary()
    done = _dandi("validate", str(tmp_path / "ds"))  # independently of export_dandiset
    assert done.returncode == 0, done.stdout + done.stderr
    with pytest.raises(OutputExistsError):
        export_dandiset([synthetic_files["hdf5"]], tmp_path / "ds", validate=False)


@pytest.fixture(scope="module")
def three_sessions(tmp_path_factory) -> list[Path]:
    """Two files of session ldns-seed0 (different object_ids) and one of ldns-seed1."""
    folder = tmp_path_factory.mktemp("three")
    ds0 = make_generated_dataset(n_trials=3, n_bins=8, n_units=3, seed=0)
    ds1 = make_generated_dataset(n_trials=3, n_bins=8, n_units=3, seed=1)
    return [write_synthetic(ds0, folder / "a.nwb"), write_synthetic(ds0, folder / "b.nwb"),
            write_synthetic(ds1, folder / "c.nwb")]


def test_names_are_what_dandi_organize_gives(three_sessions, tmp_path):
    result = export_dandiset(three_sessions, tmp_path / "ours", validate=False)
    organized = tmp_path / "theirs"
    organized.mkdir()
    (organized / "dandiset.yaml").write_text('identifier: "000123"\n')
    done = _dandi("organize", "-f", "copy", "-d", str(organized), *map(str, three_sessions))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _tree(tmp_path / "ours") == _tree(organized)
    names = [p.relative_to(tmp_path / "ours").as_posix() for p in result.files]
    assert names[2] == "sub-mock01/sub-mock01_ses-ldns-seed1.nwb"
    assert all(re.fullmatch(r"sub-mock01/sub-mock01_ses-ldns-seed0_obj-[0-9a-z]+\.nwb", n) for n in names[:2])


def test_naming_rule_matches_dandi_on_metadata():
    """Labels, sessions, session ids from start times and modalities, against dandi's own naming function."""
    from dandi.organize import ORGANIZED_FILENAME_REGEX, create_unique_filenames_from_metadata

    noon, midnight = datetime(2023, 5, 1, 12, 30, 5, tzinfo=timezone.utc), datetime(2023, 5, 2, tzinfo=timezone.utc)
    cases = [
        [("a_b c", "x@y;z", noon, ["Units", "TimeSeries (2)", "AnnotationSeries"])],
        [("T12", "t12.2022.04.28", noon, ["ElectricalSeries", "SpatialSeries", "Units"]),
         ("T12", "t12.2022.05.05", noon, ["ElectricalSeries"])],
        [("m1", None, noon, ["RoiResponseSeries"]), ("m1", None, midnight, ["TimeSeries"])],
        [("m1", None, midnight, []), ("m2", None, midnight, ["Position"])],
    ]
    for case in cases:
        records = [{"path": f"/in/f{i}.nwb", "subject_id": s, "session_id": ses, "session_start_time": t,
                    "nd_types": types} for i, (s, ses, t, types) in enumerate(case)]
        theirs = [r["dandi_path"] for r in create_unique_filenames_from_metadata(records)]
        facts = [FileFacts(path=Path(f"/in/f{i}.nwb"), subject_id=s, session_id=ses, session_start_time=t,
                           object_id=f"id-{i}", neurodata_types=frozenset(n.split()[0] for n in types))
                 for i, (s, ses, t, types) in enumerate(case)]
        ours = organized_paths(facts)
        assert ours == theirs, case
        assert all(re.fullmatch(ORGANIZED_FILENAME_REGEX, p.split("/")[1]) for p in ours)


def test_one_file_twice_is_refused_and_desc_labels(synthetic_files, three_sessions, tmp_path):
    with pytest.raises(InputFileError, match="same NWB file"):
        export_dandiset([synthetic_files["hdf5"], synthetic_files["hdf5"]], tmp_path / "ds", validate=False)
    assert not (tmp_path / "ds").exists()
    result = export_dandiset(three_sessions[2:], tmp_path / "ds", validate=False, desc="ldns v1")
    assert [p.name for p in result.files] == ["sub-mock01_desc-ldns-v1.nwb"]


def test_a_different_session_at_the_same_name_is_not_overwritten(three_sessions, tmp_path):
    export_dandiset(three_sessions[:1], tmp_path / "ds", validate=False)
    with pytest.raises(OutputExistsError, match="in one call"):
        export_dandiset(three_sessions[2:], tmp_path / "ds", validate=False, overwrite=True)


def test_dandi_errors_raise_and_cli_exits_nonzero(tmp_path):
    # a source Subject without species: copied faithfully, so DANDI's CRITICAL species check must fail
    subject = {"subject_id": "x1", "sex": "M", "age": "P9D"}
    ds = make_generated_dataset(n_trials=4, n_bins=10, n_units=3, subject=subject)
    bad = write_synthetic(ds, tmp_path / "bad.nwb")
    with pytest.raises(DandiValidationError, match="species") as caught:
        export_dandiset([bad], tmp_path / "ds1")
    assert caught.value.result.dandi_returncode != 0

    from nwb_ldns.cli.main import cli

    outcome = CliRunner().invoke(cli, ["export", str(bad), "--dandiset", str(tmp_path / "ds2")])
    assert outcome.exit_code == 2
    assert "species" in outcome.output


def test_cli_export_prints_result(synthetic_files, tmp_path):
    from nwb_ldns.cli.main import cli

    outcome = CliRunner().invoke(cli, ["export", str(synthetic_files["hdf5"]), "--dandiset", str(tmp_path / "ds")])
    assert outcome.exit_code == 0, outcome.output
    assert "dandi validate: exit 0" in outcome.output
    assert "sub-mock01/sub-mock01.nwb" in outcome.output
    assert "placeholder id 000000" in outcome.output  # offline validation is allowed, and says how to upload


def test_missing_input_is_named(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        export_dandiset([tmp_path / "nope.nwb"], tmp_path / "ds")
    text = tmp_path / "notes.nwb"
    text.write_text("not an NWB file")
    with pytest.raises(InputFileError, match="cannot read"):
        export_dandiset([text], tmp_path / "ds")
    assert list((tmp_path / "ds").glob("sub-*")) == []
