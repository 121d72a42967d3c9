"""Which grid points train together: the points that share their batches (equal
`batches_key`: they differ only in optimizer settings or repeat), cut into parts no
wider than memory allows, and cut further at the grid's end so that no process idles
while another trains the last group.
"""

from __future__ import annotations

import functools
import math

from mnist_zoo.models import build_model
from mnist_zoo.search.grid import batches_key, values_key
from mnist_zoo.search.memory import memory_bytes
from mnist_zoo.search.plan import Batches
from mnist_zoo.train.fused import can_fuse

# At most this many models in one fused graph: wider groups are cut into parts (1,000
# repeats of one point fused at once built for minutes and grew past 6 GB).
FUSE_LIMIT = 32


@functools.cache
def fusable(model_name: str) -> bool:
    return can_fuse(build_model(model_name, compile=False))


@functools.cache
def _model_size(model_name: str) -> tuple[int, int]:
    """(weights, activation values per image) of a zoo model."""
    model = build_model(model_name, compile=False)
    activations = sum(math.prod(layer.output.shape[1:]) for layer in model.layers
                      if hasattr(layer, "output") and layer.output is not None)
    return model.count_params(), activations


def member_bytes(model_name: str, batch_size: int) -> int:
    """A rough figure for one member of a fused group: its weights, gradients and two
    optimizer slots, and its activations kept for the backward pass (about three copies
    of each layer's output per image): 12.5 MiB for a LeNet-5 at batch 64 (1,000 of
    them fused at once had passed 6.3 GB, still building, after 240 s)."""
    weights, activations = _model_size(model_name)
    return 4 * (4 * weights + 3 * batch_size * activations)


def fused_width(model_name: str, batch_size: int) -> int:
    """How many models of this kind one fused graph may hold: FUSE_LIMIT, or fewer when
    a quarter of the machine's memory would not hold them (with room for the data, the
    other --jobs processes and what TensorFlow keeps)."""
    memory = memory_bytes()
    if memory is None:
        return FUSE_LIMIT
    return max(1, min(FUSE_LIMIT, memory // 4 // member_bytes(model_name, batch_size)))


class Grouping:
    """The groups of a grid's points. fuse=False (--no-fuse, or after a fused group failed
    on this machine) makes every point a group of its own. Every process of a search
    must cut the same groups: a group's lock is named by its first point."""

    def __init__(self, points: list[dict], *, fuse: bool = True, split_groups: int = 1,
                 workers: int = 1):
        self.fuse, self.split_groups, self.workers = fuse, split_groups, workers
        # The points sharing their batches, by batches_key, in the grid's order.
        self.groups: dict[str, list[dict]] = {}
        for values in points:
            self.groups.setdefault(batches_key(values), []).append(values)
        self.tail_groups = self._find_tail_groups()

    def group_of(self, values: dict) -> list[dict]:
        """The grid points trained together with values: those sharing its batches, cut
        into consecutive parts: split_groups parts, or one per worker for the groups at
        the grid's end (see _find_tail_groups)."""
        if not self.fuse or not fusable(values["model"]):
            return [values]
        key = batches_key(values)
        group = self.groups[key]
        width = fused_width(values["model"], values["batch_size"])
        parts = max(self.split_groups, self.workers if key in self.tail_groups else 1,
                    math.ceil(len(group) / width))
        size = math.ceil(len(group) / min(parts, len(group)))
        start = group.index(values) // size * size
        return group[start:start + size]

    def _find_tail_groups(self) -> frozenset:
        """The groups that would leave workers idle at the end of the grid: with 9 groups
        and 2 workers the last one, trained by one worker while the other has nothing
        left. Each is cut into one part per worker, so all of them work until the end;
        the others stay whole, since a group trains faster per trial the wider it is."""
        keys = [key for key, group in self.groups.items() if fusable(group[0]["model"])]
        leftover = len(keys) % self.workers
        return frozenset(keys[len(keys) - leftover:] if leftover else [])


class Plan:
    """The runs this search knows it will train, and their groups: a grid's points, all
    known from the start, or the batches an oracle publishes as it goes (random search,
    Hyperband; mnist_zoo.search.plan), each batch grouped like a grid of its own."""

    def __init__(self, points: list[dict] | None, batches: Batches | None, *, fuse: bool = True,
                 split_groups: int = 1, workers: int = 1):
        self.points, self.batches = points, batches
        self.fuse, self.options = fuse, {"split_groups": split_groups, "workers": workers}
        self._groupings: dict[str, Grouping] = {}

    def known(self) -> list[dict]:
        if self.points is not None:
            return self.points
        return self.batches.published() if self.batches else []

    def group_of(self, values: dict) -> list[dict]:
        batch = self.points if self.points is not None else (
            self.batches.batch_of(values) if self.batches else [values])
        key = values_key(batch[0])
        if key not in self._groupings:
            self._groupings[key] = Grouping(batch, fuse=self.fuse, **self.options)
        grouping = self._groupings[key]
        grouping.fuse = self.fuse  # off for good once a fused group failed here
        return grouping.group_of(values)
