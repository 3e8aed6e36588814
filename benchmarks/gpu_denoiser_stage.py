"""Run the denoiser stage of a `fit` on a lent GPU from latents made here, when the session cannot travel.

Why: the device tool allows 10 minutes per command and 64 MiB of files; the 615 MB Lorenz session does not travel
and re-simulating it there takes ~190 s of the budget. The denoiser stage of `nwb-ldns fit` only needs the
standardised training latents, so:

    python benchmarks/gpu_denoiser_stage.py prepare SESSION MODEL_DIR .gpu/   # here: encode with the trained AE
    python benchmarks/gpu_denoiser_stage.py train .gpu/ OUT/                  # on the GPU: the preset's denoiser
    python benchmarks/gpu_denoiser_stage.py finish MODEL_DIR OUT/             # here: complete MODEL_DIR

The stage runs exactly as `fit` would run it after the autoencoder: the networks are built after
torch.manual_seed(seed) and the denoiser is trained with seed + 2 (nwb_ldns.training.fit.fit).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def prepare(session_path: str, model_dir: Path, carry_dir: Path) -> None:
    from nwb_ldns.data import load_session
    from nwb_ldns.model_dir import build_networks
    from nwb_ldns.training.fit import _tensors, split_indices
    from nwb_ldns.training.latents import build_latent_set, encode
    from nwb_ldns.training.state import write_json

    description = json.loads((model_dir / "config.json").read_text())
    config, data = description["config"], description["data"]
    session = load_session(session_path)
    train_pos, _, _ = split_indices(session, config["training"]["val_fraction"], int(config["seed"]))
    torch.manual_seed(int(config["seed"]))
    autoencoder, _ = build_networks(config, data)
    autoencoder.load_state_dict(load_file(str(model_dir / "autoencoder.safetensors")))
    train = _tensors(session, train_pos)
    start = time.perf_counter()
    z = encode(autoencoder, train["counts"], config["autoencoder"]["batch_size"], torch.device("cpu"))
    latents, extra, stats = build_latent_set(z, train["mask"], data["length_mask"], config["latents"]["clip"])
    print(f"encoded {tuple(z.shape)} in {time.perf_counter() - start:.1f} s")
    if extra is not None:
        raise SystemExit("variable-length models are not handled by this script")
    carry_dir.mkdir(parents=True, exist_ok=True)
    save_file({"latents": latents.contiguous()}, str(carry_dir / "latents.safetensors"))
    shutil.copy(model_dir / "config.json", carry_dir / "config.json")
    write_json(carry_dir / "latent_stats.json", stats)


def train(carry_dir: Path, out_dir: Path) -> None:
    from nwb_ldns.model_dir import build_networks, state_bytes, write_bytes
    from nwb_ldns.training.common import Run, resolve_device, use_bf16
    from nwb_ldns.training.diffusion import train_denoiser

    description = json.loads((carry_dir / "config.json").read_text())
    config, data = description["config"], description["data"]
    seed = int(config["seed"])
    latents = load_file(str(carry_dir / "latents.safetensors"))["latents"]
    device = resolve_device(config["training"]["device"])
    out_dir.mkdir(parents=True, exist_ok=True)
    run = Run(out_dir, device, use_bf16(config["training"]["precision"], device), progress=False)
    (out_dir / "checkpoints").mkdir(exist_ok=True)
    torch.manual_seed(seed)
    _, denoiser = build_networks(config, data)
    start = time.perf_counter()
    ema_state, summary = train_denoiser(denoiser, latents, None, None, config["diffusion"], seed + 2, run, None)
    denoiser.load_state_dict(ema_state)
    run.log({"stage": "diffusion", "event": "done", **summary})
    write_bytes(out_dir / "denoiser.safetensors", state_bytes(denoiser))
    print(f"denoiser: {summary} in {time.perf_counter() - start:.1f} s on {device}")


def finish(model_dir: Path, out_dir: Path, carry_dir: Path) -> None:
    """Append the stage's log, then write latent statistics and the denoiser (last: marks the model complete)."""
    log = (out_dir / "training_log.jsonl").read_text()
    with open(model_dir / "training_log.jsonl", "a") as handle:
        handle.write(log)
    shutil.copy(carry_dir / "latent_stats.json", model_dir / "latent_stats.json")
    shutil.copy(out_dir / "denoiser.safetensors", model_dir / "denoiser.safetensors")
    print(f"completed {model_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("session"), p.add_argument("model_dir", type=Path), p.add_argument("carry_dir", type=Path)
    t = sub.add_parser("train")
    t.add_argument("carry_dir", type=Path), t.add_argument("out_dir", type=Path)
    f = sub.add_parser("finish")
    f.add_argument("model_dir", type=Path), f.add_argument("out_dir", type=Path), f.add_argument("carry_dir", type=Path)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.session, args.model_dir, args.carry_dir)
    elif args.step == "train":
        train(args.carry_dir, args.out_dir)
    else:
        finish(args.model_dir, args.out_dir, args.carry_dir)


if __name__ == "__main__":
    main()
