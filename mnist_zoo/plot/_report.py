"""report.html: the summary, the best trials, every chart with its caption, and what was
left out and why."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from mnist_zoo.axes import REPEAT_AXIS
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._data import N, STD, Results
from mnist_zoo.plot._importance import Importance
from mnist_zoo.plot._interactions import interaction_ranking
from mnist_zoo.plot._noise import noise_section
from mnist_zoo.plot._pruned import report_sentence as pruned_sentence
from mnist_zoo.plot._read import AXES, left_out

TABLE_COLUMNS = ("val_accuracy", "test_accuracy", "val_loss", "test_loss", "epochs_run",
                 "seconds", "params")
LEFT_OUT_BECAUSE = "left out because"
INTERACTIONS_LISTED = 10  # pairs in the report's interaction table


def write_report(res: Results, charts: list[style.Chart], out: Path,
                 not_drawn: list[str] = (), importance: Importance | None = None) -> Path:
    """report.html beside the charts: summary, top-10 table, charts (each with its caption),
    the charts not drawn and why, the trials left out and why; with repeats the top-10 table
    lists grid points and a section tests them against the best."""
    top = _points_table(res) if res.repeats else _trials_table(res)
    formatters = {c: _cell_formatter(c) for c in top.columns}
    reasons = left_out(res)
    excluded = res.table.loc[reasons.index].assign(**{LEFT_OUT_BECAUSE: reasons})
    parts = [f"<h1>Search results: {html.escape(res.csv_path.name)}</h1>", "<p>",
             f"{len(res.table)} trials in <code>{html.escape(str(res.csv_path))}</code>; "
             f"{len(res.trials)} completed with a {html.escape(res.metric)} value are charted."]
    if len(excluded):
        counts = ", ".join(f"{n} {html.escape(s)}" for s, n in reasons.value_counts().items())
        parts.append(f" <strong>{len(excluded)} left out</strong> ({counts}), listed at the end.")
    parts.append(pruned_sentence(res))
    if res.repeats:
        parts.append(f" They are {len(res.points)} grid points run several times "
                     f"({res.n_text()} completed repeats each): the charts show each point's "
                     "mean, with ±1 standard deviation as error bars, bands and "
                     "“mean ± std” heatmap cells.")
    if res.threshold is not None:
        past = int((~res.passes(res.points[res.metric])).sum())
        what = "grid points (by their mean)" if res.repeats else "completed trials"
        parts.append(f" Threshold {res.format(res.threshold)}: {past} {what} past it "
                     "are left out of the line chart and greyed elsewhere.")
    if res.constant:
        parts.append(f" {html.escape(res.subtitle().capitalize())}.")
    heading = (f"The {len(top)} best grid points by mean {html.escape(res.metric)}"
               if res.repeats else f"The {len(top)} best trials by {html.escape(res.metric)}")
    parts += ["</p>", f"<h2>{heading}</h2>",
              top.to_html(index=False, formatters=formatters, na_rep="–", border=0,
                          classes="trials")]
    if res.repeats:
        parts += noise_section(res)
    if importance and len(importance.shares) >= 2:
        parts += _importance_section(res, importance)
    if len(res.axes) >= 2:
        parts += _interactions_section(res)
    parts.append("<h2>Charts</h2>")
    for chart in charts:
        name = html.escape(chart.path.name)
        parts.append(f'<figure><a href="{name}"><img src="{name}" alt="{name}"></a>'
                     f"<figcaption>{html.escape(chart.caption)}</figcaption></figure>")
    if not charts:
        parts.append("<p>No chart: the CSV varies no setting the charts use.</p>")
    if not_drawn:
        parts += ["<h2>Charts not drawn</h2>", "<ul>",
                  *[f"<li>{html.escape(note)}</li>" for note in not_drawn], "</ul>"]
    if len(excluded):
        repeat = (REPEAT_AXIS,) if res.repeats else ()
        shown = [c for c in ("trial_id", *AXES, *repeat, LEFT_OUT_BECAUSE, "error")
                 if c in excluded]
        parts += ["<h2>Trials left out of the charts</h2>",
                  excluded[shown].head(style.EXCLUDED_ROWS).to_html(index=False, na_rep="", border=0,
                                                              classes="trials")]
        if len(excluded) > style.EXCLUDED_ROWS:
            parts.append(f"<p>… and {len(excluded) - style.EXCLUDED_ROWS:,} more; the results CSV "
                         "lists them all.</p>")
    path = out / "report.html"
    path.write_text(REPORT_PAGE.format(title=html.escape(f"Search results: {res.csv_path.name}"),
                                       body="\n".join(parts)), encoding="utf-8")
    return path


def _trials_table(res: Results) -> pd.DataFrame:
    """The ten best trials with their settings and metrics."""
    best = res.ranked().head(10)
    columns = ["trial_id", *res.axes, res.metric,
               *[c for c in TABLE_COLUMNS if c in best and c != res.metric]]
    top = best[columns].dropna(axis=1, how="all")  # e.g. test_loss when never measured
    top.insert(0, "rank", range(1, len(top) + 1))
    return top


def _points_table(res: Results) -> pd.DataFrame:
    """The ten best grid points: settings, mean and standard deviation of the metric, n."""
    best = res.ranked_points().head(10)
    top = best[[*res.axes, res.metric, STD, N]].rename(
        columns={res.metric: f"{res.metric} mean", STD: f"{res.metric} std"})
    top.insert(0, "rank", range(1, len(top) + 1))
    return top


def _importance_section(res: Results, importance: Importance) -> list[str]:
    """HTML: each setting's share of the importance, the most important first."""
    explained = importance.explained
    importance = importance.shares
    table = pd.DataFrame({"rank": range(1, len(importance) + 1),
                          "setting": [style.name(a) for a in importance],
                          "kind": ["continuous" + (", log" if res.continuous[a] else "")
                                   if a in res.continuous else "categories"
                                   for a in importance],
                          "importance": [f"{share:.1%}" for share in importance.values()]})
    text = ("How much each setting decides " + html.escape(res.metric) + ": a random forest "
            "learns it from the settings, and a setting's importance is how much worse the "
            "forest predicts when that setting's values are shuffled (scikit-learn's "
            "permutation importance), as a share of all settings' together"
            + (", on each grid point's mean" if res.repeats else "")
            + (f". Together the settings explain {max(explained, 0):.0%} of its variance on "
               "runs each tree did not see (out-of-bag R²)." if explained == explained else "."))
    return ["<h2>Which settings matter</h2>", f"<p>{text}</p>",
            table.to_html(index=False, border=0, classes="trials")]


