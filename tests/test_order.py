"""Orders that every machine prints alike: values equal but for float rounding tie, and ties
go by name (issue #29 item 0: an AVX-512 CPU ranked three equal interactions differently)."""

import pandas as pd

from mnist_zoo.order import best_first, largest_first

NOISE = 3e-16  # what a different summation order leaves on values of order 0.1


def test_equal_values_rank_by_name_whatever_the_rounding():
    for first, second in [(0.102, 0.102 + NOISE), (0.102 + NOISE, 0.102)]:
        assert list(largest_first({"optimizer": first, "activation": second, "lr": 0.5})) == [
            "lr", "activation", "optimizer"]


def test_best_first_breaks_ties_by_the_then_columns_and_puts_nan_last():
    frame = pd.DataFrame({"rows": ["lr", "act", "act", "bs"],
                          "columns": ["opt", "opt", "lr", "lr"],
                          "interaction": [0.102 + NOISE, 0.102, 0.102 - NOISE, float("nan")]})
    ordered = best_first(frame, "interaction", higher_is_better=True, then=["rows", "columns"])
    assert list(zip(ordered["rows"], ordered["columns"])) == [
        ("act", "lr"), ("act", "opt"), ("lr", "opt"), ("bs", "lr")]
    lowest = best_first(frame, "interaction", higher_is_better=False, then=["rows", "columns"])
    assert list(lowest["rows"]) == ["act", "act", "lr", "bs"]


def test_without_then_columns_ties_keep_the_tables_order():
    frame = pd.DataFrame({"trial_id": ["3", "1", "2"], "val_accuracy": [0.9, 0.9 + NOISE, 0.95]})
    assert list(best_first(frame, "val_accuracy", True)["trial_id"]) == ["2", "3", "1"]
