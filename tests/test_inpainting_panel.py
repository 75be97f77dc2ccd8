"""course_lib.inpainting.panel: the handlers, called as a browser would call them."""

import keras
import matplotlib
import numpy as np
import pytest

from course_lib import audio
from course_lib.inpainting import CodeNaiveBayes, InpaintingPanel
from course_lib.vq import VQConfig, build_vq_vae, spectrogram_images
from data_prep.fixtures import make_fixtures

matplotlib.use("Agg")
CFG = VQConfig.quick()


@pytest.fixture(scope="module")
def effect(tmp_path_factory):
    """A quick VQ-VAE after one epoch on a few fixture notes, Naive Bayes on its codes,
    and a 4 s keyboard note (its partials decay, so its code map changes over time)."""
    root = make_fixtures(tmp_path_factory.mktemp("fixtures"), kind="notes", per_class=2).nsynth
    paths = sorted((root / "nsynth-valid" / "audio").glob("*.wav"))
    notes = np.stack([audio.load_audio(path, CFG.sample_rate)[0] for path in paths])
    images = spectrogram_images(notes, CFG.spec)
    keras.utils.set_random_seed(0)
    model = build_vq_vae(cfg=CFG)
    model.fit(images, epochs=1, batch_size=len(images), verbose=0)
    naive_bayes = CodeNaiveBayes(CFG.codebook_size, radius=1).fit(model.encode_codes(images))
    keyboard = next(i for i, path in enumerate(paths) if path.name.startswith("keyboard"))
    return model, naive_bayes, notes[keyboard]


def outside_box(shape, region):
    mask = np.ones(shape, bool)
    mask[region] = False
    return mask


def test_sliders_move_the_box_and_the_button_resamples_only_inside_it(effect):
    model, naive_bayes, note = effect
    panel = InpaintingPanel(
        note, model, naive_bayes, CFG.spec, temperature=3.0, iterations=4, show_plots=False
    )
    assert panel.after_audio is None and panel.before_codes.shape == (32, 16)
    assert panel.region == (
        slice(8, 16),
        slice(0, 4),
    )  # 1-2 s, 0-1 kHz (a quarter of Nyquist) at the start

    panel.time_slider.value = (0.5, 1.5)  # as if the user dragged the slider
    panel.freq_slider.value = (500.0, 3000.0)
    assert panel.region == (slice(4, 12), slice(2, 12))  # 250 Hz per code
    assert "codes 4-11 in time, 2-11 in frequency" in panel.status.value

    panel.button.click()
    first = panel.after_audio
    assert first is not None and first.shape == note.shape and np.isfinite(first).all()
    result = panel.result
    outside = outside_box(result.before_codes.shape, panel.region)
    np.testing.assert_array_equal(result.after_codes[outside], panel.before_codes[outside])
    assert result.changed_fraction > 0
    assert "press 1:" in panel.status.value

    panel.button.click()  # a new press draws anew
    assert not np.array_equal(panel.after_audio, first)

    panel.time_slider.value = (2.0, 3.0)
    panel.on_resample()
    moved = (slice(16, 24), slice(2, 12))
    assert panel.region == moved
    outside = outside_box(panel.result.before_codes.shape, moved)
    np.testing.assert_array_equal(panel.result.after_codes[outside], panel.before_codes[outside])


def test_the_panel_draws_and_assembles(effect):
    model, naive_bayes, note = effect
    panel = InpaintingPanel(note, model, naive_bayes, CFG.spec, iterations=2)
    figure = panel.figure()
    assert len(figure.axes) == 2  # before only
    panel.on_resample()
    figure = panel.figure()
    assert len(figure.axes) == 4  # before and after
    assert all(len(axis.patches) == 1 for axis in figure.axes)  # the box on every plot
    box = panel.widget()
    assert panel.button in box.children[0].children[1].children
