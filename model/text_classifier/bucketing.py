"""Length bucketing: which texts share a forward pass.

A batch is padded to its longest text, so one long text makes every short one beside it
pay for its length. `plan` sorts a batch's texts by token count and cuts the sorted run
into sub-batches wherever that is cheaper, judged by a `CostCurve`: forward-pass time
against padded tokens, measured on this hardware when the model warms up. On a CPU in
fp32 the time is close to linear in padded tokens, so cutting out padding pays; in bf16
(AMX) or on a GPU a forward pass has a large fixed cost, and the plan keeps the batch
whole. Pure functions of lengths and times: nothing here touches torch.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CALIBRATION_BATCHES = (1, 4, 16)  # batch sizes timed at warm-up, at CALIBRATION_LENGTH
CALIBRATION_LENGTH = 64  # tokens per text in those passes (capped at max_length)
SEARCH_LIMIT = 40_000  # above n x max_batch_size steps, cut fixed windows instead


@dataclass(frozen=True)
class CostCurve:
    """Seconds for one forward pass of `n` padded tokens (batch size x padded length):
    linear between measured points, flat below the first (no pass is cheaper than the
    smallest measured), and on the last slope above the last."""

    tokens: tuple[int, ...]
    seconds: tuple[float, ...]

    def __post_init__(self):
        if len(self.tokens) < 2 or list(self.tokens) != sorted(set(self.tokens)):
            raise ValueError("a cost curve needs two or more points at increasing token counts")
        # Timings are noisy; more tokens never cost less.
        running = [max(self.seconds[: i + 1]) for i in range(len(self.seconds))]
        object.__setattr__(self, "seconds", tuple(running))

    def __call__(self, n: int) -> float:
        xs, ys = self.tokens, self.seconds
        if n <= xs[0]:
            return ys[0]
        i = min(bisect.bisect_left(xs, n), len(xs) - 1)
        slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
        return ys[i - 1] + slope * (n - xs[i - 1])

    def describe(self) -> str:
        return ",".join(
            f"{t}:{s * 1000:.1f}ms" for t, s in zip(self.tokens, self.seconds, strict=True)
        )


def measure(
    forward: Callable[[int, int], object], max_batch: int, max_length: int
) -> CostCurve | None:
    """Time `forward(batch, length)` at the calibration shapes. None when batches hold
    one text (there is nothing to plan)."""
    length = max(1, min(CALIBRATION_LENGTH, max_length))
    batches = sorted({min(b, max_batch) for b in CALIBRATION_BATCHES})
    if len(batches) < 2:
        return None
    seconds = []
    for batch in batches:
        forward(batch, length)  # the first pass at a shape builds its kernels: not timed
        started = time.perf_counter()
        forward(batch, length)
        seconds.append(time.perf_counter() - started)
    return CostCurve(tuple(b * length for b in batches), tuple(seconds))


def plan(lengths: Sequence[int], max_batch: int, cost: CostCurve | None) -> list[list[int]]:
    """Indices into `lengths`, grouped into forward passes of at most `max_batch`.

    Without a cost curve (or for very large requests) the texts are sorted by length and
    cut into full windows; with one, the cuts minimise the summed cost (an exact dynamic
    programme over the sorted run: each pass costs cost(size x its longest length))."""
    n = len(lengths)
    order = sorted(range(n), key=lengths.__getitem__)
    if cost is None or n * max_batch > SEARCH_LIMIT:
        return [order[i : i + max_batch] for i in range(0, n, max_batch)]
    width = [max(1, lengths[i]) for i in order]
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest way to run the j shortest
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = width[j - 1]
        for i in range(max(0, j - max_batch), j):
            total = best[i] + cost((j - i) * longest)
            if total < best[j]:
                best[j], cut[j] = total, i
    passes, j = [], n
    while j:
        passes.append(order[cut[j] : j])
        j = cut[j]
    return passes[::-1]
