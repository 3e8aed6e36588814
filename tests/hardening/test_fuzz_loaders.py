"""Fuzzing the config loader (`resolve_config`, `--set` parsing) and the model-directory loader (hypothesis).

Properties:
- config: `parse_set_options` + `resolve_config` on arbitrary keys and values returns a config that passes its
  own check again unchanged (what `fit --resume` and `LDNSModel.load` do with a saved config), or raises
  OptionError. Nothing else.
- model directory: `LDNSModel.load` of a tiny trained model whose config.json or latent_stats.json was edited
  (any JSON value at any key, a key removed or added, the file truncated or replaced) returns a model that
  samples finite counts, or raises one of our errors; the directory is never modified.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_helpers import fuzz_settings, ours_or_result
from hardening_helpers import snapshot

from nwb_ldns.config import PRESETS, flatten, parse_set_options, preset_names, resolve_config
from nwb_ldns.errors import OptionError

KEYS = sorted({key for preset in PRESETS.values() for key in flatten(preset)})
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-3, 300),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                   st.sampled_from([0, -1, 1, 2, 10**400, 1e308, "32", "none", "nan", "inf", "1e400", ""]))
JSON_VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
KEY = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), st.text(max_size=20),
                st.sampled_from(["", ".", "autoencoder", "autoencoder.", "preset", "data.n_units"]))
TEXT_VALUE = st.one_of(SCALAR.map(str), st.text(max_size=12))


def _resolve_checked(preset: str, overrides: Any, shape: dict[str, Any] | None = None) -> None:
    config, error = ours_or_result(lambda: resolve_config(preset, overrides, shape=shape))
    if error is not None:
        assert isinstance(error, OptionError), f"resolve_config raised {type(error).__name__}: {error}"
        return
    saved = {key: value for key, value in flatten(config).items() if key != "preset"}
    assert resolve_config(config["preset"], saved) == config  # a saved config loads back unchanged
    assert json.loads(json.dumps(config, allow_nan=False)) == config  # and is strict JSON


@fuzz_settings(80)
@given(items=st.lists(st.one_of(st.text(max_size=30), st.tuples(KEY, TEXT_VALUE).map("=".join)), max_size=5),
       preset=st.one_of(st.sampled_from(preset_names()), st.text(max_size=8)))
@example(items=["autoencoder.lr=1e400"], preset="tiny")
@example(items=["autoencoder.hidden=1e3"], preset="tiny")
@example(items=["=5"], preset="tiny")
@example(items=["autoencoder.epochs"], preset="tiny")
@example(items=["latents.clip=none", "diffusion.condition=null"], preset="lorenz")
def test_fuzzed_set_options(items, preset):
    overrides, error = ours_or_result(lambda: parse_set_options(items))
    if error is None:
        _resolve_checked(preset, overrides)
    else:
        assert isinstance(error, OptionError)


@fuzz_settings(80)
@given(overrides=st.dictionaries(KEY, JSON_VALUE, max_size=4), preset=st.sampled_from(preset_names()))
@example(overrides={"autoencoder.lr": 10**400}, preset="tiny")
@example(overrides={"autoencoder.epochs": 1e300}, preset="tiny")
@example(overrides={"autoencoder": {"hidden": [1]}}, preset="tiny")
@example(overrides={"autoencoder": 3}, preset="tiny")
def test_fuzzed_override_values(overrides, preset):
    """Python values as a config.json or the API would give them (not only the strings of --set)."""
    _resolve_checked(preset, overrides)


@fuzz_settings(40)
@given(overrides=st.dictionaries(st.sampled_from(KEYS), TEXT_VALUE, max_size=2),
       shape=st.fixed_dictionaries({"n_train": st.integers(1, 10**9), "n_bins": st.integers(1, 10**9),
                                    "n_units": st.integers(1, 10**6), "variable_length": st.booleans()}))
def test_fuzzed_auto_preset_shape(overrides, shape):
    """The `auto` preset sized from any session shape (the shape of a loaded session is at least 1 everywhere)."""
    _resolve_checked("auto", overrides, shape)


# --- model directories --------------------------------------------------------------------------------------

def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON value (dict keys and list positions), the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for position, item in enumerate(value[:4]):
            out += _paths(item, prefix + (position,))
    return out


def _edit(document: Any, path: tuple, kind: str, value: Any) -> Any:
    """The document with `value` put at `path` ("set"), the entry at `path` deleted, or `value` added beside it."""
    if not path:
        return value
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "set":
        parent[last] = value
    elif kind == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"extra_{last}"] = value
    else:
        parent.append(value)
    return document


MUTATION = st.one_of(
    st.tuples(st.sampled_from(["set", "set", "delete", "add"]), st.integers(0, 10**6), JSON_VALUE),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.none()),
    st.tuples(st.just("bytes"), st.integers(0, 0), st.binary(max_size=40)),
)


def _mutated(original: bytes, mutation: tuple) -> bytes:
    kind, choice, value = mutation
    if kind == "truncate":
        return original[: choice % max(len(original), 1)]
    if kind == "bytes":
        return value
    document = json.loads(original)
    paths = _paths(document)
    path = paths[choice % len(paths)]
    if kind == "delete" and not path:
        return b""
    return json.dumps(_edit(document, path, kind, value)).encode()  # NaN/Infinity as Python's json writes them


@pytest.fixture(scope="module")
def model_copy(trained_model, tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A private copy of the tiny model and the original bytes of its JSON files (restored before each example)."""
    copy = tmp_path_factory.mktemp("fuzzmodel") / "model.ldns"
    shutil.copytree(trained_model[1], copy)
    return copy, {name: (copy / name).read_bytes() for name in ("config.json", "latent_stats.json")}


