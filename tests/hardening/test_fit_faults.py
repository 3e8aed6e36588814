"""Faults around `fit`: a killed `--overwrite`, stale `.partial` leftovers, the autoencoder's log record, the lock.

A kill is simulated in process: `on_epoch_end` (or a patched stage) raises KeyboardInterrupt, as Ctrl-C would;
leftovers of a SIGKILL (which runs no cleanup) are planted by hand.
"""

from __future__ import annotations

import importlib
import json
import shutil

import pytest
import torch

from hardening_helpers import FAST, FAST_SET, assert_refused, invoke, partials, snapshot


def _kill_at(stage: str, epoch: int):
    def hook(current_stage: str, current_epoch: int) -> None:
        if (current_stage, current_epoch) == (stage, epoch):
            raise KeyboardInterrupt(f"killed after {stage} epoch {epoch}")
    return hook


def _weights(model) -> dict[str, torch.Tensor]:
    out = {f"ae.{k}": v.cpu() for k, v in model.autoencoder.state_dict().items()}
    out.update({f"dn.{k}": v.cpu() for k, v in model.denoiser.state_dict().items()})
    return out


def _events(model_dir) -> list[tuple]:
    records = [json.loads(line) for line in (model_dir / "training_log.jsonl").read_text().splitlines()]
    return [(r.get("stage"), r.get("event"), r.get("epoch")) for r in records]


@pytest.fixture(scope="module")
def session(trained_model):
    from nwb_ldns.data import load_session

    return load_session(trained_model[0])


@pytest.fixture
def old_model(trained_model, tmp_path):
    copy = tmp_path / "model.ldns"
    shutil.copytree(trained_model[1], copy)
    return copy


def test_killed_overwrite_keeps_the_old_model_and_resume_finishes_the_replacement(session, old_model, tmp_path):
    from nwb_ldns.fileio import is_model_dir
    from nwb_ldns.model_dir import LDNSModel
    from nwb_ldns.train import fit

    before = snapshot(old_model)
    new = {**FAST, "seed": 5}
    with pytest.raises(KeyboardInterrupt):
        fit(session, old_model, preset="tiny", overrides=new, overwrite=True, progress=False,
            on_epoch_end=_kill_at("diffusion", 1))
    assert snapshot(old_model) == before  # untouched, and still a loadable model
    assert LDNSModel.load(old_model, device="cpu").config["seed"] == 42
    staging = tmp_path / ".model.ldns.replacement.partial"
    assert is_model_dir(staging)  # the interrupted replacement waits beside it

    resumed = fit(session, old_model, resume=True, progress=False)
    assert resumed.model_dir == old_model and resumed.config["seed"] == 5
    assert json.loads((old_model / "config.json").read_text())["config"]["seed"] == 5
    assert not partials(tmp_path)
    reference = fit(session, tmp_path / "reference", preset="tiny", overrides=new, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(_weights(resumed).values(), _weights(reference).values()))
    assert _events(old_model) == _events(tmp_path / "reference")


def test_refused_overwrite_starts_no_replacement(session, old_model, tmp_path):
    from nwb_ldns.errors import OptionError
    from nwb_ldns.train import fit

    before = snapshot(tmp_path)
    with pytest.raises(OptionError, match="unknown config key"):
        fit(session, old_model, preset="tiny", overrides={"autoencoder.epoch": 1}, overwrite=True, progress=False)
    assert snapshot(tmp_path) == before


def test_stale_partials_are_removed_by_a_resume(session, tmp_path):
    from nwb_ldns.train import fit

    out = tmp_path / "m.ldns"
    with pytest.raises(KeyboardInterrupt):
        fit(session, out, preset="tiny", overrides=FAST, progress=False, on_epoch_end=_kill_at("autoencoder", 1))
    leftovers = [out / ".autoencoder.safetensors.x1y2.partial",
                 out / "checkpoints" / ".autoencoder-epoch00002.k9.partial"]
    for folder in leftovers:  # what a SIGKILL during an atomic write leaves behind
        folder.mkdir()
        (folder / "half-written").write_bytes(b"\0" * 100)
    (out / ".training_log.jsonl.z8.partial").write_text("a stray temporary file\n")
    model = fit(session, out, resume=True, progress=False)
    assert (out / "denoiser.safetensors").is_file() and model.model_dir == out
    assert not partials(out)


def test_autoencoder_done_record_survives_a_kill_before_the_first_diffusion_checkpoint(session, tmp_path,
                                                                                        monkeypatch):
    from nwb_ldns.train import fit

    fit_module = importlib.import_module("nwb_ldns.training.fit")  # the package re-exports fit under that name

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the first diffusion checkpoint")

    out = tmp_path / "m.ldns"
    with monkeypatch.context() as patch:
        patch.setattr(fit_module, "train_denoiser", killed)
        with pytest.raises(KeyboardInterrupt):
            fit(session, out, preset="tiny", overrides=FAST, progress=False)
    assert (out / "autoencoder.safetensors").is_file()
    assert ("autoencoder", "done", None) in _events(out)
    fit(session, out, resume=True, progress=False)
    reference = tmp_path / "reference"
    fit(session, reference, preset="tiny", overrides=FAST, progress=False)
    events = _events(out)
    assert events.count(("autoencoder", "done", None)) == 1
    assert events == _events(reference)


def test_a_second_fit_into_a_locked_model_directory_is_refused(session, old_model, tmp_path):
    from nwb_ldns.errors import OptionError
    from nwb_ldns.fileio import lock_directory
    from nwb_ldns.train import fit

    real = tmp_path / "real.nwb"
    shutil.copy2(session.attrs["source_path"], real)
    before = snapshot(tmp_path)
    with lock_directory(old_model):  # a first fit is running there
        for options in ({"resume": True}, {"overwrite": True, "preset": "tiny", "overrides": FAST}):
            with pytest.raises(OptionError, match="in use by another nwb-ldns process"):
                fit(session, old_model, progress=False, **options)
        result = invoke("fit", real, "--preset", "tiny", *FAST_SET, "--out", old_model, "--overwrite")
        assert_refused(result, "in use by another nwb-ldns process")
    assert snapshot(tmp_path) == before
    again = invoke("fit", real, "--out", old_model, "--resume", "--quiet")  # the lock went with the first run
    assert again.exit_code == 0 and "already fully trained" in again.output, again.output
