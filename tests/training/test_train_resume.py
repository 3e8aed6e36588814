"""Same seed -> same model; a killed run resumed from its checkpoint ends with the same weights."""

from __future__ import annotations

import json

import pytest
import torch

from training_fixtures import FAST
from nwb_ldns.model_dir import LDNSModel
from nwb_ldns.train import fit
from nwb_ldns.training.state import load_checkpoint, pack, unpack

# checkpoints every 2 epochs, 4 epochs per stage: a crash in epoch 3 resumes from epoch 2 and redoes epoch 3
RESUME = {**FAST, "autoencoder.epochs": 4, "diffusion.epochs": 4, "autoencoder.checkpoint_every": 2,
          "diffusion.checkpoint_every": 2, "autoencoder.val_every": 2}


class Killed(Exception):
    pass


def _kill_at(stage: str, epoch: int):
    def hook(current_stage: str, current_epoch: int) -> None:
        if (current_stage, current_epoch) == (stage, epoch):
            raise Killed(f"simulated crash after {stage} epoch {epoch}")
    return hook


def _weights(model: LDNSModel) -> dict[str, torch.Tensor]:
    out = {f"ae.{k}": v.cpu() for k, v in model.autoencoder.state_dict().items()}
    out.update({f"dn.{k}": v.cpu() for k, v in model.denoiser.state_dict().items()})
    return out


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def _log(path) -> list[dict]:
    records = [json.loads(line) for line in (path / "training_log.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("elapsed_s")
    return records


@pytest.fixture(scope="module")
def reference(tmp_path_factory, session):
    out = tmp_path_factory.mktemp("ref") / "model"
    return out, fit(session, out, preset="tiny", overrides=RESUME, progress=False)


def test_same_seed_same_model(reference, session, tmp_path):
    _, model = reference
    again = fit(session, tmp_path / "again", preset="tiny", overrides=RESUME, progress=False)
    _assert_same(_weights(model), _weights(again))
    other = fit(session, tmp_path / "other", preset="tiny", overrides={**RESUME, "seed": 1}, progress=False)
    assert not torch.equal(model.denoiser.state_dict()["conv_in.weight"], other.denoiser.state_dict()["conv_in.weight"])


@pytest.mark.parametrize("stage", ["autoencoder", "diffusion"])
def test_resume_after_a_crash_reaches_the_same_weights(reference, session, tmp_path, stage):
    ref_dir, ref_model = reference
    out = tmp_path / "model"
    with pytest.raises(Killed):
        fit(session, out, preset="tiny", overrides=RESUME, progress=False, on_epoch_end=_kill_at(stage, 3))
    assert not (out / "denoiser.safetensors").exists()  # not marked complete
    checkpoint = load_checkpoint(out / "checkpoints")
    assert (checkpoint["stage"], checkpoint["epoch"]) == (stage, 2)
    with pytest.raises(Exception, match="LDNSModel|incomplete|missing"):
        LDNSModel.load(out)
    resumed = fit(session, out, resume=True, progress=False)
    _assert_same(_weights(ref_model), _weights(resumed))
    assert _log(out) == _log(ref_dir)  # the log was rewound to the checkpoint, not duplicated


def test_save_copies_to_a_new_directory(reference, tmp_path):
    ref_dir, ref_model = reference
    copy = ref_model.save(tmp_path / "copy")
    loaded = LDNSModel.load(copy, device="cpu")
    _assert_same(_weights(ref_model), _weights(loaded))
    assert loaded.weights_sha256 == LDNSModel.load(ref_dir, device="cpu").weights_sha256
    assert (copy / "training_log.jsonl").read_text() == (ref_dir / "training_log.jsonl").read_text()


def test_pack_round_trips_optimizer_and_generator_state():
    param = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([param], lr=1e-3)
    param.sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(5)
    state = {"optimizer": opt.state_dict(), "rng": gen.get_state(), "best": {"weights": None, "loss": float("inf")},
             "pair": (1, 2.5)}
    tensors: dict[str, torch.Tensor] = {}
    skeleton = json.loads(json.dumps(pack(state, tensors)))
    restored = unpack(skeleton, tensors)
    opt2 = torch.optim.AdamW([torch.nn.Parameter(param.detach().clone())], lr=1e-3)
    opt2.load_state_dict(restored["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert list(restored["optimizer"]["state"]) == [0]
    gen2 = torch.Generator()
    gen2.set_state(restored["rng"])
    assert torch.equal(torch.rand(4, generator=gen2), torch.rand(4, generator=gen))
    assert restored["pair"] == (1, 2.5) and restored["best"]["loss"] == float("inf")


def test_resume_without_a_checkpoint_keeps_the_finished_autoencoder(reference, session, tmp_path):
    """Stopped in the denoiser stage with its checkpoints gone: resume redoes that stage only, log included."""
    ref_dir, ref_model = reference
    out = tmp_path / "model"
    with pytest.raises(Killed):
        fit(session, out, preset="tiny", overrides=RESUME, progress=False, on_epoch_end=_kill_at("diffusion", 1))
    for child in (out / "checkpoints").iterdir():
        if child.is_dir():
            for f in child.iterdir():
                f.unlink()
            child.rmdir()
        else:
            child.unlink()
    ae_bytes = (out / "autoencoder.safetensors").read_bytes()
    resumed = fit(session, out, resume=True, progress=False)
    assert (out / "autoencoder.safetensors").read_bytes() == ae_bytes  # not retrained
    _assert_same(_weights(ref_model), _weights(resumed))
    assert _log(out) == _log(ref_dir)
