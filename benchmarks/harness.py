"""Side-by-side timing: variants alternated in one process (A B A B ...), medians over windows after warm-up.

This machine is shared and noisy, so a benchmark never asserts a time: it compares variants measured in
interleaved windows, where a slow spell hits all of them alike, and reports the ratio of their medians.
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


def table(rows):
    """Markdown: one row per (regime, variant, reference) with images/s and the ratio to the reference."""
    lines = ["| regime | variant | images/s | vs | ratio | target | first call s |", "|---|---|---|---|---|---|---|"]
    for regime, variant, reference, target in rows:
        ratio = variant.images_per_second / reference.images_per_second if reference is not variant else 1.0
        mark = "" if target is None else (f">= {target:g} " + ("met" if ratio >= target else "**missed**"))
        lines.append(f"| {regime} | {variant.name} | {variant.images_per_second:,.0f} | {reference.name} | "
                     f"{ratio:.3f} | {mark} | {variant.first_call_seconds:.1f} |")  # fmt: skip
    return "\n".join(lines)
