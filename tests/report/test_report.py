"""The HTML report opens from disk in headless Chromium: every figure loads, no SEVERE console error."""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

from nwb_ldns.errors import OutputExistsError

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,2400"]


def _binary(*names):
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, mock_session_path):
    from nwb_ldns.data import load_session
    from nwb_ldns.export.testing import make_generated_dataset
    from nwb_ldns.metrics.evaluate import evaluate
    from nwb_ldns.report import write_report

    real = load_session(mock_session_path)
    generated = [make_generated_dataset(n_trials=12, n_bins=32, n_units=8, seed=s) for s in (1, 2)]
    result = evaluate(real, generated, names=["model A", "model <B>"], n_resamples=2)
    out = tmp_path_factory.mktemp("report") / "report"
    write_report(out, real, generated, result)
    return out, real, generated, result


def test_report_files_and_overwrite(report_dir):
    out, real, generated, result = report_dir
    from nwb_ldns.report import write_report

    page = (out / "index.html").read_text()
    assert "noise floor" in page and "model &lt;B&gt;" in page  # names are escaped
    assert "Agreement with the data" in page and "real half vs half" in page  # the authors' Pearson checks
    agreement = result["generated"][1]["agreement"]["r_std_isi"]
    assert f"{agreement:.4f}" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network
    images = sorted(p.name for p in out.glob("*.png"))
    assert len(images) == 11 and all(f'src="{name}"' in page for name in images)
    assert {"isi_distribution.png", "psth_condition.png"} <= set(images)  # the mock sets share trial_condition
    saved = json.loads((out / "results.json").read_text())
    assert saved["generated"][1]["name"] == "model <B>"
    assert [s["variable"] for s in saved["condition_psth"]["generated"]] == ["trial_condition"] * 2
    assert "per-condition PSTH correlation" in page
    assert page.index('id="verdict"') < page.index("Statistics (lower is better)")  # the verdict row comes first
    assert page.count('class="verdict-line"') == 2 and "at most 2x the noise floor" in page
    full = page[page.index("Full sets"):]
    full = full[:full.index("<h2>")]
    assert "RMSE mean ISI (s)" in full and "rmse_mean_isi" not in full  # human labels, not JSON keys
    assert "<th>finding</th>" in page and "above reference 95th pct (poor fit)" in page  # memorisation both ways
    with pytest.raises(OutputExistsError):
        write_report(out, real, generated, result)


def test_report_renders_in_headless_chromium(report_dir):
    chromium = _binary("chromium", "chromium-browser", "google-chrome")
    driver_path = _binary("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("chromium/chromedriver not installed (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = report_dir[0]
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="nwb-ldns-chromium-")
    for arg in CHROMIUM_ARGS + [f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get((out / "index.html").resolve().as_uri())
        states = driver.execute_script(
            "return Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0]);")
        assert len(states) == 11
        assert all(ok for _, ok in states), [src for src, ok in states if not ok]
        from selenium.webdriver.common.by import By

        lines = driver.find_elements(By.CSS_SELECTOR, "#verdict .verdict-line")  # one verdict line per set
        assert len(lines) == 2 and all(line.is_displayed() for line in lines)
        assert all(line.rect["y"] + line.rect["height"] < 800 for line in lines)  # at the top, above the fold
        assert "model <B>" in lines[1].text and "KL" in lines[1].text and "x" in lines[1].text
        backgrounds = {chip.get_attribute("data-grade"): chip.value_of_css_property("background-color")
                       for chip in driver.find_elements(By.CSS_SELECTOR, "#verdict .chip[data-key]")}
        palette = {"green": "rgba(200, 236, 200, 1)", "amber": "rgba(253, 226, 166, 1)",
                   "red": "rgba(247, 188, 188, 1)"}
        assert backgrounds and all(palette[g] == colour for g, colour in backgrounds.items() if g in palette)
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []
        assert "nwb-ldns evaluation report" in driver.title
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
