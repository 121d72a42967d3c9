"""Charts and an HTML report from a search results CSV, for any grid.

    python -m mnist_zoo.plot results/experiment_results.csv --threshold 0.5

reads the CSV written by `python -m mnist_zoo.search` (or an old lab CSV with columns
Activation, Learning Rate, Optimizer, Batch Size, Validation Accuracy) and writes into
--out (default: plots/ beside the CSV) each chart the settings that vary allow:

  ranking                 every trial as a bar, best on top, coloured by the setting that
                          matters most; close bars get an axis that starts near them
  importance              each setting's share in deciding the metric (a random forest's
                          permutation importance; grid points' means with repeats)
  slice                   the metric against each continuous setting, one dot per run,
                          log axes where log-spaced, the best starred
  contour_<x>_x_<y>       two continuous settings that act together or matter most, the
                          metric interpolated between the runs
  lines_by_<setting>      one line per value of the setting with the fewest values, across
                          the combinations of the others (panels when they are many),
                          leaving out trials worse than --threshold; continuous settings
                          are averaged over, never categories
  heatmap_<rows>_x_<cols> the pairs of settings that act together most (--top-pairs,
                          default 3; --pairs ROWS:COLUMNS asks for others), one panel per
                          combination of the other settings; also learning rate x batch
                          size for the lab grid (its view)
  parallel_coordinates    every run as a line across its settings and the metric
  optimizer_x_activation  best and mean result of each pairing
  what_matters            spread of the metric for each value of each setting
  training_curves         loss and accuracy per epoch of the --top trials
  optimisation_history    the best result so far against trials and training seconds
                          (any strategy: grid, random, Bayesian, Hyperband)
  report.html             the ten best trials, the pairs ranked by interaction, every chart
                          with its caption, and what was left out and why

Only completed trials with a finite metric are charted; the report lists the others.
Pruned trials (search --prune) show as pruned: greyed bars below the ranking's completed
ones, hatched heatmap cells labelled with the epoch they reached.
A numeric setting is continuous when it came from a range (the search's grid.json beside
the CSV) or has more than 10 distinct values: it is coloured on a continuous scale (log
where its values are log-spaced), cut into 5 quantile bins where a chart needs categories
(what_matters, heatmaps), and numbers read at 3 significant digits. Values longer than 40
characters are cut. A Hyperband table charts each configuration once, at the last round
(the most epochs) it reached. No chart is over about 2,000 pixels on a side.

With repeats (a `repeat` column with several values, or equal settings run with several
seeds) the charts draw grid points: each the mean of its completed repeats, with +-1
standard deviation as error bars (ranking), bands (lines) and "87.4 ± 0.3" cells
(heatmaps); report.html then tests which of the best points are within noise of the best.

One module per chart (mnist_zoo/plot/_<chart>.py), each a data step and a draw step;
_read and _data hold the reading of the CSV, _style and _axes the shared look and the
rules that give each setting its place.
"""

from mnist_zoo.plot._axes import display_labels, trial_labels
from mnist_zoo.plot._command import build_parser, draw_charts, main, plot_results, run_plot
from mnist_zoo.plot._contour import contour_data, plot_contour
from mnist_zoo.plot._curves import plot_curves, read_histories
from mnist_zoo.plot._data import N, RUNS, STD, PlotError, Results
from mnist_zoo.plot._heatmaps import heatmap_data, plot_heatmaps
from mnist_zoo.plot._history import history_data, plot_history
from mnist_zoo.plot._importance import Importance, importance_data, plot_importance
from mnist_zoo.plot._interactions import chosen_pairs, interaction_ranking, plot_interactions
from mnist_zoo.plot._lines import lines_data, plot_lines
from mnist_zoo.plot._noise import noise_tests
from mnist_zoo.plot._optimizer_activation import plot_optimizer_activation
from mnist_zoo.plot._parallel_coordinates import parallel_data, plot_parallel_coordinates
from mnist_zoo.plot._ranking import plot_ranking, ranking_data
from mnist_zoo.plot._read import AXES, format_value, left_out, load_results, read_results
from mnist_zoo.plot._report import write_report
from mnist_zoo.plot._slice import plot_slice, slice_data
from mnist_zoo.plot._style import STYLE, Chart
from mnist_zoo.plot._what_matters import plot_what_matters

__all__ = [
    "AXES", "N", "RUNS", "STD", "STYLE", "Chart", "Importance", "PlotError", "Results",
    "build_parser", "chosen_pairs", "contour_data", "display_labels", "draw_charts",
    "format_value", "heatmap_data", "importance_data", "plot_contour", "plot_importance",
    "plot_slice", "slice_data",
    "history_data", "plot_history",
    "interaction_ranking", "left_out", "lines_data", "load_results", "main", "noise_tests",
    "parallel_data", "plot_curves", "plot_heatmaps", "plot_interactions", "plot_lines",
    "plot_optimizer_activation", "plot_parallel_coordinates", "plot_ranking", "plot_results",
    "plot_what_matters", "ranking_data", "read_histories", "read_results", "run_plot",
    "trial_labels", "write_report",
]
