"""The search's axes, by name, as the results table orders them: the settings table's
(mnist_zoo.settings) grid axes, and the repeat axis a search adds (no TensorFlow).
"""

from mnist_zoo.settings import AXES, CORE, DEFAULTS, MEMBER_AXES, SETTINGS

# Every trial has these axes, in this order, with these defaults where a grid leaves one
# out; they are also train's defaults.
CORE_AXES = {axis: DEFAULTS[axis] for axis in CORE}
# Axes a grid may add; a trial without one uses the builder's or train's default.
EXTRA_AXES = tuple(axis for axis in AXES if axis not in CORE)
# MEMBER_AXES: axes that change each model on its own, not the batches it sees: trials
# that differ in these alone (and in their repeat) are trained as one fused graph.
# (mnist_zoo.train.fused can also fuse members with other activations, but measured
# slower: 62 s CPU for 27 LeNet-5s against 33 s as three groups of 9, docs/benchmarks.md;
# so activation is not one of them.)
# With repeats = N every grid point runs N times, with seeds seed .. seed + N - 1: an axis
# of its own, added last so a point's repeats are neighbours (GridSearch varies the last
# axis fastest). Repeats share their batches and differ in their initial weights.
REPEAT_AXIS = "repeat"
FLOAT_AXES = tuple(axis for axis in AXES if SETTINGS[axis].kind is float)

__all__ = ["AXES", "CORE_AXES", "EXTRA_AXES", "FLOAT_AXES", "MEMBER_AXES", "REPEAT_AXIS"]
