#!/usr/bin/env bash
# Device side of benchmarks/gpu_denoiser_stage.py: train the denoiser stage on the GPU from carried latents
# (.gpu2/), bring back its weights and log, then time both samplers on 512 trials with the completed model.
#   device run --carry .gpu --carry .gpu2 'bash benchmarks/gpu_denoiser_stage.sh'
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
export PYTHONPATH=$PWD XDG_CACHE_HOME=/tmp/xdg PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 benchmarks/gpu_denoiser_stage.py train .gpu2 /tmp/stage || exit 1
cp /tmp/stage/denoiser.safetensors /tmp/stage/training_log.jsonl "$OUT/"
cp -r .gpu/lorenz.ldns /tmp/model && cp /tmp/stage/denoiser.safetensors .gpu2/latent_stats.json /tmp/model/
timeout "${SAMPLE_TIMEOUT:-100}" python3 - /tmp/model <<'PY'
import sys, time, torch
from nwb_ldns.model_dir import LDNSModel
model = LDNSModel.load(sys.argv[1], device="cuda")
for sampler, steps in (("ddim", 50), ("ddpm", None)):
    model.sample(8, seed=1, sampler=sampler, steps=steps, progress=False)  # warm-up
    torch.cuda.synchronize(); t0 = time.perf_counter()
    out = model.sample(512, seed=0, sampler=sampler, steps=steps, progress=False)
    torch.cuda.synchronize()
    print(f"gpu_sample_{sampler}_512_s={time.perf_counter() - t0:.2f} mean_count={float(out['counts'].values.mean()):.4f}")
PY
echo "sample_rc=$?"
