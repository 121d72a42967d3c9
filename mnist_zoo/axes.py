"""The settings a training run has, by name: the vocabulary that train's defaults, the
search's grid files and plot's charts share (no TensorFlow).
"""

# Every trial has these axes, in this order, with these defaults where a grid leaves one
# out; they are also train's defaults.
CORE_AXES = {"model": "lenet5", "activation": "relu", "learning_rate": 0.001,
             "optimizer": "adam", "batch_size": 64, "epochs": 3}
# Axes a grid may add; a trial without one uses the builder's or train's default.
EXTRA_AXES = ("momentum", "dropout", "pooling", "augment", "lr_schedule")
AXES = (*CORE_AXES, *EXTRA_AXES)
# Axes that change each model on its own, not the batches it sees: trials that differ in
# these alone (and in their repeat) are trained as one fused graph. (mnist_zoo.train.fused can
# also fuse members with other activations, but measured slower: 62 s CPU for 27 LeNet-5s
# against 33 s as three groups of 9, docs/benchmarks.md; so activation is not one of them.)
MEMBER_AXES = ("learning_rate", "optimizer", "momentum", "lr_schedule")
# With repeats = N every grid point runs N times, with seeds seed .. seed + N - 1: an axis
# of its own, added last so a point's repeats are neighbours (GridSearch varies the last
# axis fastest). Repeats share their batches and differ in their initial weights.
REPEAT_AXIS = "repeat"
FLOAT_AXES = ("learning_rate", "momentum", "dropout")
