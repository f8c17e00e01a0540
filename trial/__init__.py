"""Trials (one config over seeds) and comparisons (several configs over the same seeds), with reports and plots."""

from trial.runner import run_comparison, run_trial

__all__ = ["run_comparison", "run_trial"]
