"""The output rule (nwb_ldns.fileio.check_output) through every command: a table of refused invocations.

Each row is a command a user could type by mistake. It must be refused with exit code 2 and one `Error:` line
naming the problem, no traceback, and the workspace byte-identical afterwards (every input's sha256 unchanged,
nothing deleted, no partial or final output added). The second table is the same rule through the Python API;
the third shows that `--overwrite` still replaces our own earlier output.
"""

from __future__ import annotations

import pytest

from hardening_helpers import FAST_SET, assert_refused, invoke, partials, snapshot

INPUT = "is also an input"
INSIDE = "lies inside the input"
CONTAINS = "contains the input"
EXISTS = "already exists"
NOT_NWB = "is not an NWB file written by nwb-ldns"
NOT_MODEL = "is not an nwb-ldns model directory"
NOT_JSON = "is not a JSON result written by nwb-ldns"
NOT_REPORT = "is not an nwb-ldns report directory"
EVALUATE = ("evaluate", "{ws}/real.nwb", "{ws}/synth.nwb", "--bootstrap", "0", "--no-memorisation")
DANDI_TARGET = "{ws}/dandiset"

# (id, arguments with {ws} for the workspace, fragment of the expected error line)
REFUSED = [
    # an output that is an input of the same command (the data-loss cases first)
    ("evaluate-json-onto-real", (*EVALUATE, "--json", "{ws}/real.nwb", "--overwrite"), INPUT),
    ("evaluate-json-onto-synthetic", (*EVALUATE, "--json", "{ws}/synth.nwb", "--overwrite"), INPUT),
    ("evaluate-report-onto-real", (*EVALUATE, "--report", "{ws}/real.nwb", "--overwrite"), INPUT),
    ("evaluate-report-containing-inputs", (*EVALUATE, "--report", "{ws}", "--overwrite"), CONTAINS),
    ("baseline-psth-onto-its-session", ("baseline", "psth", "{ws}/real.nwb", "--out", "{ws}/real.nwb",
                                        "--overwrite"), INPUT),
    ("baseline-lds-onto-its-session", ("baseline", "lds", "{ws}/real.nwb", "--out", "{ws}/real.nwb",
                                       "--overwrite"), INPUT),
    ("sample-onto-its-model", ("sample", "{ws}/model.ldns", "--n", "2", "--out", "{ws}/model.ldns",
                               "--overwrite"), INPUT),
    ("sample-onto-model-config", ("sample", "{ws}/model.ldns", "--n", "2", "--out", "{ws}/model.ldns/config.json",
                                  "--overwrite"), INSIDE),
    ("sample-into-model-checkpoints", ("sample", "{ws}/model.ldns", "--n", "2", "--out",
                                       "{ws}/model.ldns/checkpoints", "--overwrite"), INSIDE),
    ("sample-new-file-inside-model", ("sample", "{ws}/model.ldns", "--n", "2", "--out",
                                      "{ws}/model.ldns/synthetic.nwb"), INSIDE),
    ("sample-onto-folder-holding-model", ("sample", "{ws}/model.ldns", "--n", "2", "--out", "{ws}",
                                          "--overwrite"), CONTAINS),
    ("fit-onto-its-session", ("fit", "{ws}/real.nwb", "--preset", "tiny", "--out", "{ws}/real.nwb",
                              "--overwrite"), INPUT),
    ("fit-onto-folder-holding-session", ("fit", "{ws}/real.nwb", "--preset", "tiny", "--out", "{ws}",
                                         "--overwrite"), CONTAINS),
    # --overwrite onto something the same kind of command did not write
    ("sample-overwrite-unrelated-dir", ("sample", "{ws}/model.ldns", "--n", "2", "--out", "{ws}/unrelated",
                                        "--overwrite"), NOT_NWB),
    ("sample-overwrite-unrelated-file", ("sample", "{ws}/model.ldns", "--n", "2", "--out", "{ws}/notes.txt",
                                         "--overwrite"), NOT_NWB),
    ("sample-overwrite-recording", ("sample", "{ws}/model.ldns", "--n", "2", "--out", "{ws}/real.nwb",
                                    "--overwrite"), NOT_NWB),
    ("sample-zarr-overwrite-unrelated-dir", ("sample", "{ws}/model.ldns", "--n", "2", "--zarr", "--out",
                                             "{ws}/unrelated", "--overwrite"), NOT_NWB),
    ("baseline-overwrite-unrelated-dir", ("baseline", "psth", "{ws}/real.nwb", "--out", "{ws}/unrelated",
                                          "--overwrite"), NOT_NWB),
    ("baseline-overwrite-unrelated-file", ("baseline", "psth", "{ws}/real.nwb", "--out", "{ws}/notes.txt",
                                           "--overwrite"), NOT_NWB),
    ("baseline-overwrite-model", ("baseline", "lds", "{ws}/real.nwb", "--out", "{ws}/model.ldns",
                                  "--overwrite"), NOT_NWB),
    ("evaluate-json-overwrite-unrelated-dir", (*EVALUATE, "--json", "{ws}/unrelated", "--overwrite"), NOT_JSON),
    ("evaluate-json-overwrite-unrelated-file", (*EVALUATE, "--json", "{ws}/notes.txt", "--overwrite"), NOT_JSON),
    ("evaluate-json-overwrite-report", (*EVALUATE, "--json", "{ws}/report", "--overwrite"), NOT_JSON),
    ("evaluate-json-overwrite-model-config", (*EVALUATE, "--json", "{ws}/model.ldns/config.json", "--overwrite"),
     NOT_JSON),
    ("evaluate-report-overwrite-unrelated-dir", (*EVALUATE, "--report", "{ws}/unrelated", "--overwrite"),
     NOT_REPORT),
    ("evaluate-report-overwrite-json", (*EVALUATE, "--report", "{ws}/result.json", "--overwrite"), NOT_REPORT),
    ("evaluate-report-overwrite-model", (*EVALUATE, "--report", "{ws}/model.ldns", "--overwrite"), NOT_REPORT),
    ("fit-overwrite-unrelated-dir", ("fit", "{ws}/real.nwb", "--preset", "tiny", "--out", "{ws}/unrelated",
                                     "--overwrite"), NOT_MODEL),
    ("fit-overwrite-unrelated-file", ("fit", "{ws}/real.nwb", "--preset", "tiny", "--out", "{ws}/notes.txt",
                                      "--overwrite"), NOT_MODEL),
    ("fit-overwrite-report", ("fit", "{ws}/real.nwb", "--preset", "tiny", "--out", "{ws}/report",
                              "--overwrite"), NOT_MODEL),
    ("fit-overwrite-model-checkpoints", ("fit", "{ws}/real.nwb", "--preset", "tiny", "--out",
                                         "{ws}/model.ldns/checkpoints", "--overwrite"), NOT_MODEL),
    ("convert-lorenz-overwrite-unrelated-file", ("convert", "lorenz", "{ws}/notes.txt", "--trials", "10",
                                                 "--no-progress", "--overwrite"), NOT_NWB),
    ("convert-lorenz-overwrite-recording", ("convert", "lorenz", "{ws}/real.nwb", "--trials", "10",
                                            "--no-progress", "--overwrite"), NOT_NWB),
    ("export-overwrite-unrelated-dandi-file", ("export", "{ws}/synth.nwb", "--dandiset", DANDI_TARGET,
                                               "--no-validate", "--overwrite"), NOT_NWB),
    # two outputs of one command that overlap
    ("evaluate-json-inside-report", (*EVALUATE, "--json", "{ws}/new-report/results.json", "--report",
                                     "{ws}/new-report"), "overlap"),
    ("evaluate-json-and-report-same-path", (*EVALUATE, "--json", "{ws}/out", "--report", "{ws}/out"), "overlap"),
    # an existing output without --overwrite
    ("sample-existing-without-overwrite", ("sample", "{ws}/model.ldns", "--n", "2", "--out", "{ws}/synth.nwb"),
     EXISTS),
    ("baseline-existing-without-overwrite", ("baseline", "psth", "{ws}/real.nwb", "--out", "{ws}/synth.nwb"),
     EXISTS),
    ("evaluate-json-existing-without-overwrite", (*EVALUATE, "--json", "{ws}/result.json"), EXISTS),
    ("evaluate-report-existing-without-overwrite", (*EVALUATE, "--report", "{ws}/report"), EXISTS),
    ("fit-existing-without-overwrite", ("fit", "{ws}/real.nwb", "--preset", "tiny", "--out", "{ws}/model.ldns"),
     EXISTS),
    ("convert-lorenz-existing-without-overwrite", ("convert", "lorenz", "{ws}/synth.nwb", "--trials", "10",
                                                   "--no-progress"), EXISTS),
    ("export-existing-without-overwrite", ("export", "{ws}/synth.nwb", "--dandiset", DANDI_TARGET,
                                           "--no-validate"), EXISTS),
    # --resume of something that is not a model directory
    ("fit-resume-unrelated-dir", ("fit", "{ws}/real.nwb", "--out", "{ws}/unrelated", "--resume"),
     "not a model directory"),
]


