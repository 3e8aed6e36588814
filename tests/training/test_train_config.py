"""Presets carry the reference hyper-parameters; --set overrides are typed, checked, and unknown keys rejected."""

from __future__ import annotations

import json

import pytest

from nwb_ldns.config import PRESETS, flatten, parse_set_options, resolve_config
from nwb_ldns.errors import NWBLDNSError, OptionError


def test_reference_values_of_the_presets():
    lorenz, monkey, human = (resolve_config(p) for p in ("lorenz", "monkey", "human"))
    # autoencoder (ldns-reference.md §2.3, §2.4)
    assert [c["autoencoder"]["latent"] for c in (lorenz, monkey, human)] == [8, 16, 32]
    assert [c["autoencoder"]["n_blocks"] for c in (lorenz, monkey, human)] == [4, 4, 6]
    assert [c["autoencoder"]["bidirectional"] for c in (lorenz, monkey, human)] == [True, False, False]
    assert [c["autoencoder"]["mask_prob"] for c in (lorenz, monkey, human)] == [0.2, 0.5, 0.2]
    assert [(c["autoencoder"]["l2_beta"], c["autoencoder"]["td_beta"]) for c in (lorenz, monkey, human)] == [
        (0.01, 0.01), (0.001, 0.2), (0.001, 0.02)]
    assert [c["autoencoder"]["epochs"] for c in (lorenz, monkey, human)] == [200, 260, 400]
    assert [c["autoencoder"]["horizon_factor"] for c in (lorenz, monkey, human)] == [1.3, 1.1, 1.5]
    assert [c["autoencoder"]["batch_size"] for c in (lorenz, monkey, human)] == [512, 64, 256]
    assert [c["autoencoder"]["val_every"] for c in (lorenz, monkey, human)] == [5, 10, 10]
    for c in (lorenz, monkey, human):
        assert c["autoencoder"]["hidden"] == 256
        assert (c["autoencoder"]["lr"], c["autoencoder"]["weight_decay"], c["autoencoder"]["grad_clip"]) == (1e-3, 0.01, 2.0)
        assert (c["diffusion"]["lr"], c["diffusion"]["weight_decay"], c["diffusion"]["grad_clip"]) == (1e-3, 0.01, 1.0)
        assert c["diffusion"]["num_steps"] == 1000
    # diffusion (§3.1, §3.2) and latents (§2.5)
    assert [(c["diffusion"]["hidden"], c["diffusion"]["n_blocks"]) for c in (lorenz, monkey, human)] == [
        (64, 4), (256, 6), (384, 6)]
    assert [c["diffusion"]["loss"] for c in (lorenz, monkey, human)] == ["mse", "smoothl1", "smoothl1"]
    assert monkey["diffusion"]["smoothl1_beta"] == human["diffusion"]["smoothl1_beta"] == 0.04
    assert [c["diffusion"]["out_scale"] for c in (lorenz, monkey, human)] == [1.0, 0.1, 0.1]
    assert [c["diffusion"]["epochs"] for c in (lorenz, monkey, human)] == [1000, 2000, 2000]
    assert [c["diffusion"]["warmup_epochs"] for c in (lorenz, monkey, human)] == [50, 50, 100]
    assert [c["diffusion"]["batch_size"] for c in (lorenz, monkey, human)] == [512, 512, 256]
    assert lorenz["diffusion"]["ema_power"] == pytest.approx(2 / 3) and lorenz["diffusion"]["ema_min_value"] == 0.0
    assert human["diffusion"]["ema_min_value"] == 0.9999
    assert [c["latents"]["clip"] for c in (lorenz, monkey, human)] == [5.0, None, None]
    assert set(PRESETS) == {"auto", "lorenz", "monkey", "human", "tiny"}
    # the paper presets keep every option of ours off
    for c in (lorenz, monkey, human):
        assert (c["autoencoder"]["patience"], c["autoencoder"]["rate_offset"], c["diffusion"]["val_every"],
                c["diffusion"]["sample_clip"]) == (0, "off", 0, None)


def test_set_values_are_typed_from_text():
    config = resolve_config("lorenz", parse_set_options(
        ["autoencoder.epochs=5", "diffusion.lr=2e-4", "autoencoder.bidirectional=false", "latents.clip=none",
         "diffusion.loss=smoothl1", "seed=3"]))
    assert config["autoencoder"]["epochs"] == 5 and isinstance(config["autoencoder"]["epochs"], int)
    assert config["diffusion"]["lr"] == 2e-4
    assert config["autoencoder"]["bidirectional"] is False
    assert config["latents"]["clip"] is None
    assert config["diffusion"]["loss"] == "smoothl1"
    assert config["seed"] == 3 and config["preset"] == "lorenz"
    json.dumps(config)  # JSON-able
    assert resolve_config("lorenz", {"autoencoder": {"epochs": 7}})["autoencoder"]["epochs"] == 7


def test_overrides_do_not_leak_into_the_preset():
    resolve_config("tiny", {"autoencoder.epochs": 99})
    assert resolve_config("tiny")["autoencoder"]["epochs"] != 99


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(OptionError) as info:
        resolve_config("lorenz", {"autoencoder.epoch": 5})
    message = str(info.value)
    assert "autoencoder.epoch" in message and "autoencoder.epochs" in message and "diffusion.ema_power" in message
    assert "\n" not in message


@pytest.mark.parametrize("key, value, fragment", [
    ("autoencoder.epochs", "five", "int"),
    ("autoencoder.epochs", "2.5", "int"),
    ("autoencoder.epochs", "0", "positive"),
    ("diffusion.lr", "fast", "float"),
    ("autoencoder.bidirectional", "maybe", "bool"),
    ("diffusion.loss", "l1", "mse"),
    ("diffusion.s4_mode", "full", "dplr"),
    ("autoencoder.mask_prob", "1.0", "[0, 1)"),
    ("autoencoder.latent", "7", "multiple"),
    ("diffusion.ema_min_value", "0.99999", "ema_max_value"),
    ("seed", "none", "seed"),
])
def test_bad_values_raise_option_errors(key, value, fragment):
    with pytest.raises(OptionError) as info:
        resolve_config("lorenz", {key: value})
    assert fragment in str(info.value)
    assert isinstance(info.value, NWBLDNSError)


def test_unknown_preset_and_malformed_set():
    with pytest.raises(OptionError, match="tiny"):
        resolve_config("mouse")
    with pytest.raises(OptionError, match="key=value"):
        parse_set_options(["autoencoder.epochs"])


def test_every_key_of_every_preset_is_settable():
    keys = set(flatten(resolve_config("lorenz"))) - {"preset"}
    for name in PRESETS:
        assert set(flatten(resolve_config(name))) - {"preset"} == keys


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("diffusion.d_state", 10**400, "far beyond any usable value"),
        ("autoencoder.hidden", 2**17, "far beyond any usable value"),
        ("autoencoder.d_state", 15, "must be even"),
        ("diffusion.hidden", 30, "multiple of 4"),
    ],
)
def test_values_that_would_fail_inside_torch_are_refused(key, value, message):
    """Huge or malformed sizes are refused as options, not met later as OverflowError/ValueError in torch."""
    from nwb_ldns.config import resolve_config
    from nwb_ldns.errors import OptionError

    with pytest.raises(OptionError, match=message):
        resolve_config("tiny", {key: value})
