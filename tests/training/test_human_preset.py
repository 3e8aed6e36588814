"""Issue 13 item 7: the human preset as published -- trials over 512 bins dropped (counted), and one model fitted on
several Willett-format sessions whose provenance names every source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nwb_ldns.config import resolve_config
from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.errors import OptionError, SessionContentError
from nwb_ldns.training.lengths import drop_long_trials
from tests.data.willett_sessions import LENGTHS, N_LONG, write_willett_sessions
from tests.hardening.hardening_helpers import FAST_SET, assert_refused, invoke, snapshot

READ = ["--counts-series", "tx1", "--channels", "location==area 6v"]
KEPT = sorted(n for lengths in LENGTHS.values() for n in lengths if n <= 512)


@pytest.fixture(scope="module")
def willett(tmp_path_factory) -> list[Path]:
    return write_willett_sessions(tmp_path_factory.mktemp("willett"))


def _session(lengths: list[int], splits: list[str]):
    n_bins = max(lengths)
    mask = np.arange(n_bins)[None, :] < np.array(lengths)[:, None]
    return make_session_dataset(np.ones((len(lengths), n_bins, 2)) * mask[..., None], 0.02, mask=mask,
                                split=splits, attrs={"reader_notes": json.dumps(["read note"])})


def test_max_bins_is_512_in_the_human_preset_only():
    assert resolve_config("human")["training"]["max_bins"] == 512
    assert all(resolve_config(p)["training"]["max_bins"] is None for p in ("auto", "lorenz", "monkey", "tiny"))
    assert resolve_config("human", {"training.max_bins": "none"})["training"]["max_bins"] is None
    with pytest.raises(OptionError, match="training.max_bins must be a positive"):
        resolve_config("tiny", {"training.max_bins": 0})


def test_long_trials_dropped_counted_per_split_and_noted():
    session = _session([10, 7, 4, 9, 3], ["train", "train", "val", "test", "train"])
    kept, note = drop_long_trials(session, 8)
    assert kept["trial"].values.tolist() == [1, 2, 4] and kept.sizes["time"] == 7  # cropped to the longest kept
    assert note.startswith("dropped 2 of 5 trials longer than 8 bins") and "(train 1, test 1)" in note
    assert json.loads(kept.attrs["reader_notes"]) == ["read note", note]
    assert json.loads(session.attrs["reader_notes"]) == ["read note"]  # the caller's session is unchanged
    assert drop_long_trials(session, None) == (session, None) and drop_long_trials(session, 10)[1] is None
    with pytest.raises(SessionContentError, match="every train trial is longer than 2 bins"):
        drop_long_trials(session, 2)


def test_dry_run_of_the_human_preset_on_two_sessions(willett):
    result = invoke("fit", *willett, "--preset", "human", *READ, "--dry-run")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.split("data: ", 1)[1].split("\nautoencoder:", 1)[0])
    assert data["n_units"] == 128 and data["n_bins"] == max(KEPT)
    assert data["n_train"] + data["n_val"] == 4  # the train trials of both sessions, <= 512 bins
    notes = json.loads(data["session_attrs"]["reader_notes"])
    assert f"dropped 2 of {len(KEPT) + 2} trials longer than 512 bins" in notes[-1]
    assert "(train 1, test 1)" in notes[-1] and N_LONG == {"train": 1, "test": 1}
    assert len(json.loads(data["source"]["source_sessions"])) == 2
    assert '"max_bins": 512' in result.stdout


def test_several_sessions_need_out_and_the_same_channels(willett, tmp_path):
    from nwb_ldns.testing import write_mock_session

    write_mock_session(tmp_path / "eight.nwb", n_units=8)
    write_mock_session(tmp_path / "six.nwb", n_units=6, seed=1)
    before = snapshot(willett[0].parent), snapshot(tmp_path)
    assert_refused(invoke("fit", *willett, *READ), "needs --out MODEL_DIR")
    assert_refused(invoke("fit", tmp_path / "eight.nwb", tmp_path / "six.nwb", "--out", tmp_path / "m.ldns"),
                   "six.nwb has 6 units/channels, eight.nwb has 8; one model needs the same units")
    assert (snapshot(willett[0].parent), snapshot(tmp_path)) == before


def test_one_model_on_two_sessions_names_both_in_its_provenance(willett, tmp_path):
    from pynwb import NWBHDF5IO

    model_dir, synthetic = tmp_path / "pooled.ldns", tmp_path / "synthetic.nwb"
    result = invoke("fit", *willett, *READ, "--preset", "tiny", "--set", "training.max_bins=512", *FAST_SET,
                    "--out", model_dir)
    assert result.exit_code == 0, result.output
    assert "dropped 2 of 8 trials longer than 512 bins" in result.stderr
    described = json.loads((model_dir / "config.json").read_text())
    assert described["data"]["n_units"] == 128 and described["data"]["n_bins"] == max(KEPT)
    assert described["data"]["n_train"] + described["data"]["n_val"] == 4  # the train trials of both, <= 512 bins
    sources = json.loads(described["data"]["source"]["source_sessions"])
    assert [s["path"] for s in sources] == [str(p) for p in willett]
    start = json.loads((model_dir / "training_log.jsonl").read_text().splitlines()[0])
    assert any("dropped 2 of 8" in note for note in start["reader_notes"])

    result = invoke("sample", model_dir, "--n", 3, "--out", synthetic, "--quiet")
    assert result.exit_code == 0, result.output
    with NWBHDF5IO(str(synthetic), "r") as io:
        nwb = io.read()
        rows = nwb.lab_meta_data["ldns_provenance"].source_sessions.to_dataframe()
        assert rows["path"].tolist() == [str(p) for p in willett]
        assert rows["sha256"].tolist() == [s["sha256"] for s in sources] and all(rows["sha256"].str.len() == 64)
        assert "2 recorded sessions" in nwb.session_description and nwb.subject.subject_id == "T12"
        assert len(nwb.units) == 128
