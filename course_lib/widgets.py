"""ipywidgets panels for the notebooks; the logic lives in plain, tested functions.

Used in: 01_speech_commands_tfrecords.ipynb, 03_diffusion.ipynb, 04_vae_fid.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Table = Mapping[str, np.ndarray]  # columns from course_lib.data.read_table


def words_in(table: Table) -> list[str]:
    """The distinct words (label names) of a table, sorted."""
    return sorted(set(table["label_name"].tolist()))


def speakers_for_word(table: Table, word: str) -> list[str]:
    """The speakers who say ``word`` in the table, sorted.

    Raises:
        ValueError: ``word`` is not in the table.
    """
    mask = table["label_name"] == word
    if not mask.any():
        raise ValueError(f"no clips of {word!r}; the words are {words_in(table)}.")
    return sorted(set(table["speaker"][mask].tolist()))


def find_clip(table: Table, word: str, speaker: str) -> tuple[np.ndarray, str]:
    """The first clip of ``word`` by ``speaker``, with its source path.

    Raises:
        ValueError: that speaker never says that word.
    """
    matches = np.flatnonzero((table["label_name"] == word) & (table["speaker"] == speaker))
    if matches.size == 0:
        raise ValueError(f"speaker {speaker!r} does not say {word!r} in this split.")
    index = int(matches[0])
    return table["audio"][index], str(table["source"][index])


def clip_browser(table: Table, sample_rate: int):
    """A word and speaker picker that plots and plays the chosen clip.

    Args:
        table: columns from ``course_lib.data.read_table``.
        sample_rate: the clips' rate in Hz.

    Returns:
        An ``ipywidgets.VBox``; display it as the last expression of a cell.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from course_lib import audio, plotting

    words = words_in(table)
    word_picker = widgets.Dropdown(options=words, value=words[0], description="word")
    speakers = speakers_for_word(table, words[0])
    speaker_picker = widgets.Dropdown(options=speakers, value=speakers[0], description="speaker")
    output = widgets.Output()

    def show(_=None):
        clip, source = find_clip(table, word_picker.value, speaker_picker.value)
        output.clear_output(wait=True)
        with output:
            figure, axes = plt.subplots(1, 2, figsize=(10, 2.5))
            plotting.waveform(clip, sample_rate, title=source, ax=axes[0])
            plotting.spectrogram(clip, sample_rate, ax=axes[1])
            display(figure)
            plt.close(figure)
            display(audio.play(clip, sample_rate))

    def on_word(change):
        speaker_picker.options = speakers_for_word(table, change["new"])
        speaker_picker.value = speaker_picker.options[0]
        show()

    word_picker.observe(on_word, names="value")
    speaker_picker.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([word_picker, speaker_picker]), output])


def nearest_step(amount: float, steps: int) -> int:
    """The index of the precomputed step closest to ``amount`` in [0, 1] (of ``steps``)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}.")
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be between 0 and 1, got {amount}.")
    return round(amount * (steps - 1))


def interpolation_player(
    clips: np.ndarray, sample_rate: int, start_label: str = "A", end_label: str = "B"
):
    """A slider from one clip to another through precomputed in-between clips.

    Args:
        clips: ``[steps, samples]``, e.g. ``SpectrogramVAE.interpolate`` output: step 0 is
            the start, the last step the end.
        sample_rate: the clips' rate in Hz.
        start_label, end_label: names shown at the two ends.

    Returns:
        An ``ipywidgets.VBox`` with the slider and an output showing the spectrogram and a
        player of the chosen step.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from course_lib import audio, plotting

    clips = np.asarray(clips)
    steps = len(clips)
    nearest_step(0.0, steps)  # checks the number of steps
    slider = widgets.FloatSlider(
        value=0.0,
        min=0.0,
        max=1.0,
        step=1.0 / (steps - 1),
        description=f"{start_label} -> {end_label}",
        readout_format=".2f",
        style={"description_width": "initial"},
    )
    output = widgets.Output()

    def show(_=None):
        index = nearest_step(slider.value, steps)
        output.clear_output(wait=True)
        with output:
            figure, ax = plt.subplots(figsize=(6, 2.5))
            plotting.spectrogram(
                clips[index], sample_rate, title=f"step {index} of {steps - 1}", ax=ax
            )
            display(figure)
            plt.close(figure)
            display(audio.play(clips[index], sample_rate))
        panel.shown_step = index

    panel = widgets.VBox([slider, output])
    slider.observe(show, names="value")
    show()
    return panel


def generation_panel(
    generate,
    labels: list[str],
    sample_rate: int,
    max_steps: int,
    steps: int = 50,
    guidance: float = 1.0,
):
    """Pick a word, a number of sampling steps, a guidance weight and a seed; generate
    and play.

    Args:
        generate: ``generate(label_index, steps, guidance, seed) -> clip [samples]``.
        labels: the class names, in label order.
        sample_rate: the clips' rate in Hz.
        max_steps: the largest number of steps offered.
        steps, guidance: the starting values (the guidance slider reaches at least twice
            ``guidance``, and 8).

    Returns:
        An ``ipywidgets.VBox``; its ``generate_clip()`` runs the button's handler and
        ``last_clip`` holds the most recent clip.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from course_lib import audio, plotting

    word = widgets.Dropdown(options=list(labels), value=labels[0], description="word")
    step_count = widgets.IntSlider(
        value=min(steps, max_steps), min=1, max=max_steps, description="steps"
    )
    weight = widgets.FloatSlider(  # room above the preset's weight (6 in laptop and full)
        value=guidance, min=0.0, max=max(8.0, 2 * guidance), step=0.5, description="guidance"
    )
    seed = widgets.IntText(value=0, description="seed")
    button = widgets.Button(description="generate", button_style="primary")
    output = widgets.Output()
    panel = widgets.VBox(
        [widgets.HBox([word, step_count]), widgets.HBox([weight, seed]), button, output]
    )
    panel.last_clip = None

    def generate_clip(_=None):
        label_index = list(labels).index(word.value)
        clip = np.asarray(generate(label_index, step_count.value, weight.value, seed.value))
        clip = clip.reshape(-1)
        panel.last_clip = clip
        output.clear_output(wait=True)
        with output:
            figure, axes = plt.subplots(1, 2, figsize=(10, 2.5))
            title = f"{word.value}: {step_count.value} steps, guidance {weight.value:g}"
            plotting.waveform(clip, sample_rate, title=title, ax=axes[0])
            plotting.spectrogram(clip, sample_rate, ax=axes[1])
            display(figure)
            plt.close(figure)
            display(audio.play(clip, sample_rate))
        return clip

    button.on_click(generate_clip)
    panel.generate_clip = generate_clip
    return panel
