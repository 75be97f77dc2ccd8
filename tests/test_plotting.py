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


@pytest.mark.parametrize(("dilations", "kernel_size"), [((1, 2, 4, 8), 2), ((1, 2), 3)])
def test_receptive_field_diagram_marks_exactly_the_receptive_field(dilations, kernel_size):
    from course_lib.wavenet import receptive_field

    ax = plotting.receptive_field_diagram(dilations, kernel_size)
    input_row = [
        collection.get_offsets()
        for collection in ax.collections
        if len(collection.get_offsets()) and collection.get_offsets()[0][1] == 0
    ]
    dark_inputs = input_row[1]  # drawn after the grey ones
    assert len(dark_inputs) == receptive_field(dilations, kernel_size)
    assert f"receptive field: {receptive_field(dilations, kernel_size)}" in ax.get_title()


def test_training_curves_against_steps():
    ax = plotting.training_curves({"loss": [3.0, 2.0]}, x=[50, 100], xlabel="step")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [50, 100])
    assert ax.get_xlabel() == "step"
    with pytest.raises(ValueError, match="2 values but 3 x positions"):
        plotting.training_curves({"loss": [3.0, 2.0]}, x=[1, 2, 3])


def test_grouped_bars_draws_one_bar_per_group_and_series():
    rows = {"a": {"train": 1.0, "test": 2.0}, "b": {"train": 3.0, "test": 4.0}}
    ax = plotting.grouped_bars(rows, ylabel="FID")
    heights = sorted(patch.get_height() for patch in ax.patches)
    assert heights == [1.0, 2.0, 3.0, 4.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