def _interactions_section(res: Results) -> list[str]:
    """HTML: the pairs of settings ranked by how much they act together."""
    ranking = interaction_ranking(res).head(INTERACTIONS_LISTED)
    table = pd.DataFrame({"rank": range(1, len(ranking) + 1),
                          "pair": [f"{style.name(r)} x {style.name(c)}" for r, c in
                                   zip(ranking["rows"], ranking["columns"])],
                          "interaction": [res.format_difference(v)
                                          for v in ranking["interaction"]]})
    text = ("How far the mean " + html.escape(res.metric) + " of each pair of values lies from "
            "what the two settings predict on their own (the root mean square of the residuals "
            "of an additive fit, one effect per row and one per column, over the pair's cells "
            "averaged over the other settings; a continuous setting by its bins): 0 when "
            "each acts alone. The strongest pairs get a heatmap (a contour when both "
            "settings are continuous).")
    return ["<h2>Settings that act together</h2>", f"<p>{text}</p>",
            table.to_html(index=False, border=0, classes="trials")]


def _cell_formatter(column: str):
    if "accuracy" in column:
        return lambda v: "–" if pd.isna(v) else f"{v:.2%}"
    if "loss" in column:
        return lambda v: "–" if pd.isna(v) else f"{v:.4f}"
    if column == "seconds":
        return lambda v: "–" if pd.isna(v) else f"{v:.1f}"
    if column in ("params", "epochs_run", N):
        return lambda v: "–" if pd.isna(v) else f"{int(v):,}"
    return lambda v: "–" if pd.isna(v) else str(v)


REPORT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #1f2328; }}
table.trials {{ border-collapse: collapse; font-size: 0.9em; margin-bottom: 1em; }}
table.trials th, table.trials td {{ padding: 0.3em 0.8em; text-align: right; }}
table.trials thead {{ border-bottom: 2px solid #888; }}
table.trials tr:nth-child(even) {{ background: #f3f5f7; }}
figure {{ margin: 2em 0; }}
img {{ max-width: 100%; border: 1px solid #e5e7eb; }}
figcaption {{ color: #555; margin-top: 0.4em; }}
</style></head>
<body>
{body}
</body></html>
"""
