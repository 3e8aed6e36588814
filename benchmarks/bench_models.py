"""Speed and memory figures of the LDNS networks on CPU (float32); prints a table, asserts nothing.

Each case runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own. Times are the best of
--reps repetitions after one warm-up (the machine is shared; the best repetition is the least disturbed one).
FLOPs: torch.utils.flop_counter for matrix products, plus FFTs estimated as 5 N log2 N per complex transform
and half that per real-input or real-output transform; element-wise work is not counted. "floor" is the time
the counted FLOPs would take at 140 GFLOP/s.

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/bench_models.py            # all cases
    .venv/bin/python benchmarks/bench_models.py --case sample_ddpm --full          # the full 1000-step sampler
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

CASES = ("ae_step", "denoiser_step", "sample_ddpm", "sample_ddim")
FLOOR_GFLOPS = 140.0


def _fft_formulas() -> dict:
    import torch

    aten = torch.ops.aten

    def lengths(shape, dims):
        return math.prod(shape[d] for d in dims)

    def r2c(self_shape, dim, normalization, onesided, out_shape=None, **kwargs):
        n = lengths(self_shape, dim)
        return int(math.prod(self_shape) / n * 2.5 * n * math.log2(max(n, 2)))

    def c2r(self_shape, dim, normalization, last_dim_size, out_shape=None, **kwargs):
        n = lengths(out_shape, dim)
        return int(math.prod(out_shape) / n * 2.5 * n * math.log2(max(n, 2)))

    def c2c(self_shape, dim, normalization, forward, out_shape=None, **kwargs):
        n = lengths(self_shape, dim)
        return int(math.prod(self_shape) / n * 5 * n * math.log2(max(n, 2)))

    return {aten._fft_r2c: r2c, aten._fft_c2r: c2r, aten._fft_c2c: c2c}


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=_fft_formulas()) as counter:
        fn()
    return counter.get_total_flops()


def _best_time(fn, reps: int) -> float:
    fn()  # warm-up (allocator, kernel caches, MKL/oneDNN plans)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_case(case: str, reps: int, threads: int, ddpm_steps: int, full: bool, micro: bool,
             s4_mode: str = "diag") -> dict:
    import torch

    from nwb_ldns.config import resolve_config
    from nwb_ldns.models import EMA, AutoEncoder, DDPMSchedule, Denoiser, micro_batch_size, sample_latents
    from nwb_ldns.training.steps import autoencoder_step, denoiser_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    info: dict = {"case": case}
    if case == "ae_step":
        model = AutoEncoder(128, hidden=256, latent=8, n_blocks=4, bidirectional=True, s4_mode=s4_mode)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        x = torch.poisson(torch.full((64, 256, 128), 0.2))
        mask = torch.ones(64, 256, 1)
        cfg = resolve_config("lorenz")["autoencoder"]
        gen = torch.Generator().manual_seed(0)
        mb = micro_batch_size(model, 256) if micro else 64

        def fn():  # the training loop's own step (nwb_ldns.training.steps)
            autoencoder_step(model, opt, x, mask, cfg, gen, bf16=False, micro=mb)

        info["shape"] = (
            f"AE lorenz, batch 64 x 256 bins x 128 units, C 256, 4 bidir blocks; fwd+bwd+AdamW; micro-batch {mb}"
        )
        steps = 1
    elif case == "denoiser_step":
        model = Denoiser(8, hidden=64, n_blocks=4, s4_mode=s4_mode)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        ema = EMA(model)
        sched = DDPMSchedule()
        z0 = torch.randn(512, 256, 8)

        cfg = resolve_config("lorenz")["diffusion"]
        gen = torch.Generator().manual_seed(0)
        mb = micro_batch_size(model, 256) if micro else 512

        def fn():  # the training loop's own step, then the EMA update as in the loop
            denoiser_step(model, opt, sched, z0, None, None, cfg, gen, bf16=False, micro=mb)
            ema.update(model)

        info["shape"] = (
            f"denoiser lorenz, batch 512 x 256 bins x 8 ch, C 64, 4 blocks; fwd+bwd+AdamW+EMA; micro-batch {mb}"
        )
        steps = 1
    else:
        model = Denoiser(8, hidden=64, n_blocks=4, s4_mode=s4_mode)
        if case == "sample_ddpm":
            steps = 1000 if full else ddpm_steps
            sched = DDPMSchedule(num_steps=steps)  # same per-step work as the 1000-step schedule
            kwargs = {"sampler": "ddpm"}
        else:
            steps = 50
            sched = DDPMSchedule()
            kwargs = {"sampler": "ddim", "steps": 50}

        def fn():
            sample_latents(model, sched, (512, 256, 8), generator=torch.Generator().manual_seed(0), **kwargs)

        info["shape"] = f"512 Lorenz trials x 256 bins x 8 ch, {kwargs['sampler']} {steps} steps"

    rss_before = _maxrss_mb()
    seconds = _best_time(fn, reps if steps < 1000 else 1)
    info["peak_rss_mb"] = _maxrss_mb()
    info["rss_growth_mb"] = info["peak_rss_mb"] - rss_before
    if case.startswith("sample"):
        model.eval()
        x = torch.randn(512, 256, 8)
        t = torch.full((512,), 500)
        with torch.inference_mode():
            model(x, t)  # fills the kernel cache, as in the sampler
            flops_per_step = count_flops(lambda: model(x, t))
        flops = flops_per_step * steps
        if case == "sample_ddpm" and not full:
            info["measured_steps"] = steps
            info["note"] = f"timed {steps} steps, extrapolated x{1000 / steps:g} to 1000"
            seconds, flops = seconds * 1000 / steps, flops_per_step * 1000
    else:
        flops = count_flops(fn)
    info.update(seconds=seconds, gflop=flops / 1e9, threads=threads)
    info["gflops_per_s"] = info["gflop"] / seconds
    info["floor_s"] = info["gflop"] / FLOOR_GFLOPS
    info["time_over_floor"] = seconds / info["floor_s"]
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, action="append", help="run only this case (repeatable)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per case (best is reported)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ddpm-steps", type=int, default=50, help="DDPM steps timed before extrapolating")
    parser.add_argument("--full", action="store_true", help="run all 1000 DDPM steps instead of extrapolating")
    parser.add_argument("--no-micro-batch", action="store_true", help="training steps in one piece (no accumulation)")
    parser.add_argument("--no-chunking", action="store_true",
                        help="also disable the automatic inference chunking (the 'before' figures)")
    parser.add_argument("--s4-mode", choices=["diag", "dplr"], default="diag", help="S4 kernel of the networks")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = parser.parse_args()
    cases = args.case or list(CASES)
    if args.no_chunking:
        args.no_micro_batch = True
    if args.child:
        if args.no_chunking:
            from nwb_ldns.models import batching

            batching.INFERENCE_CHUNK_ELEMENTS = 1 << 62
        info = run_case(cases[0], args.reps, args.threads, args.ddpm_steps, args.full, not args.no_micro_batch,
                        args.s4_mode)
        print(json.dumps(info))
        return
    rows = []
    for case in cases:
        cmd = [sys.executable, __file__, "--child", "--case", case, "--reps", str(args.reps),
               "--threads", str(args.threads), "--ddpm-steps", str(args.ddpm_steps), "--s4-mode", args.s4_mode]
        cmd += (["--full"] if args.full else []) + (["--no-micro-batch"] if args.no_micro_batch else [])
        cmd += ["--no-chunking"] if args.no_chunking else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        if args.json:
            print(out, flush=True)
    if args.json:
        return
    mode = "one piece (no chunking, no micro-batches)" if args.no_chunking else (
        "training in one piece" if args.no_micro_batch else "chunked inference, micro-batched training")
    print(f"torch threads: {args.threads}; float32 CPU; best of {args.reps}; {mode}")
    head = f"{'case':<15}{'time s':>9}{'GFLOP':>9}{'GFLOP/s':>9}{'floor s':>9}{'t/floor':>8}{'peak MB':>9}{'+MB':>7}"
    print(head)
    for r in rows:
        print(f"{r['case']:<15}{r['seconds']:>9.3f}{r['gflop']:>9.1f}{r['gflops_per_s']:>9.1f}{r['floor_s']:>9.3f}"
              f"{r['time_over_floor']:>8.2f}{r['peak_rss_mb']:>9.0f}{r['rss_growth_mb']:>7.0f}")
    for r in rows:
        print(f"  {r['case']}: {r['shape']}" + (f" ({r['note']})" if "note" in r else ""))


if __name__ == "__main__":
    main()
