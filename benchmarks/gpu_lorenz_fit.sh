#!/usr/bin/env bash
# Full-budget `lorenz` preset fit on a lent GPU machine (the `device` tool), for docs/results.md.
#
# The machine has torch + CUDA but not the NWB stack: the wheels of pynwb/hdmf and their pure dependencies travel
# in .whl/ (see docs/results.md for the download command). The 615 MB session does not travel; it is simulated
# there with the same seed, which gives the same counts as the local copy (the script prints a checksum of them).
#
#   device run --carry .whl 'bash benchmarks/gpu_lorenz_fit.sh'          (OUT is the folder that comes back)
#
# Writes $OUT/lorenz.ldns.tar (config, weights, latent statistics, training log; no checkpoints) and $OUT/log.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
BUDGET_S=${BUDGET_S:-585}  # the device tool stops a command at 600 s
TRIALS=${TRIALS:-5000}
PY=${PY:-python3}

[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD:$PWD/ndx_extensions/ndx-ldns/src/pynwb
export XDG_CACHE_HOME=/tmp/xdg PYTHONUNBUFFERED=1
nwb_ldns() { $PY -c 'import sys; from nwb_ldns.cli.main import cli; sys.argv[0] = "nwb-ldns"; cli()' "$@"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c 'import torch, pynwb, hdmf; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
            "pynwb", pynwb.__version__, "hdmf", hdmf.__version__)'
nproc

WORK=${WORK:-/tmp}
SESSION=$WORK/lorenz5000.nwb
MODEL=$WORK/lorenz.ldns
start=$(date +%s)
nwb_ldns convert lorenz "$SESSION" --trials "$TRIALS" --no-progress || exit 1
echo "convert_s=$(( $(date +%s) - start ))"
[ -d .gpu/lorenz.ldns ] || $PY - "$SESSION" <<'EOF'
import hashlib, sys
from nwb_ldns.data import load_session
counts = load_session(sys.argv[1])["counts"].values
print("counts", counts.shape, "total", int(counts.sum()), "sha256", hashlib.sha256(counts.tobytes()).hexdigest()[:16])
EOF

start=$(date +%s)
FIT_TIMEOUT=$(( BUDGET_S - SECONDS - 50 ))  # leave time for GPU sampling timings and the tar
echo "fit_timeout_s=$FIT_TIMEOUT"
# A partial run brought back from an earlier call (.gpu/lorenz.ldns, carried) is resumed instead of started over.
if [ -d .gpu/lorenz.ldns ]; then
    rm -rf "$MODEL"; cp -r .gpu/lorenz.ldns "$MODEL"; FIT_ARGS=(--resume)
    # The simulation is re-run here, so the file's bytes (creation date, object ids) differ from the one the run
    # started on while its data are the same: when the counts checksum equals EXPECT_COUNTS (the first call's),
    # point the run at this file; otherwise --resume refuses, as it should.
    $PY - "$SESSION" "$MODEL/config.json" "${EXPECT_COUNTS:-}" <<'EOF2' || exit 1
import hashlib, json, sys
from nwb_ldns.data import load_session
from nwb_ldns.fileio import sha256_file
session, config_path, expected = sys.argv[1:]
digest = hashlib.sha256(load_session(session)["counts"].values.tobytes()).hexdigest()[:16]
if digest != expected:
    sys.exit(f"counts checksum {digest} != EXPECT_COUNTS {expected!r}: not the session the run started on")
config = json.load(open(config_path))
config["data"]["source"]["source_sha256"] = sha256_file(session)
json.dump(config, open(config_path, "w"), indent=2)
print("resuming on a regenerated session with identical counts", digest)
EOF2
else
    FIT_ARGS=(--preset lorenz "$@")
fi
timeout "$FIT_TIMEOUT" $PY -c 'import sys; from nwb_ldns.cli.main import cli; sys.argv[0] = "nwb-ldns"; cli()' \
    fit "$SESSION" --out "$MODEL" --quiet "${FIT_ARGS[@]}"
echo "fit_rc=$? fit_s=$(( $(date +%s) - start ))"

# Sampling speed on this GPU (512 trials, both samplers); the samples themselves are drawn again on the CPU side.
if [ -f "$MODEL/denoiser.safetensors" ]; then
$PY - "$MODEL" <<'EOF'
import sys, time, torch
from nwb_ldns.model_dir import LDNSModel
model = LDNSModel.load(sys.argv[1], device="cuda" if torch.cuda.is_available() else "cpu")
for sampler, steps in (("ddim", 50), ("ddpm", None)):
    model.sample(8, seed=1, sampler=sampler, steps=steps, progress=False)  # warm-up
    torch.cuda.is_available() and torch.cuda.synchronize(); t0 = time.perf_counter()
    out = model.sample(512, seed=0, sampler=sampler, steps=steps, progress=False)
    torch.cuda.is_available() and torch.cuda.synchronize()
    print(f"gpu_sample_{sampler}_512_s={time.perf_counter() - t0:.2f} mean_count={float(out['counts'].values.mean()):.4f}")
EOF
fi

# Bring back everything except the resume checkpoints (or only the newest checkpoint when the fit did not finish).
cd "$WORK" && if [ -f "$MODEL/denoiser.safetensors" ]; then
    tar --exclude='lorenz.ldns/checkpoints' -cf "$OUT/lorenz.ldns.tar" lorenz.ldns
else
    last=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["checkpoint"])' \
           lorenz.ldns/checkpoints/latest.json 2>/dev/null)
    tar --exclude='lorenz.ldns/checkpoints' -cf "$OUT/lorenz.ldns.partial.tar" lorenz.ldns
    [ -n "$last" ] && tar -cf "$OUT/lorenz.ldns.last-checkpoint.tar" lorenz.ldns/checkpoints/latest.json \
        "lorenz.ldns/checkpoints/$last"
fi
ls -la "$OUT"
