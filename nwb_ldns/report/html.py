"""The report page: one static HTML file with inline CSS and relative links to PNG figures beside it.

No scripts, fonts or styles are fetched from anywhere, so the page works opened straight from disk.
"""

from __future__ import annotations

import html

from nwb_ldns.metrics.evaluate import agreement_rows, decoding_lines, table_rows
from nwb_ldns.metrics.verdict import display_name, verdict_rows

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
td.good { background: #d9f2d9; } td.fair { background: #fbe7b5; } td.poor { background: #f6c6c6; }
"""


def _table(header: list[str], rows: list[list[str]], floor_rows: int = 0, floor_last: bool = False) -> str:
    """floor_rows: how many rows (first ones, or last ones with floor_last) are real-vs-real floors (grey)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        floor = i >= len(rows) - floor_rows if floor_last else i < floor_rows
        cls = ' class="floor"' if floor else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _full_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    keys = result["keys"]
    header = ["set"] + keys
    rows = [[display_name(g)] + [f"{g['full'][k]:.4g}" if g["full"][k] is not None else "nan" for k in keys]
            for g in result["generated"]]
    return header, rows


def _memorisation_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    header = ["set", "median distance (generated)", "median distance (reference)", "reference",
              "fraction below reference 5th pct", "exact copies of training trials"]
    rows = []
    for g in result["generated"]:
        m = g.get("memorisation")
        if m:
            rows.append([display_name(g), f"{m['median_generated']:.3g}", f"{m['median_heldout']:.3g}", m["reference"],
                         f"{m['frac_closer_than_heldout_p5']:.3f}", str(m["exact_copies"])])
    return header, rows


def _grade(multiple: float | None) -> str:
    """Cell colour of a multiple of the equal-size floor: <=1.5x green, <=3x amber, else (or unknown) red."""
    if multiple is None or not multiple == multiple:
        return "poor"
    return "good" if multiple <= 1.5 else "fair" if multiple <= 3 else "poor"


def _verdict_section(result: dict) -> list[str]:
    """The Verdict table: multiples of the equal-size floor (coloured) and the baselines each set beats."""
    header, rows, numbers = verdict_rows(result)
    if not rows:
        return []
    verdict = result["verdict"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row, multiples in zip(rows, numbers):
        cells = [f"<td>{html.escape(row[0])}</td>"]
        cells += [f'<td class="{_grade(m)}">{html.escape(text)}</td>' for text, m in zip(row[1:-1], multiples)]
        cells.append(f"<td>{html.escape(row[-1])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    where = ("disjoint halves of the reference trials (the session has no other real trials)" if verdict["fallback"]
             else f"random {verdict['k']}-trial subsets of the real {html.escape(verdict['pool'])} trials")
    return ["<h2>Verdict</h2>", f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>",
            f"<p class='small'>Each statistic of each set as a multiple of the equal-size real-vs-real floor: "
            f"{verdict['n_resamples']} random {verdict['k']}-trial subsets of each set vs all reference trials, "
            f"against {where} vs all reference trials. Green: at most 1.5x the floor, amber: at most 3x, red: "
            "more. 'beats X on KL, corr': lower than baseline X by more than both bootstrap stds.</p>"]


def _comparison_section(result: dict) -> list[str]:
    """`nwb-ldns compare`'s table: the LDNS paper's monkey table (a row per model, the floor last)."""
    if not result.get("comparison"):
        return []
    from nwb_ldns.compare import paper_table

    header, rows = paper_table(result)
    body = _table(header, rows, floor_rows=1, floor_last=True)
    models = ", ".join(f"{m['label']} ({m['name']}): fit {m['fit_seconds']:.0f} s"
                       f"{' (reused)' if m['fit_reused'] else ''}, sampling {m['sample_seconds']:.0f} s"
                       for m in result["comparison"]["models"])
    return ["<h2>Model comparison (the LDNS paper's table; lower is better)</h2>", body,
            f"<p class='small'>Mean ± std over {result['settings']['n_resamples']} bootstrap resamples of each "
            f"model's samples, each vs all {result['real']['n_trials']} real "
            f"{html.escape(result['real']['split'])} trials; last row: a random half of the real trials vs the "
            f"other half. KL and correlation RMSE in units of 10⁻³ (the paper's), ISI RMSEs in seconds. "
            f"{html.escape(models)}. All figures below show every model side by side.</p>"]


def render(result: dict, figures: list[tuple[str, str, str]]) -> str:
    """The page: metric table with noise floor, full-set values, verdict, agreement, memorisation, then figures
    (file, title, caption)."""
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
    ]
    parts += _comparison_section(result)
    parts += [
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
    parts += _verdict_section(result)
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
        parts += ["<h2>Conditioning checks</h2>", "<pre>" + html.escape("\n".join(lines)) + "</pre>",
                  "<p class='small'>Behaviour decoding: a ridge decoder trained on the real training trials read "
                  "back from each set's spikes. Per-condition PSTH correlation: Pearson r over (time, unit) of the "
                  "smoothed PSTH of the real training trials of each condition and of the generated trials "
                  "requested for it, averaged over conditions; the condition-specific r correlates each PSTH minus "
                  "the mean over conditions (about 0 for a model that ignores the condition).</p>"]
    for note in result.get("notes", []):
        parts.append(f"<p class='small'>Note: {html.escape(note)}</p>")
    parts.append("<h2>Figures</h2>")
    for filename, title, caption in figures:
        parts.append(f'<figure><img src="{html.escape(filename)}" alt="{html.escape(title)}">'
                     f"<figcaption><b>{html.escape(title)}.</b> {html.escape(caption)}</figcaption></figure>")
    parts.append("<p class='small'>Numbers as JSON: <a href='results.json'>results.json</a>.</p></body></html>")
    return "\n".join(parts)
