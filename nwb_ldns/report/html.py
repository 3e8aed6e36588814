"""The report page: one static HTML file with inline CSS and relative links to PNG figures beside it.

No scripts, fonts or styles are fetched from anywhere, so the page works opened straight from disk.
"""

from __future__ import annotations

import html

from nwb_ldns.metrics.evaluate import agreement_rows, decoding_lines, table_rows

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.floor { background: #f3f3f3; font-style: italic; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.small { font-size: 0.85em; color: #555; }
"""


def _table(header: list[str], rows: list[list[str]], floor_rows: int = 0) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="floor"' if i < floor_rows else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _full_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    keys = result["keys"]
    header = ["set"] + keys
    rows = [[g["name"]] + [f"{g['full'][k]:.4g}" if g["full"][k] is not None else "nan" for k in keys]
            for g in result["generated"]]
    return header, rows


def _memorisation_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    header = ["set", "median distance (generated)", "median distance (reference)", "reference",
              "fraction below reference 5th pct", "exact copies of training trials"]
    rows = []
    for g in result["generated"]:
        m = g.get("memorisation")
        if m:
            rows.append([g["name"], f"{m['median_generated']:.3g}", f"{m['median_heldout']:.3g}", m["reference"],
                         f"{m['frac_closer_than_heldout_p5']:.3f}", str(m["exact_copies"])])
    return header, rows


def render(result: dict, figures: list[tuple[str, str, str]]) -> str:
    """The page: metric table with noise floor, full-set values, memorisation, then figures (file, title, caption)."""
    real = result["real"]
    settings = result["settings"]
    header, rows = table_rows(result)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>nwb-ldns evaluation report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>nwb-ldns evaluation report</h1>",
        f"<p>Real data: <code>{html.escape(str(real.get('path') or real['source_path']))}</code>, "
        f"{real['n_trials']} {html.escape(real['split'])} trials, {real['n_units']} units, {real['n_bins']} bins of "
        f"{real['bin_width'] * 1e3:g} ms ({real['n_heldout_trials']} held-out trials). "
        f"Created {result['created']}.</p>",
        "<h2>Statistics (lower is better)</h2>",
        _table(header, rows, floor_rows=1),
        f"<p class='small'>Mean ± std over {settings['n_resamples']} bootstrap resamples (seed {settings['seed']}) of "
        f"each generated set, each compared with all {real['n_trials']} real {html.escape(real['split'])} trials. "
        "Noise floor: a random half of the real "
        "trials vs the complementary half of a bootstrap resample (ISI columns vs all real trials). KL: "
        f"KL(generated ‖ real) of Scott-KDE population-count distributions on 0..{settings['maxval']}. "
        "RMSE corr (ref.): over the full N×N matrices with the diagonal and upper triangle zeroed (the LDNS "
        "convention); RMSE corr (pairs): over distinct pairs. ISI statistics in seconds.</p>",
        "<h3>Full sets (no resampling)</h3>",
        _table(*_full_rows(result)),
    ]
    agreement_header, agreement = agreement_rows(result)
    parts += ["<h2>Agreement with the data (higher is better)</h2>",
              _table(agreement_header, agreement, floor_rows=1 if result.get("agreement_floor") else 0),
              "<p class='small'>Pearson r between real and generated per-neuron mean and std ISI, correlation "
              "matrices (lower triangle with zeros, the LDNS authors' convention; 'pairs': distinct pairs only) and "
              "population-count KDE densities: the check the LDNS authors report for Lorenz (0.9969, 0.9905, 0.9988, "
              "0.9988). First row: one random half of the real trials against the other.</p>"]
    mem_header, mem_rows = _memorisation_rows(result)
    if mem_rows:
        parts += ["<h2>Memorisation check</h2>", _table(mem_header, mem_rows),
                  "<p class='small'>Euclidean distance of each trial (Gaussian-smoothed counts) to its nearest real "
                  "training trial. A model that copies training trials puts many generated trials below the "
                  "5th percentile of the reference distances (about 0.05 expected without copying).</p>"]
    lines = decoding_lines(result)
    if lines:
        parts += ["<h2>Behaviour decoding</h2>", "<pre>" + html.escape("\n".join(lines)) + "</pre>"]
    for note in result.get("notes", []):
        parts.append(f"<p class='small'>Note: {html.escape(note)}</p>")
    parts.append("<h2>Figures</h2>")
    for filename, title, caption in figures:
        parts.append(f'<figure><img src="{html.escape(filename)}" alt="{html.escape(title)}">'
                     f"<figcaption><b>{html.escape(title)}.</b> {html.escape(caption)}</figcaption></figure>")
    parts.append("<p class='small'>Numbers as JSON: <a href='results.json'>results.json</a>.</p></body></html>")
    return "\n".join(parts)
