"""course_lib.widgets: the picker's logic, and the panel reacting to a changed word."""

import numpy as np
import pytest

from course_lib import widgets


@pytest.fixture
def table():
    return {
        "audio": np.arange(4 * 8, dtype=np.float32).reshape(4, 8) / 100,
        "label": np.array([0, 0, 1, 1], np.int32),
        "label_name": np.array(["go", "go", "yes", "yes"]),
        "speaker": np.array(["b2", "a1", "a1", "c3"]),
        "source": np.array(["go/b2.wav", "go/a1.wav", "yes/a1.wav", "yes/c3.wav"]),
    }


def test_words_and_speakers(table):
    assert widgets.words_in(table) == ["go", "yes"]
    assert widgets.speakers_for_word(table, "yes") == ["a1", "c3"]
    with pytest.raises(ValueError, match="no clips of 'stop'; the words are"):
        widgets.speakers_for_word(table, "stop")


def test_find_clip_returns_the_right_row(table):
    clip, source = widgets.find_clip(table, "yes", "c3")
    np.testing.assert_array_equal(clip, table["audio"][3])
    assert source == "yes/c3.wav"
    with pytest.raises(ValueError, match="does not say"):
        widgets.find_clip(table, "go", "c3")


def test_browser_updates_speakers_when_the_word_changes(table):
    panel = widgets.clip_browser(table, 8000)
    word_picker, speaker_picker = panel.children[0].children
    assert list(speaker_picker.options) == ["a1", "b2"]
    word_picker.value = "yes"
    assert list(speaker_picker.options) == ["a1", "c3"]
    assert speaker_picker.value == "a1"


def test_nearest_step_rounds_to_the_closest_precomputed_clip():
    assert [widgets.nearest_step(a, 5) for a in (0.0, 0.1, 0.13, 0.5, 0.9, 1.0)] == [
        0,
        0,
        1,
        2,
        4,
        4,
    ]
    with pytest.raises(ValueError, match="between 0 and 1"):
        widgets.nearest_step(1.5, 5)
    with pytest.raises(ValueError, match="at least 2 steps"):
        widgets.nearest_step(0.5, 1)


def test_interpolation_player_follows_the_slider():
    clips = np.stack([np.full(800, value, np.float32) for value in (0.0, 0.1, 0.2, 0.3)])
    panel = widgets.interpolation_player(clips, 8000, "yes", "no")
    slider = panel.children[0]
    assert panel.shown_step == 0 and "yes -> no" in slider.description
    slider.value = 2 / 3
    assert panel.shown_step == 2
    slider.value = 1.0
    assert panel.shown_step == 3


def test_generation_panel_passes_the_chosen_settings_to_the_generator():
    calls = []

    def generate(label, steps, guidance, seed):
        calls.append((label, steps, guidance, seed))
        return np.full((400, 1), 0.1 * label, np.float32)

    panel = widgets.generation_panel(generate, ["zero", "one", "two"], 4000, max_steps=200)
    (word, steps), (guidance, seed), button, _ = (
        panel.children[0].children,
        panel.children[1].children,
        panel.children[2],
        panel.children[3],
    )
    word.value, steps.value, guidance.value, seed.value = "two", 20, 2.5, 7
    button.click()
    assert calls == [(2, 20, 2.5, 7)]
    np.testing.assert_allclose(panel.last_clip, np.full(400, 0.2, np.float32))
    assert steps.max == 200 and steps.value == 20
    assert guidance.max == 8.0
    # a preset's weight sits inside the slider, not clamped to its end
    strong = widgets.generation_panel(generate, ["zero"], 4000, max_steps=10, guidance=6.0)
    assert strong.children[1].children[0].value == 6.0
