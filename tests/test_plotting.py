"""course_lib.plotting: what the figures show."""

import numpy as np
import pytest

from course_lib import metrics, plotting


def test_confusion_matrix_shows_row_fractions_and_counts():
    counts = np.array([[3, 1], [0, 4]])
    ax = plotting.confusion_matrix(counts, ["yes", "no"])
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.75, 0.25], [0, 1]])
    assert sorted(text.get_text() for text in ax.texts) == ["1", "3", "4"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["yes", "no"]
    with pytest.raises(ValueError, match=r"counts must be \[3, 3\] for 3 labels"):
        plotting.confusion_matrix(counts, ["a", "b", "c"])


def test_metric_sweeps_draws_one_panel_per_metric_and_sweep():
    sweeps = {
        "SNR (dB)": {30: {"FID": 1.0, "IS": 9.0}, 0: {"FID": 5.0, "IS": 4.0}},
        "cutoff (Hz)": {4000: {"FID": metrics.Score("FID", 2.0), "IS": 8.0}},
    }
    figure = plotting.metric_sweeps(sweeps, reference={"FID": 0.5})
    axes = figure.axes
    assert len(axes) == 4
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), [1.0, 5.0])
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), [0.5, 0.5])  # the dashed reference
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), [2.0])
    assert axes[2].get_ylabel() == "IS" and axes[1].get_xlabel() == "cutoff (Hz)"