def _arguments(arguments: tuple[str, ...], root) -> list[str]:
    return [argument.format(ws=root) for argument in arguments]


@pytest.mark.parametrize("arguments, fragment", [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED])
def test_refused_command_changes_nothing(workspace, arguments, fragment):
    before = snapshot(workspace)
    result = invoke(*_arguments(arguments, workspace))
    assert_refused(result, fragment)
    assert snapshot(workspace) == before


def test_refused_command_in_a_fresh_process(workspace):
    """The headline case through the installed console script: real stderr, real exit code."""
    from tests.cli_helpers import run_cli

    before = snapshot(workspace)
    result = run_cli(*_arguments(REFUSED[0][1], workspace), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == [
        f"Error: --json {workspace}/real.nwb is also an input of this command; writing it would destroy the input, "
        "choose another --json path"]
    assert snapshot(workspace) == before


def _generated():
    from nwb_ldns.export.testing import make_generated_dataset

    return make_generated_dataset(n_trials=4, n_bins=32, n_units=8, bin_width=0.01)


def _write_synthetic(target: str, backend: str = "hdf5", inputs: tuple[str, ...] = ()):
    def call(ws):
        from nwb_ldns.export import write_synthetic

        write_synthetic(_generated(), ws / target, backend=backend, overwrite=True,
                        inputs=[ws / name for name in inputs])
    return call


def _save_model(target: str):
    def call(ws):
        from nwb_ldns.model_dir import LDNSModel

        LDNSModel.load(ws / "model.ldns", device="cpu").save(ws / target, overwrite=True)
    return call


def _fit(target: str):
    def call(ws):
        from nwb_ldns.data import load_session
        from nwb_ldns.train import fit

        fit(load_session(ws / "real.nwb"), ws / target, preset="tiny", overwrite=True, progress=False)
    return call


def _export(validate: bool = False):
    def call(ws):
        from nwb_ldns.export import export_dandiset

        export_dandiset([ws / "synth.nwb"], ws / "dandiset", validate=validate, overwrite=True)
    return call


def _convert_lorenz(target: str):
    def call(ws):
        from nwb_ldns.convert import convert_lorenz

        convert_lorenz(ws / target, n_trials=10, n_neurons=4, n_bins=8, progress=False, overwrite=True)
    return call


# (id, call(workspace), fragment of the error message)
API_REFUSED = [
    ("write_synthetic-unrelated-dir", _write_synthetic("unrelated"), NOT_NWB),
    ("write_synthetic-zarr-unrelated-dir", _write_synthetic("unrelated", backend="zarr"), NOT_NWB),
    ("write_synthetic-unrelated-file", _write_synthetic("notes.txt"), NOT_NWB),
    ("write_synthetic-recording", _write_synthetic("real.nwb"), NOT_NWB),
    ("write_synthetic-model-dir", _write_synthetic("model.ldns"), NOT_NWB),
    ("write_synthetic-declared-input", _write_synthetic("synth.nwb", inputs=("synth.nwb",)), INPUT),
    ("LDNSModel.save-unrelated-dir", _save_model("unrelated"), NOT_MODEL),
    ("LDNSModel.save-onto-itself", _save_model("model.ldns"), INPUT),
    ("fit-unrelated-dir", _fit("unrelated"), NOT_MODEL),
    ("convert_lorenz-unrelated-dir", _convert_lorenz("unrelated"), NOT_NWB),
    ("export_dandiset-unrelated-file", _export(), NOT_NWB),
]


@pytest.mark.parametrize("call, fragment", [row[1:] for row in API_REFUSED], ids=[row[0] for row in API_REFUSED])
def test_refused_api_call_changes_nothing(workspace, call, fragment):
    from nwb_ldns.errors import NWBLDNSError

    before = snapshot(workspace)
    with pytest.raises(NWBLDNSError) as raised:
        call(workspace)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
    assert snapshot(workspace) == before


# (id, arguments, the output our earlier command wrote there); --overwrite must replace it and leave no partial
REPLACED = [
    ("sample-over-our-nwb", ("sample", "{ws}/model.ldns", "--n", "3", "--sampler", "ddim", "--steps", "2", "--quiet",
                             "--out", "{ws}/synth.nwb", "--overwrite"), "synth.nwb"),
    ("baseline-over-our-nwb", ("baseline", "psth", "{ws}/real.nwb", "--n", "3", "--out", "{ws}/synth.nwb",
                               "--overwrite"), "synth.nwb"),
    ("convert-lorenz-over-our-nwb", ("convert", "lorenz", "{ws}/synth.nwb", "--trials", "10", "--neurons", "4",
                                     "--bins", "8", "--no-progress", "--overwrite"), "synth.nwb"),
    ("evaluate-json-over-our-json", (*EVALUATE, "--seed", "7", "--json", "{ws}/result.json", "--overwrite"),
     "result.json"),
    ("evaluate-report-over-our-report", (*EVALUATE, "--seed", "7", "--report", "{ws}/report", "--overwrite"),
     "report"),
    ("fit-over-our-model", ("fit", "{ws}/real.nwb", "--preset", "tiny", *FAST_SET, "--seed", "3", "--out",
                            "{ws}/model.ldns", "--overwrite"), "model.ldns"),
]


@pytest.mark.parametrize("arguments, output", [row[1:] for row in REPLACED], ids=[row[0] for row in REPLACED])
def test_overwrite_replaces_our_own_output(scratch, arguments, output):
    before = snapshot(scratch)
    result = invoke(*_arguments(arguments, scratch))
    assert result.exit_code == 0, result.output
    after = snapshot(scratch)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed and all(key == output or key.startswith(output + "/") for key in changed), changed
    assert not partials(scratch)
    inputs = [key for key in before if key.split("/")[0] in ("real.nwb", "model.ldns") and output != "model.ldns"]
    assert all(after[key] == before[key] for key in inputs)

