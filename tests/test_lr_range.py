"""The LR range test's sweep, smoothing and suggestion rules, on hand-made curves with known answers."""

import keras
import numpy as np
import pytest

from onecycle.lr_range import ExponentialSweep, plot_sweep, smooth, suggest

LRS = np.geomspace(1e-4, 10, 101)  # 20 points a decade: 1e-3 is index 20, 1e-2 index 40, 1e-1 index 60, 1 index 80


def test_sweep_is_exponential_and_holds_past_the_end():
    sweep = ExponentialSweep(1e-4, 10.0, 101)
    np.testing.assert_allclose(sweep(np.arange(101)), LRS, rtol=1e-5)
    assert float(sweep(500)) == pytest.approx(10.0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sweep))
    assert restored.get_config() == sweep.get_config()


@pytest.mark.parametrize("args", [(1.0, 0.1, 100), (0.0, 1.0, 100), (1e-4, 1.0, 1)])
def test_sweep_rejects_bad_ranges(args):
    with pytest.raises(ValueError, match="ExponentialSweep"):
        ExponentialSweep(*args)


def test_smoothing_is_the_bias_corrected_moving_average():
    # By hand, beta 0.5: averages 0.5, 1.25, 0.625 over weights 0.5, 0.75, 0.875.
    np.testing.assert_allclose(smooth([1.0, 2.0, 0.0], beta=0.5), [1.0, 1.25 / 0.75, 0.625 / 0.875])
    np.testing.assert_allclose(smooth([3.0] * 50), 3.0)  # no start-up bias


def descent_curve():
    """Flat at 2.3 up to lr 1e-3, falling linearly in log(lr) to 0.5 at lr 1e-1 (the minimum), then rising."""
    index = np.arange(101)
    return np.where(index <= 20, 2.3, np.where(index <= 60, 2.3 - 1.8 * (index - 20) / 40, 0.5 + 0.1 * (index - 60)))


def test_the_onecycle_rule_reads_where_the_loss_stops_falling():
    result = suggest(LRS, descent_curve())
    # Within 10% of the descent (1.8 over 40 points) above the minimum: from 4 points before it, index 56 (57
    # when the float sum lands just above the threshold), 0.63 of the minimum's lr.
    assert result["rule"] == "onecycle" and result["suggested_max_lr"] == result["onecycle_lr"]
    assert LRS[56] <= result["onecycle_lr"] <= LRS[57]


def test_the_onecycle_rule_on_a_curve_still_falling_a_spike_after_the_minimum_and_a_divergence():
    falling = suggest(LRS[:61], descent_curve()[:61])
    assert LRS[56] <= falling["onecycle_lr"] <= LRS[57] and "still falling" in falling["note"]
    spiked = descent_curve()
    spiked[62] = 5.0  # after the minimum: the rise and its spikes do not move the rule
    assert LRS[56] <= suggest(LRS, spiked)["onecycle_lr"] <= LRS[57]
    diverged = descent_curve()
    diverged[64:] = np.inf
    assert LRS[56] <= suggest(LRS, diverged)["onecycle_lr"] <= LRS[57]
    dipped = descent_curve()
    dipped[50] = 0.6  # a dip inside the descent, then higher again: the plateau starts after it
    assert LRS[56] <= suggest(LRS, dipped)["onecycle_lr"] <= LRS[57]


def test_valley_is_the_middle_of_the_descent():
    result = suggest(LRS, descent_curve(), rule="valley")
    # The longest descent runs from index 20 (the flat part's last point) to the minimum at 60: its middle is 40.
    assert result["suggested_max_lr"] == result["valley_lr"] == pytest.approx(LRS[40])  # 1e-2
    assert result["minimum_lr"] == pytest.approx(LRS[60]) and result["minimum_over_10_lr"] == pytest.approx(LRS[40])
    assert result["warning"] is None and result["descent"] == pytest.approx(1.8 / 2.3)
    assert result["note"] is None  # the curve turns up after its minimum


def test_a_curve_still_falling_at_the_end_gets_a_note():
    curve = descent_curve()[:61]  # stops at the minimum
    result = suggest(LRS[:61], curve)
    assert result["valley_lr"] == pytest.approx(LRS[40]) and "still falling at the end" in result["note"]


def test_an_early_spike_fools_the_steepest_point_but_not_the_valley():
    curve = descent_curve()
    curve[12], curve[13] = 9.0, 2.3  # a single spike in the flat part: its fall is the steepest point of the curve
    result = suggest(LRS, curve)
    assert result["steepest_lr"] < 1e-3
    # The spike joins the descending subsequence, which moves the valley by one grid point (12% in lr) at most.
    assert LRS[39] <= result["valley_lr"] <= LRS[41]


def test_nan_at_the_end_is_ignored():
    curve = descent_curve()
    curve[70:] = np.nan
    assert suggest(LRS, curve)["valley_lr"] == pytest.approx(LRS[40])
    curve[65] = np.inf
    assert suggest(LRS, curve)["valley_lr"] == pytest.approx(LRS[40])


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule must be one of"):
        suggest(LRS, descent_curve(), rule="middle")


def test_a_flat_curve_warns_instead_of_suggesting():
    noisy = 2.3 + 0.01 * np.random.default_rng(0).standard_normal(101)
    result = suggest(LRS, smooth(noisy))
    assert result["suggested_max_lr"] is None and "no clear descent" in result["warning"]


def test_plot_draws_the_curves_and_marks(tmp_path):
    curve = descent_curve()
    figure = plot_sweep(LRS, curve + 0.05, curve, suggest(LRS, curve), tmp_path / "sweep.png")
    axis = figure.axes[0]
    assert axis.get_xscale() == "log" and len(axis.lines) == 6  # raw, smoothed, four rules
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
