"""Side-by-side benchmarks: ratios measured in one process, never timed tests."""
