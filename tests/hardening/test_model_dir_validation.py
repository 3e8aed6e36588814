"""Model directories validated on load (issue 14, item 3): a table of damaged or edited model directories.

Each row damages a copy of a tiny trained model in one way. Loading it (`sample MODEL`, or `fit --resume` for
the resume state in checkpoints/) must stop with exit code 2 and one `Error:` line naming the file and the fix,
no traceback, and the directory byte-identical afterwards (nothing repaired, deleted or written). The advice must
be a command that would work: never `--resume` where a resume would refuse or fail again.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from hardening_helpers import assert_refused, invoke, partials, snapshot

MARKER = Path("/tmp/nwb-ldns-unpickled-marker")


class _Payload:
    """A pickle that, if it were ever unpickled, would create MARKER (it must not be)."""

    def __reduce__(self):
        return (Path.touch, (MARKER,))


def _pickle_bytes() -> bytes:
    return pickle.dumps({"weights": _Payload()})


def _edit_json(name: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def mutate(model: Path) -> None:
        path = model / name
        value = json.loads(path.read_text())
        result = change(value)
        path.write_text(json.dumps(value if result is None else result))
    return mutate


def _set(*keys: str, value: Any) -> Callable[[Any], None]:
    def change(document: Any) -> None:
        target = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _delete(*keys: str) -> Callable[[Any], None]:
    def change(document: Any) -> None:
        target = document
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


def _remove(*names: str) -> Callable[[Path], None]:
    def mutate(model: Path) -> None:
        for name in names:
            (model / name).unlink()
    return mutate


def _write(name: str, payload: bytes) -> Callable[[Path], None]:
    def mutate(model: Path) -> None:
        (model / name).write_bytes(payload)
    return mutate


def _edit_tensors(name: str, change: Callable[[dict[str, torch.Tensor]], None]) -> Callable[[Path], None]:
    def mutate(model: Path) -> None:
        tensors = load_file(str(model / name))
        change(tensors)
        save_file(tensors, str(model / name))
    return mutate


def _first(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(name for name, value in tensors.items() if value.is_floating_point() and value.ndim)[0]


def _rename(tensors):
    tensors["renamed.weight"] = tensors.pop(_first(tensors))


def _extra(tensors):
    tensors["surplus.weight"] = torch.zeros(2)


def _float64(tensors):
    tensors[_first(tensors)] = tensors[_first(tensors)].double()


def _shape(tensors):
    name = _first(tensors)
    tensors[name] = torch.zeros(tuple(tensors[name].shape) + (2,))


def _nan(tensors):
    name = _first(tensors)
    tensors[name] = torch.full_like(tensors[name], float("nan"))


def _then(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def mutate(model: Path) -> None:
        for step in steps:
            step(model)
    return mutate


CONFIG = "config.json"
STATS = "latent_stats.json"
AE = "autoencoder.safetensors"
DN = "denoiser.safetensors"
NO_RESUME = "--resume"  # a fragment that must NOT be in the advice of rows marked so

# (id, damage to the model directory, fragment of the error line, whether the advice may say --resume)
LOAD_REFUSED = [
    ("config-negative-hidden", _edit_json(CONFIG, _set("config", "autoencoder", "hidden", value=-3)),
     "autoencoder.hidden=-3 must be a positive integer", False),
    ("config-hidden-as-text", _edit_json(CONFIG, _set("config", "autoencoder", "hidden", value="32")),
     "autoencoder.hidden is '32' (str), expected a int", False),
    ("config-n-blocks-as-bool", _edit_json(CONFIG, _set("config", "diffusion", "n_blocks", value=True)),
     "diffusion.n_blocks", False),
    ("config-nan-lr", _edit_json(CONFIG, _set("config", "diffusion", "lr", value=float("nan"))),
     "diffusion.lr", False),
    ("config-unknown-key", _edit_json(CONFIG, _set("config", "autoencoder", "hiddne", value=32)),
     "unknown config key", False),
    ("config-unknown-preset", _edit_json(CONFIG, _set("config", "preset", value="huge")), "unknown preset", False),
    ("config-no-preset", _edit_json(CONFIG, _delete("config", "preset")), "no preset name", False),
    ("config-lacks-network-key", _edit_json(CONFIG, _delete("config", "diffusion", "hidden")),
     "lacks diffusion.hidden", False),
    ("config-hidden-not-multiple-of-latent", _edit_json(CONFIG, _set("config", "autoencoder", "hidden", value=30)),
     "must be a multiple of autoencoder.latent", False),
    ("config-no-data-section", _edit_json(CONFIG, _delete("data")), "data section", False),
    ("config-data-n-units-text", _edit_json(CONFIG, _set("data", "n_units", value="8")), "data.n_units", False),
    ("config-data-zero-bins", _edit_json(CONFIG, _set("data", "n_bins", value=0)), "must be >= 1", False),
    ("config-data-negative-bin-width", _edit_json(CONFIG, _set("data", "bin_width", value=-0.01)),
     "data.bin_width", False),
    ("config-data-unit-ids-short", _edit_json(CONFIG, _set("data", "unit_ids", value=[1, 2])), "unit_ids", False),
    ("config-data-bad-condition", _edit_json(CONFIG, _set("data", "condition", value={"dim": 2})),
     "data.condition", False),
    ("config-format-version-2", _edit_json(CONFIG, _set("format_version", value=2)), "format version", False),
    ("config-not-ours", _edit_json(CONFIG, _set("format", value="something-else")),
     "not an nwb-ldns model description", False),
    ("config-not-json", _write(CONFIG, b"{ not json"), "not valid JSON", False),
    ("config-missing", _remove(CONFIG), "config.json is missing", False),
    ("config-latent-changed", _edit_json(CONFIG, _set("config", "autoencoder", "latent", value=8)),
     "latent channels", False),
    ("stats-nan-mean", _edit_json(STATS, _set("mean", 0, value=float("nan"))), "mean holds a non-finite", False),
    ("stats-infinite-std", _edit_json(STATS, _set("std", 1, value=float("inf"))), "std holds a non-finite", False),
    ("stats-zero-std", _edit_json(STATS, _set("std", 0, value=0.0)), "std holds a value <= 0", False),
    ("stats-wrong-channel-count", _edit_json(STATS, lambda stats: stats["mean"].append(0.0)),
     "mean has 5 values for the config's 4 latent channels", False),
    ("stats-text-clip", _edit_json(STATS, _set("clip", value="5")), "clip is '5'", False),
    ("stats-not-object", _write(STATS, b"[1, 2]"), "expected a JSON object", False),
    ("stats-missing", _remove(STATS), "latent_stats.json is missing", False),
    ("denoiser-is-a-pickle", _write(DN, _pickle_bytes()), "not a valid safetensors file", False),
    ("autoencoder-is-garbage", _write(AE, b"\x00" * 64), "not a valid safetensors file", False),
    ("autoencoder-tensor-renamed", _edit_tensors(AE, _rename), "lacks tensor", False),
    ("denoiser-extra-tensor", _edit_tensors(DN, _extra), "surplus.weight the config does not build", False),
    ("denoiser-float64-tensor", _edit_tensors(DN, _float64), "torch.float64", False),
    ("autoencoder-wrong-shape", _edit_tensors(AE, _shape), "the config builds", False),
    ("denoiser-nan-weights", _edit_tensors(DN, _nan), "NaN or infinite", False),
    ("autoencoder-missing", _remove(AE), "autoencoder.safetensors is missing", False),
    # an unfinished run: here (and only here) resuming is the right advice, and it works (see below)
    ("denoiser-missing", _remove(DN), "resume training", True),
    ("unfinished-stats-missing", _remove(DN, STATS), "resume training", True),
]


@pytest.fixture
def model(trained_model, tmp_path) -> Path:
    """A private copy of the tiny trained model."""
    copy = tmp_path / "model.ldns"
    shutil.copytree(trained_model[1], copy)
    return copy


@pytest.mark.parametrize("damage, fragment, resume_advised", [row[1:] for row in LOAD_REFUSED],
                         ids=[row[0] for row in LOAD_REFUSED])
def test_damaged_model_is_refused_on_load(model, tmp_path, damage, fragment, resume_advised):
    from nwb_ldns.errors import InputFileError
    from nwb_ldns.model_dir import LDNSModel

    damage(model)
    before = snapshot(tmp_path)
    result = invoke("sample", model, "--n", "2", "--out", tmp_path / "out.nwb", "--quiet")
    assert_refused(result, fragment)
    error_line = [line for line in result.stderr.splitlines() if line.startswith("Error:")][0]
    assert (NO_RESUME in error_line) == resume_advised, error_line
    with pytest.raises(InputFileError) as raised:
        LDNSModel.load(model, device="cpu")
    assert "\n" not in str(raised.value)
    assert snapshot(tmp_path) == before and not MARKER.exists()


def _edit_pointer(value: Any) -> Callable[[Path], None]:
    def mutate(model: Path) -> None:
        (model / "checkpoints" / "latest.json").write_text(json.dumps(value))
    return mutate


def _latest(model: Path) -> Path:
    return model / "checkpoints" / json.loads((model / "checkpoints" / "latest.json").read_text())["checkpoint"]


def _pointer_symlink(model: Path) -> None:
    outside = model.parent / "outside-checkpoint"
    shutil.copytree(_latest(model), outside)
    (model / "checkpoints" / "escape").symlink_to(outside)
    _edit_pointer({"checkpoint": "escape"})(model)


def _checkpoint_file(name: str, payload: bytes) -> Callable[[Path], None]:
    def mutate(model: Path) -> None:
        (_latest(model) / name).write_bytes(payload)
    return mutate


def _checkpoint_weights_shape(model: Path) -> None:
    path = _latest(model) / "tensors.safetensors"
    state = json.loads((_latest(model) / "state.json").read_text())
    tensors = load_file(str(path))
    name = next(iter(state["model"].values()))["__tensor__"]
    tensors[name] = torch.zeros(tuple(tensors[name].shape) + (3,))
    save_file(tensors, str(path))


# (id, damage to checkpoints/ of an unfinished run, fragment of the error line); loaded by `fit --resume`
RESUME_REFUSED = [
    ("pointer-parent-path", _edit_pointer({"checkpoint": "../../.."}), "not a plain folder name"),
    ("pointer-dotdot-inside", _edit_pointer({"checkpoint": "../checkpoints/diffusion-epoch00002"}),
     "not a plain folder name"),
    ("pointer-absolute-path", _edit_pointer({"checkpoint": "/etc"}), "not a plain folder name"),
    ("pointer-not-text", _edit_pointer({"checkpoint": 3}), "not a plain folder name"),
    ("pointer-not-an-object", _edit_pointer(["diffusion-epoch00002"]), "expected a JSON object"),
    ("pointer-symlink-outside", _pointer_symlink, "leads outside"),
    ("checkpoint-tensors-is-a-pickle", _checkpoint_file("tensors.safetensors", _pickle_bytes()),
     "not a valid safetensors file"),
    ("checkpoint-state-not-json", _checkpoint_file("state.json", b"{"), "not valid JSON"),
    ("checkpoint-state-names-missing-tensor", _checkpoint_file("state.json", b'{"stage": "diffusion", '
                                                               b'"model": {"__tensor__": "t999"}}'), "lacks"),
    ("checkpoint-state-wrong-stage", _checkpoint_file("state.json", b'{"stage": "other"}'), "not a resume state"),
    ("checkpoint-weights-wrong-shape", _checkpoint_weights_shape, "the config builds"),
]


@pytest.mark.parametrize("damage, fragment", [row[1:] for row in RESUME_REFUSED],
                         ids=[row[0] for row in RESUME_REFUSED])
def test_damaged_checkpoint_is_refused_on_resume(trained_model, model, tmp_path, damage, fragment):
    (model / DN).unlink()  # an unfinished run: --resume reads the checkpoint
    damage(model)
    before = snapshot(tmp_path)
    result = invoke("fit", trained_model[0], "--out", model, "--resume", "--quiet")
    assert_refused(result, fragment)
    assert "--overwrite" in result.stderr  # a resume would fail again: the advice is a new run
    assert snapshot(tmp_path) == before and not MARKER.exists()


def test_resume_advice_works(trained_model, model):
    """The advice for an unfinished run with no latent_stats.json: the command it names succeeds."""
    from nwb_ldns.model_dir import LDNSModel

    (model / DN).unlink()
    (model / STATS).unlink()
    refused = invoke("sample", model, "--n", "2", "--out", model.parent / "out.nwb")
    assert f"`nwb-ldns fit SESSION --out {model} --resume`" in refused.stderr
    resumed = invoke("fit", trained_model[0], "--out", model, "--resume", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert LDNSModel.load(model, device="cpu").latent_stats["mean"]
    assert not partials(model.parent)


def test_overwrite_advice_works_for_a_damaged_config(trained_model, model):
    """A finished model whose config.json was damaged: `fit --overwrite` (the advice) is accepted."""
    from hardening_helpers import FAST_SET

    _edit_json(CONFIG, _set("config", "autoencoder", "hidden", value=-3))(model)
    refused = invoke("sample", model, "--n", "2", "--out", model.parent / "out.nwb")
    assert f"--out {model} --overwrite`" in refused.stderr
    result = invoke("fit", trained_model[0], "--preset", "tiny", *FAST_SET, "--out", model, "--overwrite")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("n", [2.5, "3", True, 0, -1], ids=["float", "text", "bool", "zero", "negative"])
def test_sample_refuses_a_count_that_is_not_a_whole_number(trained_model, n):
    from nwb_ldns.errors import OptionError
    from nwb_ldns.model_dir import LDNSModel

    model = LDNSModel.load(trained_model[1], device="cpu")
    with pytest.raises(OptionError, match="whole number >= 1") as raised:
        model.sample(n, progress=False)
    assert "\n" not in str(raised.value)


def test_loading_never_unpickles(trained_model, model, monkeypatch):
    """Load a model and resume from its checkpoint with every unpickling entry point made to fail."""
    from nwb_ldns.model_dir import LDNSModel
    from nwb_ldns.training.state import load_checkpoint

    def forbidden(*args, **kwargs):
        raise AssertionError("a model directory was unpickled")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, forbidden)
    loaded = LDNSModel.load(model, device="cpu")
    assert loaded.weights_sha256
    state = load_checkpoint(model / "checkpoints")
    assert state is not None and state["stage"] == "diffusion"
