"""Length bucketing: which texts share a forward pass.

A batch is padded to its longest text, so one long text makes every short one beside it
pay for its length. `plan` sorts a batch's texts by token count and cuts the sorted run
into sub-batches wherever that is cheaper, judged by a `CostCurve`: forward-pass time per
token of length against batch size, measured on this hardware when the model warms up.
On a GPU a large batch costs far less per text, and the plan keeps the batch whole. On a
CPU the plain-torch encoder skips padded tokens itself, in every precision: a pass costs
its real tokens however they are grouped, the model measures no curve, and the plan
keeps full windows. Pure functions of lengths and times: nothing here touches torch.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CALIBRATION_LENGTH = 32  # tokens per text in the timed passes (capped at max_length)
CALIBRATION_MAX_BATCH = 64  # larger batches are extrapolated from the last two points
SEARCH_LIMIT = 40_000  # above n x max_batch_size steps, cut fixed windows instead


@dataclass(frozen=True)
class CostCurve:
    """Seconds for one forward pass of `batch` texts padded to `length` tokens, modelled
    as g(batch) x length: g is measured per token of length at a few batch sizes, linear
    between them and on the last slope beyond. Time grows a little less than linearly
    with length, so long passes are overestimated and the plan errs toward fewer cuts."""

    batches: tuple[int, ...]
    seconds_per_token: tuple[float, ...]

    def __post_init__(self):
        if len(self.batches) < 2 or list(self.batches) != sorted(set(self.batches)):
            raise ValueError("a cost curve needs two or more points at increasing batch sizes")
        # Timings are noisy; a larger batch never costs less.
        g = self.seconds_per_token
        object.__setattr__(self, "seconds_per_token", tuple(max(g[: i + 1]) for i in range(len(g))))

    def per_token(self, batch: int) -> float:
        """g(batch): seconds per token of padded length for a pass of `batch` texts."""
        xs, ys = self.batches, self.seconds_per_token
        i = min(max(1, bisect.bisect_left(xs, batch)), len(xs) - 1)
        slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
        return max(ys[0], ys[i - 1] + slope * (batch - xs[i - 1]))

    def __call__(self, batch: int, length: int) -> float:
        return self.per_token(batch) * max(1, length)

    def describe(self) -> str:
        return ",".join(
            f"{b}:{g * 1e6:.0f}us/token"
            for b, g in zip(self.batches, self.seconds_per_token, strict=True)
        )


def measure(
    forward: Callable[[int, int], object], max_batch: int, max_length: int
) -> CostCurve | None:
    """Time `forward(batch, length)` at batch sizes 1, max_batch/4 and max_batch. None
    when batches hold one text (there is nothing to plan)."""
    length = max(1, min(CALIBRATION_LENGTH, max_length))
    top = min(max_batch, CALIBRATION_MAX_BATCH)
    batches = sorted({1, max(1, top // 4), top})
    if len(batches) < 2:
        return None
    per_token = []
    for batch in batches:
        forward(batch, length)  # the first pass at a shape builds its kernels: not timed
        started = time.perf_counter()
        forward(batch, length)
        per_token.append((time.perf_counter() - started) / length)
    return CostCurve(tuple(batches), tuple(per_token))


def plan(lengths: Sequence[int], max_batch: int, cost: CostCurve | None) -> list[list[int]]:
    """Indices into `lengths`, grouped into forward passes of at most `max_batch`.

    Without a cost curve (or for very large requests) the texts are sorted by length and
    cut into full windows; with one, the cuts minimise the summed cost (an exact dynamic
    programme over the sorted run: each pass costs cost(its size, its longest length))."""
    n = len(lengths)
    order = sorted(range(n), key=lengths.__getitem__)
    if cost is None or n * max_batch > SEARCH_LIMIT:
        return [order[i : i + max_batch] for i in range(0, n, max_batch)]
    width = [max(1, lengths[i]) for i in order]
    g = [0.0] + [cost.per_token(b) for b in range(1, min(n, max_batch) + 1)]
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest way to run the j shortest
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = width[j - 1]
        for i in range(max(0, j - max_batch), j):
            total = best[i] + g[j - i] * longest
            if total < best[j]:
                best[j], cut[j] = total, i
    passes, j = [], n
    while j:
        passes.append(order[cut[j] : j])
        j = cut[j]
    return passes[::-1]
