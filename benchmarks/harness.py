"""Side-by-side timing: variants alternated in one process (A B A B ...), medians over windows after warm-up.

This machine is shared and noisy, so a benchmark never asserts a time: it compares variants measured in
interleaved windows, where a slow spell hits all of them alike, and reports the median of the per-window ratios
(`paired_ratio`) beside each variant's median images/second.
"""

import dataclasses
import statistics
import time


@dataclasses.dataclass
class Variant:
    """Something that runs `steps` training steps (or input batches) of `batch` images per call."""

    name: str
    run: callable  # run(steps): blocks until the work is done
    batch: int
    first_call_seconds: float | None = None  # the warm-up call: tracing and compilation included
    rates: list = dataclasses.field(default_factory=list)  # images/second, one per window

    @property
    def images_per_second(self):
        return statistics.median(self.rates)


def fetching(name, dataset, batch):
    """A variant that only fetches batches of `batch` images from `dataset` (an input pipeline alone, no training):
    `run(n)` takes n batches to the host."""
    iterator = iter(dataset)

    def run(num_batches):
        for _ in range(num_batches):
            next(iterator)[0].numpy()

    return Variant(name, run, batch)


def alternate(variants, windows, steps):
    """Warms each variant up with one call of one step, then times `windows` rounds of `steps` steps each."""
    for variant in variants:
        start = time.perf_counter()
        variant.run(1)
        variant.first_call_seconds = time.perf_counter() - start
    for _ in range(windows):
        for variant in variants:
            start = time.perf_counter()
            variant.run(steps)
            variant.rates.append(steps * variant.batch / (time.perf_counter() - start))
    return variants


def paired_ratio(variant, reference):
    """The median over windows of variant/reference, each window against its neighbour in the same round: a
    slow spell of the machine hits both sides of a pair alike, so pairing removes most of the noise."""
    return statistics.median(a / b for a, b in zip(variant.rates, reference.rates))


def table(rows):
    """Markdown: one row per (regime, variant, reference) with images/s and the ratio to the reference."""
    lines = [
        "| regime | variant | images/s | vs | ratio | target | first call s (variant / vs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for regime, variant, reference, target in rows:
        ratio = paired_ratio(variant, reference)
        mark = "" if target is None else (f">= {target:g} " + ("met" if ratio >= target else "**missed**"))
        first_calls = f"{variant.first_call_seconds:.1f} / {reference.first_call_seconds:.1f}"
        lines.append(
            f"| {regime} | {variant.name} | {variant.images_per_second:,.0f} | {reference.name} | "
            f"{ratio:.3f} | {mark} | {first_calls} |"
        )
    return "\n".join(lines)
