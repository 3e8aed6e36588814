"""export_dandiset and `nwb-ldns export`: DANDI names, dandiset.yaml, offline dandi validate, failures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nwb_ldns.errors import InputFileError, OutputExistsError
from nwb_ldns.export import export_dandiset, write_synthetic
from nwb_ldns.export.dandiset import DandiValidationError, dandi_filename
from nwb_ldns.export.testing import make_generated_dataset


def _dandi(*args: str) -> subprocess.CompletedProcess:
    """The real `dandi` command (networking is not needed for validate)."""
    env = dict(os.environ, DANDI_NO_ET="1")
    return subprocess.run(
        [str(Path(sys.executable).with_name("dandi")), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_export_then_dandi_validate_exits_zero(synthetic_files, tmp_path):
    result = export_dandiset([synthetic_files["hdf5"], synthetic_files["zarr"]], tmp_path / "ds")
    assert result.ok and result.dandi_returncode == 0 and result.inspector_errors == []
    names = sorted(p.relative_to(tmp_path / "ds").as_posix() for p in result.files)
    assert names == [
        "sub-mock01/sub-mock01_ses-ldns-seed0_desc-ldns_ecephys.nwb",
        "sub-mock01/sub-mock01_ses-ldns-seed0_desc-ldns_ecephys.nwb.zarr",
    ]
    assert (tmp_path / "ds" / "dandiset.yaml").exists()
    done = _dandi("validate", str(tmp_path / "ds"))  # independently of export_dandiset
    assert done.returncode == 0, done.stdout + done.stderr
    with pytest.raises(OutputExistsError):
        export_dandiset([synthetic_files["hdf5"]], tmp_path / "ds", validate=False)


def test_names_match_dandis_own_regex():
    from dandi.organize import ORGANIZED_FILENAME_REGEX

    for subject, session in [("mock01", "ldns-seed0"), ("T12", "t12.2022.04.28"), ("a_b c", "x@y;z")]:
        relative = dandi_filename(subject, session, "ldns")
        folder, name = relative.split("/")
        assert re.fullmatch(ORGANIZED_FILENAME_REGEX, name), name
        assert name.startswith(folder + "_")


def test_two_inputs_of_one_session_get_distinct_desc(synthetic_files, tmp_path):
    result = export_dandiset([synthetic_files["hdf5"], synthetic_files["hdf5"]], tmp_path / "ds", validate=False)
    assert [p.name for p in result.files] == [
        "sub-mock01_ses-ldns-seed0_desc-ldns_ecephys.nwb",
        "sub-mock01_ses-ldns-seed0_desc-ldns2_ecephys.nwb",
    ]


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
    assert "sub-mock01_ses-ldns-seed0_desc-ldns_ecephys.nwb" in outcome.output


def test_missing_input_is_named(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        export_dandiset([tmp_path / "nope.nwb"], tmp_path / "ds")
    text = tmp_path / "notes.nwb"
    text.write_text("not an NWB file")
    with pytest.raises(InputFileError, match="cannot read"):
        export_dandiset([text], tmp_path / "ds")
    assert list((tmp_path / "ds").glob("sub-*")) == []
