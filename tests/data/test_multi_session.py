"""Issue 13 item 7, data side: `--channels` selects channels of a counts series by the electrodes table, and
`load_sessions` pools several sessions with the same channels into one Dataset naming every source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nwb_ldns.data import load_session, load_sessions
from nwb_ldns.errors import OptionError, SessionContentError
from tests.data.willett_sessions import LENGTHS, write_willett_sessions
from tests.hardening.hardening_helpers import assert_refused, invoke, snapshot

AREA_6V = "location == 'area 6v'"


@pytest.fixture(scope="module")
def willett(tmp_path_factory) -> list[Path]:
    return write_willett_sessions(tmp_path_factory.mktemp("willett"))


def _write_counts_file(path: Path, *, electrodes: list[str] | None, region: list[int] | None = None,
                       n_channels: int = 4) -> np.ndarray:
    """A file with a (time, channel) count series: a plain TimeSeries (electrodes table with the given locations,
    or none), or an ElectricalSeries whose `region` maps column j to electrodes row region[j]."""
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.ecephys import ElectricalSeries

    nwb = NWBFile(session_description="counts", identifier=path.stem,
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    counts = (np.arange(40 * n_channels).reshape(40, n_channels) % 5).astype(np.uint8)
    if electrodes is not None:
        device = nwb.create_device(name="array")
        group = nwb.create_electrode_group(name="g", description="g", location="brain", device=device)
        for location in electrodes:
            nwb.add_electrode(group=group, location=location)
    ecephys = nwb.create_processing_module(name="ecephys", description="counts")
    if region is not None:
        table_region = nwb.create_electrode_table_region(region, "channels")
        ecephys.add(ElectricalSeries(name="tx", data=counts, electrodes=table_region, rate=50.0,
                                     description="threshold crossings", conversion=1.0))
    else:
        ecephys.add(TimeSeries(name="tx", data=counts, unit="counts", rate=50.0, description="counts"))
    nwb.add_trial(start_time=0.0, stop_time=0.4)
    nwb.add_trial(start_time=0.4, stop_time=0.8)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return counts


def test_channels_select_the_area_6v_electrodes_of_a_willett_file(willett):
    every = load_session(willett[0], counts_series="tx1")
    area = load_session(willett[0], counts_series="tx1", channel_filter=AREA_6V)
    rest = load_session(willett[0], counts_series="tx1", channel_filter="location!=area 6v")
    assert every.sizes["unit"] == 256 and area.sizes["unit"] == 128 and rest.sizes["unit"] == 128
    assert area["unit"].values.tolist() == list(range(128))  # columns 0-127 of tx1, as the reference keeps
    assert rest["unit"].values.tolist() == list(range(128, 256))
    np.testing.assert_array_equal(area["counts"].values, every["counts"].values[..., :128])
    assert set(area["unit_location"].values.tolist()) == {"area 6v"}
    assert area["unit_electrode_id"].values.tolist() == list(range(128))
    assert area.attrs["channel_filter"] == AREA_6V


def test_channels_follow_the_electrodes_region_of_an_electrical_series(tmp_path):
    path = tmp_path / "region.nwb"
    # column j is electrode region[j]: columns 1 and 3 sit on the "motor" electrodes (rows 0 and 2)
    counts = _write_counts_file(path, electrodes=["motor", "visual", "motor", "visual"], region=[1, 0, 3, 2])
    ds = load_session(path, counts_series="tx", channel_filter="location==motor")
    assert ds["unit"].values.tolist() == [1, 3]
    assert ds["unit_electrode_id"].values.tolist() == [0, 2]
    first = ds.sel(trial=ds["trial"].values[0])["counts"].values
    np.testing.assert_array_equal(first, counts[:20][:, [1, 3]])


REFUSED = [  # (id, file kind, options, error fragment)
    ("matches-nothing", "willett", ["--counts-series", "tx1", "--channels", "location==area 7"],
     "selects none of the 256 channels"),
    ("unknown-column", "willett", ["--counts-series", "tx1", "--channels", "area==6v"],
     "has no scalar column 'area'; filter on one of: location"),
    ("bad-term", "willett", ["--counts-series", "tx1", "--channels", "location>3"], "cannot read --channels term"),
    ("without-counts-series", "willett", ["--channels", AREA_6V], "add --counts-series"),
    ("units-filter-on-series", "willett", ["--counts-series", "tx1", "--units-filter", "location==x"],
     "use --channels"),
    ("no-electrodes-table", "bare", ["--counts-series", "tx", "--channels", "location==motor"],
     "no electrodes table"),
    ("electrodes-count-differs", "three-electrodes", ["--counts-series", "tx", "--channels", "location==motor"],
     "cannot be matched to electrodes by position"),
]


@pytest.mark.parametrize("case,kind,options,fragment", REFUSED, ids=[row[0] for row in REFUSED])
def test_bad_channel_selection_is_one_error_line(willett, tmp_path, case, kind, options, fragment):
    if kind == "willett":
        path = willett[0]
    else:
        path = tmp_path / f"{kind}.nwb"
        _write_counts_file(path, electrodes=None if kind == "bare" else ["motor", "motor", "visual"])
    before = snapshot(path.parent)
    assert_refused(invoke("inspect", path, *options), fragment)
    assert snapshot(path.parent) == before


def test_two_sessions_pool_into_one_dataset_naming_both(willett):
    singles = [load_session(p, counts_series="tx1", channel_filter=AREA_6V) for p in willett]
    pooled = load_sessions(willett, counts_series="tx1", channel_filter=AREA_6V)
    n_trials = [ds.sizes["trial"] for ds in singles]
    assert pooled.sizes["trial"] == sum(n_trials) == sum(len(v) for v in LENGTHS.values())
    assert pooled.sizes["time"] == max(ds.sizes["time"] for ds in singles) and pooled.sizes["unit"] == 128
    assert len(np.unique(pooled["trial"].values)) == pooled.sizes["trial"]
    assert pooled["trial_session"].values.tolist() == [0] * n_trials[0] + [1] * n_trials[1]
    for index, single in enumerate(singles):  # each session keeps its own split and counts (padded with zeros)
        part = pooled.isel(trial=np.flatnonzero(pooled["trial_session"].values == index))
        assert part["split"].values.tolist() == single["split"].values.tolist()
        assert part["trial_source_trial"].values.tolist() == single["trial"].values.tolist()
        n = single.sizes["time"]
        np.testing.assert_array_equal(part["counts"].values[:, :n], single["counts"].values)
        assert not part["mask"].values[:, n:].any() and not part["counts"].values[:, n:].any()
    sources = json.loads(pooled.attrs["source_sessions"])
    assert [s["path"] for s in sources] == [str(p) for p in willett]
    assert [s["sha256"] for s in sources] == [ds.attrs["source_sha256"] for ds in singles]
    assert [s["identifier"] for s in sources] == [ds.attrs["source_identifier"] for ds in singles]
    assert pooled.attrs["source_subject"] == singles[0].attrs["source_subject"]


def test_one_session_reads_exactly_as_load_session(willett):
    one = load_sessions([willett[0]], counts_series="tx1")
    assert one.identical(load_session(willett[0], counts_series="tx1"))


POOL_REFUSED = [  # (id, session files, error fragment); every command also has --dry-run and --out
    ("different-units", ["eight.nwb", "six.nwb"], "six.nwb has 6 units/channels, eight.nwb has 8; one model needs"),
    ("same-session-twice", ["eight.nwb", "eight.nwb"], "is the same session as eight.nwb"),
    ("different-reading", ["maze.nwb", "eight.nwb"], "eight.nwb was read with recipe='' but maze.nwb with "
     "recipe='mc_maze'"),
]


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory) -> Path:
    from nwb_ldns.testing import write_mc_maze_like, write_mock_session

    root = tmp_path_factory.mktemp("pool")
    write_mock_session(root / "eight.nwb", n_units=8)
    write_mock_session(root / "six.nwb", n_units=6, seed=1)
    write_mc_maze_like(root / "maze.nwb", n_trials=12)
    return root


@pytest.mark.parametrize("case,files,fragment", POOL_REFUSED, ids=[row[0] for row in POOL_REFUSED])
def test_sessions_that_cannot_be_pooled_are_one_error_line(pool_dir, case, files, fragment):
    before = snapshot(pool_dir)
    result = invoke("fit", *(pool_dir / name for name in files), "--dry-run", "--out", pool_dir / "m.ldns")
    assert_refused(result, fragment)
    assert snapshot(pool_dir) == before


def test_load_sessions_raises_our_errors(pool_dir):
    with pytest.raises(SessionContentError, match="six.nwb has 6 units/channels"):
        load_sessions([pool_dir / "eight.nwb", pool_dir / "six.nwb"])
    with pytest.raises(OptionError, match="no session given"):
        load_sessions([])


def test_inspect_suggests_the_human_reading_of_a_willett_file(willett):
    result = invoke("inspect", willett[0])
    assert result.exit_code == 0, result.output
    assert (f"nwb-ldns fit {willett[0]} --preset human --counts-series processing/ecephys/tx1 "
            "--channels 'location==area 6v' --out MODEL_DIR") in result.output
    assert "trials over 512 bins dropped (2 of 5 here)" in result.output
    assert "location{area 44: 128, area 6v: 128}" in result.output  # what --channels can filter on
