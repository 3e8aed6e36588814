"""Make docs/report-verdict.png (the top of a real evaluation report: its verdict row) and docs/report-screenshot.png
(the whole page, down to --full-height pixels), in headless Chromium.

A small Lorenz session is simulated, fitted with the `tiny` preset, sampled, and evaluated with a PSTH-Poisson
baseline and `--model` (so the report draws every figure: ground-truth and autoencoder-vs-diffusion latents too);
the top of index.html is then captured with the same headless Chromium set-up as tests/report/test_report.py.

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/report_screenshot.py            # -> docs/report-verdict.png
    ... --work /tmp/shot --reuse     # keep the session/model/samples of an earlier run, redo evaluate + capture
    ... --full-out ''                # the verdict capture only

Needs chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver) and selenium.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1"]


def nwb_ldns(work: Path, *args: str) -> None:
    """Run one CLI command in `work` (file names relative to it, as the report shows them) with this interpreter
    (python -m nwb_ldns), failing loudly."""
    cmd = [sys.executable, "-m", "nwb_ldns", *args]
    print(f"$ (cd {work} && nwb-ldns " + " ".join(args) + ")", flush=True)
    start = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=work)
    print(f"  {time.time() - start:.0f} s", flush=True)


def build_report(work: Path, trials: int, samples: int, reuse: bool) -> Path:
    """Session -> tiny fit -> samples + PSTH baseline -> evaluate --report --model; returns the report folder."""
    work.mkdir(parents=True, exist_ok=True)
    session, model, synthetic, baseline = "lorenz.nwb", "lorenz.ldns", "lorenz-synthetic.nwb", "lorenz-psth.nwb"
    if not (reuse and (work / session).exists()):
        nwb_ldns(work, "convert", "lorenz", session, "--trials", str(trials), "--neurons", "64", "--bins", "128",
                 "--overwrite", "--no-progress")
    if not (reuse and (work / model / "config.json").exists()):
        nwb_ldns(work, "fit", session, "--preset", "tiny", "--out", model, "--overwrite")
    if not (reuse and (work / synthetic).exists()):
        nwb_ldns(work, "sample", model, "--n", str(samples), "--sampler", "ddpm", "--seed", "0",
                 "--out", synthetic, "--overwrite")
    if not (reuse and (work / baseline).exists()):
        nwb_ldns(work, "baseline", "psth", session, "--n", str(samples), "--seed", "0", "--out", baseline,
                 "--overwrite")
    nwb_ldns(work, "evaluate", session, synthetic, "--baseline", baseline, "--model", model,
             "--report", "report", "--overwrite")
    return work / "report"


def capture(page: Path, out: Path, width: int, height: int, full_out: Path | None = None,
            full_height: int = 6000) -> None:
    """Screenshot of page (a local file) in headless Chromium, down to just below its verdict box; with full_out,
    also the whole page (at most full_height pixels tall)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        sys.exit("chromium and chromedriver are needed (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="nwb-ldns-chromium-")
    for arg in CHROMIUM_ARGS + [f"--window-size={width},{height}", f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_window_size(width, height)
        driver.get(page.resolve().as_uri())
        bottom = driver.execute_script(
            "const v = document.getElementById('verdict'); return v ? v.getBoundingClientRect().bottom : 0;")
        if not bottom:
            sys.exit(f"{page} has no verdict section")
        driver.set_window_size(width, int(bottom) + 200)  # room for the browser's own frame in the window size
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial.png")
        if not driver.save_screenshot(str(partial)):
            sys.exit("Chromium did not write the screenshot")
        crop_top(partial, int(bottom) + 16)
        partial.replace(out)
        if full_out is not None:
            tall = int(driver.execute_script("return document.documentElement.scrollHeight;"))
            driver.set_window_size(width, min(tall, full_height) + 200)
            partial = full_out.with_name(full_out.name + ".partial.png")
            if not driver.save_screenshot(str(partial)):
                sys.exit("Chromium did not write the full-page screenshot")
            crop_top(partial, min(tall, full_height), palette=True)
            partial.replace(full_out)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def crop_top(png: Path, height: int, palette: bool = False) -> None:
    """Keep the top `height` pixels of png; palette: 256 colours (a whole page is ~3x smaller in the repository)."""
    from PIL import Image

    with Image.open(png) as image:
        cropped = image.crop((0, 0, image.width, min(height, image.height)))
    if palette:
        cropped = cropped.convert("RGB").quantize(256)
    cropped.save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-verdict.png")
    parser.add_argument("--full-out", default=str(ROOT / "docs" / "report-screenshot.png"),
                        help="whole-page capture ('' for none)")
    parser.add_argument("--full-height", type=int, default=6000, help="the whole-page capture's height limit")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "nwb-ldns-report-shot")
    parser.add_argument("--trials", type=int, default=400, help="simulated Lorenz trials (70 %% train)")
    parser.add_argument("--samples", type=int, default=200, help="generated trials and baseline trials")
    parser.add_argument("--reuse", action="store_true", help="reuse session, model and samples found in --work")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900, help="initial window height (the capture ends "
                        "just below the verdict box)")
    args = parser.parse_args()
    report = build_report(args.work.resolve(), args.trials, args.samples, args.reuse)
    full_out = Path(args.full_out).resolve() if args.full_out else None
    capture(report / "index.html", args.out.resolve(), args.width, args.height, full_out, args.full_height)
    print(f"wrote {args.out}" + (f" and {full_out}" if full_out else "") + f" (report: {report / 'index.html'})")


if __name__ == "__main__":
    main()
