"""One rule for every order the package prints or charts: values are compared rounded, and
ties go by name.

Values that are equal in exact arithmetic (two interactions of 10.2 points, two settings'
spreads, two grid points' means) come out of NumPy a few units in the last place apart,
and which of them is larger depends on the order in which the CPU summed them (oneDNN,
AVX-512 and ARM each sum in their own order). Compared at TIE_DIGITS decimals they tie, and
a tie is broken by the name (or, for trials, by their place in the table), so every machine
prints the same order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas only in the hints: the search's command line starts without it
    import pandas as pd

# Metrics and spreads are accuracies and losses of order 1; float64 rounding noise is ~1e-16,
# float32 metrics round-tripped through a CSV keep ~7 significant digits.
TIE_DIGITS = 9


def tie_key(value: float) -> float:
    """`value` as compared when ordering: rounded to TIE_DIGITS decimals."""
    return round(float(value), TIE_DIGITS)


def largest_first(scores: dict[str, float]) -> dict[str, float]:
    """`scores` ordered by value, largest first; equal values (once rounded) by name."""
    return dict(sorted(scores.items(), key=lambda item: (-tie_key(item[1]), str(item[0]))))


def best_first(frame: pd.DataFrame, column: str, higher_is_better: bool,
               then: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows of `frame` ordered by `column` (rounded), best first; ties by the `then`
    columns (as text), then by their place in `frame`. NaN goes last."""
    key = frame[column].astype(float).round(TIE_DIGITS)
    ordered = frame.assign(_key=-key if higher_is_better else key,
                           **{f"_then{i}": frame[c].astype(str) for i, c in enumerate(then)})
    ordered = ordered.sort_values(["_key", *[f"_then{i}" for i in range(len(then))]],
                                  kind="stable", na_position="last")
    return ordered.drop(columns=["_key", *[f"_then{i}" for i in range(len(then))]])