def _check_model_dir(model_copy, name: str, mutation: tuple) -> None:
    from nwb_ldns.model_dir import LDNSModel

    model_dir, originals = model_copy
    for original_name, data in originals.items():
        (model_dir / original_name).write_bytes(data)
    (model_dir / name).write_bytes(_mutated(originals[name], mutation))
    before = snapshot(model_dir)
    model, _ = ours_or_result(lambda: LDNSModel.load(model_dir, device="cpu"))
    if model is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # range warnings on an edited model are expected
            generated, _ = ours_or_result(lambda: model.sample(2, seed=0, progress=False))
        if generated is not None:
            counts = generated["counts"].values
            assert np.isfinite(counts).all() and (counts >= 0).all()
    assert snapshot(model_dir) == before


@fuzz_settings(50)
@given(mutation=MUTATION)
@example(mutation=("set", 0, {"format": "nwb-ldns-model"}))
@example(mutation=("truncate", 10, None))
@example(mutation=("bytes", 0, b"\xff\xfe"))
@example(mutation=("set", 10**6 - 1, 10**400))
@example(mutation=("set", 10**6 - 1, float("nan")))
def test_fuzzed_config_json(model_copy, mutation):
    _check_model_dir(model_copy, "config.json", mutation)


@fuzz_settings(50)
@given(mutation=MUTATION)
@example(mutation=("set", 1, [float("nan")]))
@example(mutation=("set", 2, 1e308))  # inf in float32: an invalid Poisson rate before _check_rates
@example(mutation=("set", 2, 1e30))  # finite in float32, rates overflow
@example(mutation=("delete", 1, None))
@example(mutation=("truncate", 5, None))
def test_fuzzed_latent_stats_json(model_copy, mutation):
    _check_model_dir(model_copy, "latent_stats.json", mutation)


def test_mutation_paths_reach_every_key(model_copy):
    """The fuzzer can edit any key of the two files (so the tests above cover config, data and statistics)."""
    _, originals = model_copy
    config_paths = _paths(json.loads(originals["config.json"]))
    assert ("config", "autoencoder", "hidden") in config_paths and ("data", "n_units") in config_paths
    assert ("mean", 0) in _paths(json.loads(originals["latent_stats.json"]))
    assert len(config_paths) > 40
