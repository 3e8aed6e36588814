"""The report page: one static HTML file with inline CSS and relative links to PNG figures beside it.

No scripts, fonts or styles are fetched from anywhere, so the page works opened straight from disk.
"""

from __future__ import annotations

import html

from nwb_ldns.metrics.evaluate import LABELS, agreement_rows, decoding_lines, table_rows
from nwb_ldns.metrics.memorisation import memorisation_verdict
from nwb_ldns.metrics.verdict import GRADE_LIMITS, SHORT, display_name, grade, set_verdicts, verdict_rows

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
td.green { background: #d9f2d9; } td.amber { background: #fbe7b5; } td.red { background: #f6c6c6; }
#verdict { border: 2px solid #bbb; border-radius: 6px; padding: 0.4em 1em 0.6em; margin: 1em 0; background: #fafafa; }
#verdict h2 { margin-top: 0.3em; border: none; }
.verdict-line { font-size: 1.05em; line-height: 2.1; margin: 0.2em 0; }
.verdict-line .set { font-weight: bold; margin-right: 0.5em; }
.chip { display: inline-block; padding: 0 0.45em; margin: 0 0.15em; border-radius: 4px; line-height: 1.6;
        white-space: nowrap; border: 1px solid #999; }
.chip.green { background: #c8ecc8; border-color: #2e7d32; color: #1b4d1e; }
.chip.amber { background: #fde2a6; border-color: #b77900; color: #5c3d00; }
.chip.red { background: #f7bcbc; border-color: #b71c1c; color: #6d0f0f; }
.chip.na { background: #eee; color: #666; }
.overall { font-weight: bold; text-transform: uppercase; }
.memo { white-space: nowrap; margin-left: 0.6em; }
"""

GRADE_CLASS = {"green": "green", "amber": "amber", "red": "red", "n/a": "na"}


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
    header = ["set", "trials"] + [LABELS.get(k, k) for k in keys]
    rows = [[display_name(g), str(g["n_trials"])]
            + [f"{g['full'][k]:.4g}" if g["full"][k] is not None else "n/a" for k in keys]
            for g in result["generated"]]
    return header, rows


def _memorisation_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    header = ["set", "finding", "median distance (generated)", "median distance (reference)", "reference",
              "below reference 5th pct (copying)", "above reference 95th pct (poor fit)",
              "exact copies of training trials"]
    rows = []
    for g in result["generated"]:
        m = g.get("memorisation")
        if m:
            farther = m.get("frac_farther_than_heldout_p95")
            rows.append([display_name(g), memorisation_finding(g), f"{m['median_generated']:.3g}",
                         f"{m['median_heldout']:.3g}", REFERENCES.get(m["reference"], m["reference"]),
                         f"{m['frac_closer_than_heldout_p5']:.0%}", "n/a" if farther is None else f"{farther:.0%}",
                         str(m["exact_copies"])])
    return header, rows


REFERENCES = {"heldout": "held-out real trials", "train-loo": "training trials (leave-one-out)"}


def memorisation_finding(entry: dict) -> str:
    """'no copying, no poor fit', 'copying', 'poor fit' or both, for one generated entry ('' without a check)."""
    m = entry.get("memorisation")
    if not m:
        return ""
    kind, _ = memorisation_verdict(m, int(entry.get("n_trials") or 0))
    return "no copying, no poor fit" if kind == "ok" else kind


THRESHOLDS = (f"green: at most {GRADE_LIMITS[0]:g}x the noise floor, amber: at most {GRADE_LIMITS[1]:g}x, "
              f"red: more than {GRADE_LIMITS[1]:g}x")


def _multiple(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


def verdict_summary(result: dict) -> list[str]:
    """The one-line verdict per set at the top of the page: each statistic as a multiple of its noise floor,
    coloured (THRESHOLDS), the set's overall grade (its worst statistic) and the memorisation finding."""
    verdicts = set_verdicts(result)
    if not verdicts:
        return []
    entries = {entry["name"]: entry for entry in result["generated"]}
    lines = []
    for v in verdicts:
        chips = " ".join(
            f'<span class="chip {GRADE_CLASS[v["grades"][k]]}" data-key="{html.escape(k)}" '
            f'data-grade="{v["grades"][k]}">{html.escape(SHORT.get(k, k))} {_multiple(m)}</span>'
            for k, m in v["multiples"].items())
        finding = memorisation_finding(entries[v["name"]])
        memo = f' <span class="memo">memorisation: <b>{html.escape(finding)}</b></span>' if finding else ""
        overall = GRADE_CLASS[v["overall"]]
        lines.append(f'<p class="verdict-line" data-grade="{v["overall"]}"><span class="set">'
                     f'{html.escape(v["display"])}</span><span class="chip {overall} overall">{v["overall"]}</span>'
                     f" {chips}{memo}</p>")
    floors = html.escape(", ".join(sorted({v["floor"] for v in verdicts})))
    return ['<section id="verdict"><h2>Verdict (lower is better)</h2>', *lines,
            f"<p class='small'>Each statistic of each set as a multiple of its noise floor ({floors}: what real trials score against the real reference); {THRESHOLDS}. The overall grade is the worst "
            "statistic. KL: population-count KL divergence; corr: RMSE of pairwise correlations (corr pairs: distinct "
            "pairs only); mean / std ISI: RMSE of per-neuron inter-spike interval statistics; rate: RMSE of "
            "per-neuron firing rates. Memorisation: too close to the training trials = copying, much farther than "
            "held-out real trials = poor fit (details below).</p></section>"]


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
        cells += [f'<td class="{GRADE_CLASS[grade(m)]}">{html.escape(text)}</td>'
                  for text, m in zip(row[1:-1], multiples)]
        cells.append(f"<td>{html.escape(row[-1])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    where = ("disjoint halves of the reference trials (the session has no other real trials)" if verdict["fallback"]
             else f"random {verdict['k']}-trial subsets of the real {html.escape(verdict['pool'])} trials")
    return ["<h2>Verdict details: equal-size floor and baselines</h2>",
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>",
            f"<p class='small'>Each statistic of each set as a multiple of the equal-size real-vs-real floor: "
            f"{verdict['n_resamples']} random {verdict['k']}-trial subsets of each set vs all reference trials, "
            f"against {where} vs all reference trials. {THRESHOLDS[0].upper()}{THRESHOLDS[1:]}. 'beats X on KL, "
            "corr': lower than baseline X by more than both bootstrap stds.</p>"]


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


def render(result: dict, figures: list[tuple[str, str, str]], notes: list[str] = ()) -> str:
    """The page: the one-line verdicts, metric table with noise floor, full-set values, verdict details,
    agreement, memorisation, then figures (file, title, caption); notes: extra lines for the notes."""
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
    parts += verdict_summary(result)
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
        "<h3>Full sets (no resampling; same columns and units as above)</h3>",
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
    for note in [*result.get("notes", []), *notes]:
        parts.append(f"<p class='small'>Note: {html.escape(note)}</p>")
    parts.append("<h2>Figures</h2>")
    for filename, title, caption in figures:
        parts.append(f'<figure><img src="{html.escape(filename)}" alt="{html.escape(title)}">'
                     f"<figcaption><b>{html.escape(title)}.</b> {html.escape(caption)}</figcaption></figure>")
    parts.append("<p class='small'>Numbers as JSON: <a href='results.json'>results.json</a>.</p></body></html>")
    return "\n".join(parts)
