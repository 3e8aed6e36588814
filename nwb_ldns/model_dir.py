"""A trained LDNS model as a directory of plain files, and the `LDNSModel` object that reads and writes it.

Layout (all JSON or safetensors -- loading a model someone sent you never unpickles anything):

    config.json              {"format", "nwb_ldns_version", "config": resolved config, "data": data description,
                              "networks": constructor arguments of both networks}
    autoencoder.safetensors  AE weights (the best-validation epoch)
    denoiser.safetensors     denoiser weights (the EMA copy, used for sampling)
    latent_stats.json        per-channel mean/std of the train latents, clip, centring, train trial lengths
    training_log.jsonl       one JSON line per epoch / validation
    checkpoints/             resume state (safetensors + JSON), see nwb_ldns.training.state
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from nwb_ldns import __version__
from nwb_ldns.errors import InputFileError
from nwb_ldns.fileio import atomic_output

FORMAT = "nwb-ldns-model"
FORMAT_VERSION = 1
WEIGHT_FILES = ("autoencoder.safetensors", "denoiser.safetensors")


def _cond_dim(data: Mapping[str, Any]) -> int:
    """Width of the denoiser's cond input: the condition's "dim" (one-hot classes); 2 (cos, sin) for an angle
    and for model directories written before conditions recorded "dim"; 0 when unconditional."""
    from nwb_ldns.training.conditions import cond_dim

    return cond_dim(data.get("condition"))


def _trace_dim(data: Mapping[str, Any]) -> int:
    from nwb_ldns.training.conditions import trace_dim

    return trace_dim(data.get("condition"))


def network_arguments(config: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Constructor arguments of the two networks, from the resolved config and the data description."""
    ae, dif = config["autoencoder"], config["diffusion"]
    return {
        "autoencoder": {
            "n_units": int(data["n_units"]), "hidden": ae["hidden"], "latent": ae["latent"],
            "n_blocks": ae["n_blocks"], "bidirectional": ae["bidirectional"], "d_state": ae["d_state"],
            "s4_mode": ae["s4_mode"],
            "offset_bins": int(data["n_bins"]) if ae.get("rate_offset", "off") == "psth" else 0,
        },
        "denoiser": {
            "channels": ae["latent"], "hidden": dif["hidden"], "n_blocks": dif["n_blocks"],
            "extra_channels": (1 if data["length_mask"] else 0) + _trace_dim(data), "cond_dim": _cond_dim(data),
            "d_state": dif["d_state"], "out_scale": dif["out_scale"],
            "s4_mode": dif.get("s4_mode", "diag"),  # model directories written before the option existed: diag
        },
    }


def model_description(config: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The content of config.json: format tag, versions, resolved config, data description, network arguments."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nwb_ldns_version": __version__,
        "config": dict(config),
        "data": dict(data),
        "networks": network_arguments(config, data),
    }


