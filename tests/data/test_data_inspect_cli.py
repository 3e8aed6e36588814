"""`nwb-ldns inspect`, describe_session, and the shared session options."""

from __future__ import annotations

import json
import shlex
import warnings

import click
import numpy as np
import pytest
from click.testing import CliRunner

from nwb_ldns.data import load_session
from nwb_ldns.data.describe import describe_session
from nwb_ldns.cli.main import cli
from nwb_ldns.cli.session_options import load_session_from_options, session_options


def test_describe_real_file_lists_its_trial_tables(real_nwb_path):
    info = describe_session(real_nwb_path)
    tables = {t["path"]: t for t in info["trial_tables"]}
    names = ("encoding_table", "recognition_table", "timediscrimination_table")
    assert set(tables) == {f"intervals/{name}" for name in names}
    assert tables["intervals/recognition_table"]["n_rows"] == 180
    encoding = tables["intervals/encoding_table"]["duration"]
    assert 6.8 < encoding["min"] < encoding["max"] < 9.3
    assert info["units_tables"][0]["n_units"] == 35 and info["units_tables"][0]["n_spikes"] == 214278
    assert info["nwb_version"] == "2.4.0"
    assert info["count_series"] == []  # TTL event codes are not binned counts


def test_inspect_cli_real_file_and_its_suggestions_load(real_nwb_path):
    result = CliRunner().invoke(cli, ["inspect", str(real_nwb_path)])
    assert result.exit_code == 0, result.output
    for name in ("intervals/encoding_table: 90 rows", "intervals/recognition_table: 180 rows",
                 "intervals/timediscrimination_table: 180 rows", "units: 35 units, 214278 spikes"):
        assert name in result.output
    commands = [line.strip() for line in result.output.splitlines() if line.strip().startswith("nwb-ldns fit")]
    assert len(commands) >= 4
    # every suggested command parses with the session options and loads
    parse = click.command()(session_options(lambda **kw: kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for command in commands[:4]:
            args = shlex.split(command)[3:]
            args = args[: args.index("--out")]
            options = parse.main(args, standalone_mode=False)
            ds = load_session_from_options(real_nwb_path, **options, bin_width_ignored=None)
            assert ds.sizes["trial"] > 0 and ds["mask"].values.any()


def test_inspect_json_with_options_loads_session(maze_session):
    path, truth = maze_session
    result = CliRunner().invoke(
        cli,
        ["inspect", str(path), "--json", "--align", "move_onset_time", "--window", "-0.25", "0.45",
         "--bin-width", "0.005", "--units-filter", "heldout==False", "--behavior", "hand_vel"],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output[result.output.index("{"):])
    assert info["loaded"]["sizes"] == {"trial": 11, "time": 140, "unit": 4, "behavior_dim": 2}
    assert [s["path"] for s in info["behavior_series"]] == ["processing/behavior/hand_vel"]
    assert [s["path"] for s in info["count_series"]] == ["processing/ecephys/tx1"]
    suggested = [s["options"] for s in info["suggestions"]]
    assert {"unit_filter": "heldout==False", "trials_table": "trials", "align": "move_onset_time",
            "window": [-0.3, 0.5]} in suggested


def test_inspect_error_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "missing.nwb")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "does not exist" in result.output


def test_session_options_help_and_parsing(mock_counts):
    path, counts = mock_counts

    @click.command()
    @click.argument("file")
    @session_options
    def probe(file, **options):
        ds = load_session_from_options(file, **options)
        click.echo(json.dumps({"sizes": dict(ds.sizes), "sum": float(ds["counts"].values.sum())}))

    runner = CliRunner()
    help_text = runner.invoke(probe, ["--help"]).output
    for flag in ("--bin-width", "--units-table", "--trials-table", "--align", "--window START STOP",
                 "--window-length", "--units-filter", "--counts-series", "--behavior"):
        assert flag in help_text
    result = runner.invoke(probe, [str(path), "--align", "go_time", "--window", "-0.05", "0.15", "--bin-width", "0.02"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["sizes"] == {"trial": 20, "time": 10, "unit": 5}
    # go_time = start + 0.06, so the window covers bins 1..20 of each trial at 10 ms
    assert out["sum"] == pytest.approx(float(counts[:, 1:21].sum()))
    ds = load_session_from_options(path, units_filter=None, window=None, preset="ignored")
    np.testing.assert_array_equal(ds["counts"].values, counts)


def test_inspect_file_without_spiking_data_fails_after_report(tmp_path):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile

    path = tmp_path / "empty.nwb"
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    nwb = NWBFile(session_description="nothing", identifier="x", session_start_time=start)
    nwb.add_trial(start_time=0.0, stop_time=1.0)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2
    assert "intervals/trials: 1 rows" in result.output
    assert "Error: " in result.output and "no Units table and no binned-count TimeSeries" in result.output
