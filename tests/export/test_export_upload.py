"""Getting an export ready for `dandi upload`: the dandiset id, the placeholder refusal, metadata options in the
copies, nwbinspector's suggestions, and the one-line error without the [dandi] extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nwb_ldns.errors import InputFileError, MissingExtraError, OptionError
from nwb_ldns.export import export_dandiset
from nwb_ldns.export.dandiset import inspect_dandi
from nwb_ldns.export.dandiset_yaml import read_dandiset_id
from nwb_ldns.export.file_metadata import LDNS_PUBLICATION, build_metadata
from nwb_ldns.fileio import sha256_file


def _cli(*args: object):
    from nwb_ldns.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def _read(path: Path):
    """(NWBFile fields, subject) read back through pynwb / hdmf-zarr."""
    if path.is_dir():
        from hdmf_zarr.nwb import NWBZarrIO as IO
    else:
        from pynwb import NWBHDF5IO as IO
    with IO(str(path), mode="r") as io:
        nwb = io.read()
        fields = {k: getattr(nwb, k) for k in ("experimenter", "institution", "related_publications", "lab",
                                               "keywords", "session_id")}
        fields = {k: (list(v) if v is not None and not isinstance(v, str) else v) for k, v in fields.items()}
        subject = {k: getattr(nwb.subject, k) for k in ("subject_id", "species", "age", "age__reference")}
    return fields, subject


def test_placeholder_is_refused_for_upload(synthetic_files, tmp_path):
    with pytest.raises(OptionError, match="--dandiset-id"):
        export_dandiset([synthetic_files["hdf5"]], tmp_path / "ds", for_upload=True)
    assert not (tmp_path / "ds").exists()  # refused before anything is written
    outcome = _cli("export", synthetic_files["hdf5"], "--dandiset", tmp_path / "ds", "--for-upload")
    assert outcome.exit_code == 2
    assert outcome.output.startswith("Error: ") and outcome.output.count("\n") == 1, outcome.output
    assert "000000" in outcome.output and "--dandiset-id" in outcome.output
    for bad in ("123", "0001234", "DANDI:12345x"):
        outcome = _cli("export", synthetic_files["hdf5"], "--dandiset", tmp_path / "ds", "--dandiset-id", bad)
        assert outcome.exit_code == 2 and "6 digits" in outcome.output, outcome.output
    with pytest.raises(OptionError, match="drop --no-validate"):
        export_dandiset([synthetic_files["hdf5"]], tmp_path / "ds", dandiset_id="000123", for_upload=True,
                        validate=False)


def test_id_from_dandi_download_metadata(synthetic_files, tmp_path):
    downloaded = tmp_path / "000321"
    downloaded.mkdir()
    text = 'identifier: DANDI:000321\nname: My dandiset\nlicense:\n- spdx:CC-BY-4.0\n'
    (downloaded / "dandiset.yaml").write_text(text)
    result = export_dandiset([synthetic_files["hdf5"]], downloaded, validate=False)
    assert result.dandiset_id == "000321"
    assert (downloaded / "dandiset.yaml").read_text() == text  # dandi's own metadata is kept as it is
    # a dandiset.yaml given by path, for a new folder (whose placeholder it then replaces)
    target = tmp_path / "ds"
    export_dandiset([synthetic_files["hdf5"]], target, validate=False)
    assert read_dandiset_id(target) == "000000"
    export_dandiset([synthetic_files["zarr"]], target, validate=False, dandiset_yaml=downloaded / "dandiset.yaml")
    assert read_dandiset_id(target) == "000321"
    with pytest.raises(OptionError, match="disagree"):
        export_dandiset([synthetic_files["hdf5"]], downloaded, validate=False, dandiset_id="000999", overwrite=True)
    (tmp_path / "broken.yaml").write_text("identifier: 000123\n")  # unquoted: YAML reads a number
    with pytest.raises(InputFileError, match="quoted"):
        read_dandiset_id(tmp_path / "broken.yaml")


def test_metadata_options_land_in_the_copies(synthetic_files, tmp_path):
    metadata_file = tmp_path / "metadata.yaml"
    metadata_file.write_text(
        "NWBFile:\n  experimenter: ['Doe, Jane']\n  institution: From the file\n  lab: Neural Data Lab\n"
        "  keywords: [synthetic, LDNS]\nSubject:\n  species: Mus musculus\n  age: P100D\n")
    before = {name: sha256_file(path) for name, path in synthetic_files.items()}
    outcome = _cli("export", synthetic_files["hdf5"], synthetic_files["zarr"], "--dandiset", tmp_path / "ds",
                   "--no-validate", "--experimenter", "Curie, Marie", "--experimenter", "Skłodowska, Bronisława",
                   "--institution", "Institut Pasteur", "--metadata", metadata_file)
    assert outcome.exit_code == 0, outcome.output
    for copy in sorted((tmp_path / "ds").glob("sub-*/*")):
        fields, subject = _read(copy)
        assert fields["experimenter"] == ["Curie, Marie", "Skłodowska, Bronisława"]  # options beat the file
        assert fields["institution"] == "Institut Pasteur"
        assert fields["lab"] == "Neural Data Lab" and fields["keywords"] == ["synthetic", "LDNS"]
        assert fields["related_publications"] == [LDNS_PUBLICATION]  # the default
        assert fields["session_id"] == "ldns-seed0"
        assert subject["age"] == "P100D" and subject["age__reference"] == "birth" and subject["subject_id"] == "mock01"
    assert {name: sha256_file(path) for name, path in synthetic_files.items()} == before  # inputs untouched
    assert _read(synthetic_files["hdf5"])[0]["experimenter"] is None

    outcome = _cli("export", synthetic_files["hdf5"], "--dandiset", tmp_path / "ds2", "--no-validate",
                   "--related-publication", "https://doi.org/10.1000/xyz")
    assert outcome.exit_code == 0, outcome.output
    fields, _ = _read(next((tmp_path / "ds2").glob("sub-*/*.nwb")))
    assert fields["related_publications"] == ["https://doi.org/10.1000/xyz"]


@pytest.mark.parametrize("args, message", [
    (["--experimenter", "Marie Curie"], "'Last, First'"),
    (["--related-publication", "Kapoor et al. 2024"], "not a DOI"),
    (["--metadata", "bad_key"], "NWBFile.session_id is kept"),
    (["--metadata", "bad_section"], "only the sections NWBFile and Subject"),
])
def test_bad_metadata_is_one_line(synthetic_files, tmp_path, args, message):
    contents = {"bad_key": "NWBFile:\n  session_id: other\n", "bad_section": "Ecephys:\n  Device: []\n"}
    if args[0] == "--metadata":
        (tmp_path / "m.yaml").write_text(contents[args[1]])
        args = ["--metadata", tmp_path / "m.yaml"]
    outcome = _cli("export", synthetic_files["hdf5"], "--dandiset", tmp_path / "ds", "--no-validate", *args)
    assert outcome.exit_code == 2 and outcome.output.count("\n") == 1, outcome.output
    assert message in outcome.output
    assert not (tmp_path / "ds").exists()


def test_no_suggestion_left_that_an_option_fixes(synthetic_files, tmp_path):
    bare = export_dandiset([synthetic_files["hdf5"]], tmp_path / "bare", validate=False)
    suggestions = inspect_dandi(bare.files[0])[2]
    assert any("check_experimenter_exists" in s and "fix: --experimenter" in s for s in suggestions), suggestions
    assert any("check_institution" in s and "fix: --institution" in s for s in suggestions), suggestions

    metadata = build_metadata(experimenter=["Curie, Marie"], institution="Institut Pasteur")
    result = export_dandiset([synthetic_files["hdf5"], synthetic_files["zarr"]], tmp_path / "full",
                             metadata=metadata, dandiset_id="000123", for_upload=True)
    assert result.inspector_errors == [] and result.inspector_warnings == []
    # what is left is documented as not fixable by an option (one-row table of training sessions)
    assert result.inspector_suggestions and all("not fixable by an option" in s for s in
                                                result.inspector_suggestions), result.inspector_suggestions
    assert {s.split(": ")[1].split(" at ")[0] for s in result.inspector_suggestions} == {"check_single_row"}


@pytest.mark.parametrize("missing", ["dandi", "nwbinspector"])
def test_missing_dandi_extra_is_one_line(synthetic_files, tmp_path, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import now raises ImportError, as when not installed
    with pytest.raises(MissingExtraError, match=rf"needs the optional package {missing}.*nwb-ldns\[dandi\]"):
        export_dandiset([synthetic_files["hdf5"]], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()  # refused before copying
    outcome = _cli("export", synthetic_files["hdf5"], "--dandiset", tmp_path / "ds")
    assert outcome.exit_code == 2 and outcome.output.count("\n") == 1, outcome.output
    assert "pip install 'nwb-ldns[dandi]'" in outcome.output
    # laying the files out does not need the extra
    result = export_dandiset([synthetic_files["hdf5"]], tmp_path / "ds", validate=False)
    assert [p.name for p in result.files] == ["sub-mock01.nwb"]