def build_networks(config: Mapping[str, Any], data: Mapping[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Fresh (randomly initialised) autoencoder and denoiser for this config and data (refused before allocation
    when their parameters would not fit in memory: nwb_ldns.limits)."""
    from nwb_ldns.limits import check_network_size
    from nwb_ldns.models import AutoEncoder, Denoiser

    args = network_arguments(config, data)
    check_network_size(args)
    return AutoEncoder(**args["autoencoder"]), Denoiser(**args["denoiser"])


def state_bytes(module: torch.nn.Module) -> bytes:
    """The safetensors serialisation of a module's state dict (what is written to disk and hashed)."""
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    # one metadata key only: safetensors writes a metadata map in hash order, which would make the bytes (and the
    # weights_sha256) differ between two saves of the same weights
    return save_bytes(state, metadata={"format": FORMAT})


def write_bytes(path: Path, payload: bytes) -> None:
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_bytes(payload)


def _read_json(path: Path, model_dir: Path, resumable: bool = True) -> Any:
    """Parsed JSON of a model file; a missing or unparsable one is an InputFileError with advice that works."""
    from nwb_ldns.model_schema import fix_advice

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputFileError(f"{path} is missing; the model directory is incomplete, "
                             f"{fix_advice(model_dir, resumable)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path} is not valid JSON ({error}); {fix_advice(model_dir, resumable)}") from None


def read_safetensors(path: Path, advice: str) -> tuple[dict[str, torch.Tensor], bytes]:
    """(tensors, file bytes) of a safetensors file; anything else (a pickle, garbage) is refused unread.

    Why: safetensors parses a JSON header and raw buffers, so a file that is not one is rejected without
    running any of its content.
    """
    payload = path.read_bytes()
    try:
        return load_bytes(payload), payload
    except SafetensorError as error:
        raise InputFileError(f"{path} is not a valid safetensors file ({error}); {advice}") from None


def _read_weights(path: Path, model_dir: Path) -> tuple[dict[str, torch.Tensor], bytes]:
    from nwb_ldns.model_schema import fix_advice

    if not path.is_file():
        raise InputFileError(f"{path} is missing; the model directory is incomplete (training did not finish), "
                             f"{fix_advice(model_dir)}")
    return read_safetensors(path, fix_advice(model_dir, resumable=False))


def _read_description(model_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, data) of config.json after checking its format tag, types and ranges (nwb_ldns.model_schema)."""
    from nwb_ldns.model_schema import check_config, check_data, fix_advice

    path = model_dir / "config.json"
    described = _read_json(path, model_dir, resumable=False)
    if not isinstance(described, dict) or described.get("format") != FORMAT:
        raise InputFileError(f"{path} is not an nwb-ldns model description; pass the directory written by "
                             f"`nwb-ldns fit` or {fix_advice(model_dir, resumable=False)}")
    if described.get("format_version") not in (None, FORMAT_VERSION):
        raise InputFileError(f"{path} has model format version {described.get('format_version')!r}, this nwb-ldns "
                             f"reads version {FORMAT_VERSION}; load it with the nwb-ldns version that wrote it")
    check_config(described.get("config"), path, model_dir)
    check_data(described.get("data"), path, model_dir)
    return described["config"], described["data"]


HISTORY_FILE = "spike_history.safetensors"  # nwb_ldns.training.history writes it


def _load_history(config: Mapping[str, Any], data: Mapping[str, Any], model_dir: Path
                  ) -> tuple[torch.nn.Module | None, bytes]:
    """The spike-history GLM of a model fitted with --spike-history (None, b"" otherwise), checked like the
    networks: names, dtypes, shapes and finite values against the config."""
    from nwb_ldns.model_schema import check_state
    from nwb_ldns.models.spike_history import SpikeHistoryGLM

    section = config.get("spike_history") or {}
    if not section.get("enabled"):
        return None, b""
    path = model_dir / HISTORY_FILE
    state, raw = _read_weights(path, model_dir)
    glm = SpikeHistoryGLM(int(data["n_units"]), int(section["history"]), int(section["max_spikes"]))
    check_state(state, glm, path, model_dir)
    glm.load_state_dict(state)
    return glm, raw


class LDNSModel:
    """Autoencoder + EMA denoiser + latent statistics, with the config and data description they were trained on."""

    def __init__(self, config: dict[str, Any], data: dict[str, Any], autoencoder: torch.nn.Module,
                 denoiser: torch.nn.Module, latent_stats: dict[str, Any], model_dir: Path | None = None,
                 spike_history: torch.nn.Module | None = None) -> None:
        self.config = config
        self.spike_history = spike_history.eval() if spike_history is not None else None  # fit --spike-history
        self.data = data
        self.autoencoder = autoencoder.eval()
        self.denoiser = denoiser.eval()
        self.latent_stats = latent_stats
        self.model_dir = model_dir
        self._weights_sha256: str | None = None

    # ------------------------------------------------------------------------------------------------ identity
    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device: str | torch.device) -> "LDNSModel":
        self.autoencoder.to(device)
        self.denoiser.to(device)  # the spike-history GLM stays on the CPU (its sampler loops over bins there)
        return self

    @property
    def weights_sha256(self) -> str:
        """sha256 over the bytes of autoencoder.safetensors then denoiser.safetensors (then
        spike_history.safetensors, for a model with spike history).

        Taken from the files the model was loaded from (or saved to); for a model only in memory, from the bytes
        `save` would write.
        """
        if self._weights_sha256 is None:
            digest = hashlib.sha256()
            for module in (self.autoencoder, self.denoiser, self.spike_history):
                if module is not None:
                    digest.update(state_bytes(module))
            self._weights_sha256 = digest.hexdigest()
        return self._weights_sha256

    def description(self) -> dict[str, Any]:
        """The content of config.json."""
        return model_description(self.config, self.data)

    # ------------------------------------------------------------------------------------------------ files
    def write_into(self, directory: Path) -> None:
        """Write the final model files into an existing directory, each one atomically."""
        directory = Path(directory)
        ae_bytes, dn_bytes = state_bytes(self.autoencoder), state_bytes(self.denoiser)
        history_bytes = state_bytes(self.spike_history) if self.spike_history is not None else b""
        write_bytes(directory / "autoencoder.safetensors", ae_bytes)
        if history_bytes:
            write_bytes(directory / HISTORY_FILE, history_bytes)
        write_bytes(directory / "denoiser.safetensors", dn_bytes)
        self._weights_sha256 = hashlib.sha256(ae_bytes + dn_bytes + history_bytes).hexdigest()
        write_bytes(directory / "latent_stats.json", json.dumps(self.latent_stats, indent=2).encode())
        write_bytes(directory / "config.json", json.dumps(self.description(), indent=2).encode())

    def save(self, model_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a complete model directory (appears under its final name only when complete)."""
        model_dir = Path(model_dir)
        with atomic_output(model_dir, overwrite=overwrite, is_dir=True, kind="model",
                           inputs=[self.model_dir] if self.model_dir else ()) as tmp:
            self.write_into(tmp)
            log = self.model_dir / "training_log.jsonl" if self.model_dir else None
            if log is not None and log.is_file():
                (tmp / "training_log.jsonl").write_text(log.read_text())
        self.model_dir = model_dir
        return model_dir

    @classmethod
    def load(cls, model_dir: str | os.PathLike, *, device: str | torch.device | None = None) -> "LDNSModel":
        """Read a model directory (JSON + safetensors only; nothing is unpickled)."""
        from nwb_ldns.model_schema import check_latent_stats, check_state

        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise InputFileError(f"model directory {model_dir} does not exist; train one with `nwb-ldns fit`")
        config, data = _read_description(model_dir)
        stats_path = model_dir / "latent_stats.json"
        latent_stats = _read_json(stats_path, model_dir)
        check_latent_stats(latent_stats, int(config["autoencoder"]["latent"]), bool(data["length_mask"]),
                           stats_path, model_dir)
        ae_state, ae_bytes = _read_weights(model_dir / "autoencoder.safetensors", model_dir)
        dn_state, dn_bytes = _read_weights(model_dir / "denoiser.safetensors", model_dir)
        autoencoder, denoiser = build_networks(config, data)
        check_state(ae_state, autoencoder, model_dir / "autoencoder.safetensors", model_dir)
        check_state(dn_state, denoiser, model_dir / "denoiser.safetensors", model_dir)
        autoencoder.load_state_dict(ae_state)
        denoiser.load_state_dict(dn_state)
        history, history_bytes = _load_history(config, data, model_dir)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = cls(config, data, autoencoder, denoiser, latent_stats, model_dir=model_dir,
                    spike_history=history).to(device)
        model._weights_sha256 = hashlib.sha256(ae_bytes + dn_bytes + history_bytes).hexdigest()
        return model

    # ------------------------------------------------------------------------------------------------ sampling
    def sample(self, n: int, *, seed: int = 0, sampler: str = "ddpm", steps: int | None = None,
               lengths: int | Sequence[int] | None = None,
               conditions: Sequence[float] | Sequence[str] | str | None = None, batch_size: int = 512,
               progress: bool = True, conditions_source: str | None = None, spike_history: bool = False):
        """Generate `n` trials as an xarray.Dataset in the session schema (split "generated"); see nwb_ldns.sample.

        conditions: angle model -- one angle (radians) or n (default uniform in (-pi, pi)); category model -- one
        label (str) or n labels, or "uniform" / "from-data" (default: "from-data", the train class frequencies).
        """
        from nwb_ldns.sample import generate

        return generate(self, n, seed=seed, sampler=sampler, steps=steps, lengths=lengths, conditions=conditions,
                        batch_size=batch_size, progress=progress, conditions_source=conditions_source,
                        spike_history=spike_history)

    def __repr__(self) -> str:
        return (f"LDNSModel(preset={self.config.get('preset')!r}, n_units={self.data['n_units']}, "
                f"n_bins={self.data['n_bins']}, latent={self.config['autoencoder']['latent']}, dir={self.model_dir})")
