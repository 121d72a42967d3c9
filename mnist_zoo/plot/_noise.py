"""With repeats: which of the best grid points are within noise of the best (report.html)."""

from __future__ import annotations

import html
import math

import pandas as pd

from mnist_zoo.plot._axes import trial_labels
from mnist_zoo.plot._data import N, RUNS, STD, Results

NOISE_TOP = 10  # best grid points tested against the best in report.html
NOISE_P = 0.05  # Welch's t-test: p at or above this is "within noise of the best"


def noise_tests(res: Results, top: int = NOISE_TOP) -> pd.DataFrame:
    """The `top` best grid points by mean, each tested against the best one (rank 1) with
    Welch's t-test (two-sided, unequal variances) on the per-repeat values: p >= NOISE_P is
    "within noise", p < NOISE_P "worse"; fewer than 2 runs on either side cannot be tested."""
    from scipy import stats  # only reports with repeats need it

    best = res.ranked_points().head(top)
    reference = best[RUNS].iloc[0]
    rows = []
    for rank, runs in enumerate(best[RUNS], 1):
        p_value = math.nan
        if rank == 1:
            verdict = "best"
        elif min(len(runs), len(reference)) < 2:
            verdict = "cannot be tested (n < 2)"
        else:
            p_value = float(stats.ttest_ind(runs, reference, equal_var=False).pvalue)
            if math.isnan(p_value):
                verdict = "cannot be tested (no spread among the repeats)"
            else:
                verdict = "within noise" if p_value >= NOISE_P else "worse"
        rows.append({"rank": rank, "p": p_value, "verdict": verdict})
    tests = pd.DataFrame(rows, index=best.index)
    tests.insert(1, "setting", trial_labels(best, res.axes, unique=False))
    tests.insert(2, res.metric, [res.format_spread(m, s) for m, s in
                                 zip(best[res.metric], best[STD])])
    tests.insert(3, N, best[N].to_numpy())
    return tests


def noise_section(res: Results) -> list[str]:
    """HTML: which of the best grid points are within noise of the best, and by which test."""
    tests = noise_tests(res)
    within = tests.loc[tests["verdict"] == "within noise", "rank"].tolist()
    summary = ("Only one grid point: nothing to compare it with." if len(tests) == 1 else
               f"Within noise of the best: rank{'s' if len(within) > 1 else ''} "
               f"{', '.join(map(str, within))}." if within
               else "None of the others is within noise of the best.")
    text = (f"Each of the {len(tests)} best grid points by mean {res.metric} is compared "
            "with the best one (rank 1) by Welch's t-test (two-sided, unequal variances: "
            "<code>scipy.stats.ttest_ind(..., equal_var=False)</code>) on the values of their "
            f"repeats. p ≥ {NOISE_P:g}: <strong>within noise</strong> of the best, these repeats "
            f"cannot tell the two apart; p &lt; {NOISE_P:g}: worse. A point with fewer than 2 "
            "completed repeats cannot be tested.")
    table = tests.to_html(index=False, na_rep="–", border=0, classes="trials",
                          formatters={"p": lambda v: "–" if pd.isna(v) else f"{v:.3g}"})
    return ["<h2>Within noise of the best</h2>", f"<p>{text}</p>",
            f"<p>{html.escape(summary)}</p>", table]
