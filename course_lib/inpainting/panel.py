"""An interactive panel for the "blur" effect: pick a time-frequency box, resample, listen.

The panel shows a sound's spectrogram and its VQ-VAE code map with the chosen box drawn
on both, sliders for the time range (seconds), the frequency range (Hz), the temperature
and the number of sweeps, and a button that resamples the box with Naive Bayes
(:func:`course_lib.inpainting.effect.inpaint_audio`). After each press it shows the spectrogram
and code map before and after, and plays both sounds.

The handlers are plain methods (:meth:`InpaintingPanel.on_region_change`,
:meth:`InpaintingPanel.on_resample`) that update the panel's state (``region``,
``result``, ``after_audio``), so they are tested without a browser.

Used in: 05_vq_vae_inpainting.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib.inpainting.algorithm import CodeNaiveBayes
from course_lib.inpainting.effect import InpaintingResult, code_region, inpaint_audio


def _range_slider(
    description: str,
    value: tuple[float, float],
    maximum: float,
    code_size: float,
    readout_format: str,
):
    """An ``ipywidgets.FloatRangeSlider`` over ``[0, maximum]`` in steps of half a code
    (``code_size``: the seconds or Hz one code covers) that reports only when released."""
    import ipywidgets as widgets

    return widgets.FloatRangeSlider(
        value=value,
        min=0.0,
        max=maximum,
        step=code_size / 2,
        description=description,
        readout_format=readout_format,
        continuous_update=False,
    )


class InpaintingPanel:
    """Sliders, a button and plots around :func:`~course_lib.inpainting.effect.inpaint_audio`.

    Args:
        sound: one clip ``[samples]`` at ``spec.sample_rate``.
        vq_model: a trained :class:`course_lib.vq.VQVAE`.
        naive_bayes: a fitted :class:`~course_lib.inpainting.algorithm.CodeNaiveBayes` on its codes.
        spec: the model's :class:`course_lib.spectrogram.SpectrogramSpec`.
        sweeps, temperature: starting values of their sliders.
        iterations: Griffin-Lim iterations.
        seed: seed of the first press; every press adds one, so pressing again draws anew.
        show_plots: draw the figures (tests turn it off to save time).

    Example:
        >>> panel = InpaintingPanel(note, model, naive_bayes, cfg.spec)
        >>> panel.widget()     # the last expression of a notebook cell
    """

    def __init__(
        self,
        sound,
        vq_model,
        naive_bayes: CodeNaiveBayes,
        spec,
        sweeps: int = 4,
        temperature: float = 1.0,
        iterations: int = 32,
        seed: int = 0,
        show_plots: bool = True,
    ):
        import ipywidgets as widgets

        from course_lib import spectrogram

        self.sound = np.asarray(sound, np.float32).reshape(-1)
        self.vq_model, self.naive_bayes, self.spec = vq_model, naive_bayes, spec
        self.iterations, self.seed, self.show_plots = iterations, seed, show_plots
        self.presses = 0
        self.result: InpaintingResult | None = None
        self.after_audio: np.ndarray | None = None

        factor = int(vq_model.downsampling_factor)
        image = spectrogram.to_spectrogram(self.sound[None], spec).numpy()[0]  # [frames, bins]
        padded_frames = -(-image.shape[0] // factor) * factor
        self.before_image = image
        self.before_codes = vq_model.encode_codes(
            np.pad(image, ((0, padded_frames - image.shape[0]), (0, 0)))[None]
        )[0]
        duration = self.sound.size / spec.sample_rate
        nyquist = spec.sample_rate / 2
        code_seconds = factor * spec.frame_step / spec.sample_rate
        code_hertz = factor * spec.sample_rate / spec.frame_length

        self.time_slider = _range_slider(
            "time (s)", (0.25 * duration, 0.5 * duration), duration, code_seconds, ".2f"
        )
        self.freq_slider = _range_slider(
            "freq (Hz)", (0.0, nyquist / 4), nyquist, code_hertz, ".0f"
        )
        self.temperature_slider = widgets.FloatSlider(
            value=temperature, min=0.0, max=3.0, step=0.1, description="temperature"
        )
        self.sweeps_slider = widgets.IntSlider(value=sweeps, min=1, max=12, description="sweeps")
        self.button = widgets.Button(description="resample", button_style="primary")
        self.status = widgets.HTML()
        self.plots = widgets.Output()
        self.before_player = widgets.Output()
        self.after_player = widgets.Output()

        self.time_slider.observe(self.on_region_change, names="value")
        self.freq_slider.observe(self.on_region_change, names="value")
        self.button.on_click(self.on_resample)
        self.region = self._region()
        self._play(self.before_player, self.sound)
        self._draw()

    # ------------------------------------------------------------------ handlers

    def _region(self) -> tuple[slice, slice]:
        return code_region(
            tuple(self.time_slider.value),
            tuple(self.freq_slider.value),
            self.spec,
            int(self.vq_model.downsampling_factor),
            self.before_codes.shape,
        )

    def on_region_change(self, change=None) -> None:
        """A range slider moved: recompute the box on the code map and redraw it."""
        try:
            self.region = self._region()
        except ValueError as error:  # a zero-width range: keep the last box
            self.status.value = f"<b>{error}</b>"
            return
        rows, cols = self.region
        self.status.value = (
            f"box: codes {rows.start}-{rows.stop - 1} in time, {cols.start}-{cols.stop - 1} "
            "in frequency"
        )
        self._draw()

    def on_resample(self, button=None) -> None:
        """The button was pressed: resample the box, then show and play the result."""
        self.status.value = "resampling..."
        result = inpaint_audio(
            self.sound,
            self.vq_model,
            self.naive_bayes,
            self.spec,
            time_range=tuple(self.time_slider.value),
            freq_range=tuple(self.freq_slider.value),
            sweeps=int(self.sweeps_slider.value),
            temperature=float(self.temperature_slider.value),
            seed=self.seed + self.presses,
            iterations=self.iterations,
        )
        self.presses += 1
        self.result, self.after_audio = result, result.audio
        self.region = (result.time_slice, result.freq_slice)
        changed = 100 * result.changed_fraction
        self.status.value = f"press {self.presses}: {changed:.0f}% of the box's codes changed"
        self._play(self.after_player, result.audio)
        self._draw()

    # ------------------------------------------------------------------ display

    def _play(self, output, samples) -> None:
        from IPython.display import display

        from course_lib import audio

        output.clear_output(wait=True)
        with output:
            display(audio.play(samples, self.spec.sample_rate))

    def _draw(self) -> None:
        if not self.show_plots:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.plots.clear_output(wait=True)
        with self.plots:
            figure = self.figure()
            display(figure)
            plt.close(figure)

    def figure(self):
        """Spectrogram and code map with the box, before (and after, once resampled)."""
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        rows = [("before", self.before_image, self.before_codes)]
        if self.result is not None:
            rows.append(("after", self.result.after_image, self.result.after_codes))
        figure, axes = plt.subplots(len(rows), 2, figsize=(11, 2.6 * len(rows)), squeeze=False)
        factor = int(self.vq_model.downsampling_factor)
        time_box, freq_box = self.region
        for (name, image, codes), (image_axis, code_axis) in zip(rows, axes, strict=True):
            image_axis.imshow(image.T, origin="lower", aspect="auto", cmap="magma")
            code_axis.imshow(
                codes.T, origin="lower", aspect="auto", cmap="tab20", interpolation="nearest"
            )
            for axis, scale in ((image_axis, factor), (code_axis, 1)):
                corner = (time_box.start * scale - 0.5, freq_box.start * scale - 0.5)  # pixel edges
                width = (time_box.stop - time_box.start) * scale
                height = (freq_box.stop - freq_box.start) * scale
                box = Rectangle(corner, width, height, fill=False, edgecolor="cyan", linewidth=2)
                axis.add_patch(box)
            image_axis.set_title(f"{name}: spectrogram (frames x bins)", fontsize=9)
            code_axis.set_title(f"{name}: code map (time x frequency)", fontsize=9)
        figure.tight_layout()
        return figure

    def widget(self):
        """The whole panel as an ``ipywidgets.VBox``."""
        import ipywidgets as widgets

        players = widgets.HBox(
            [
                widgets.VBox([widgets.Label("before"), self.before_player]),
                widgets.VBox([widgets.Label("after"), self.after_player]),
            ]
        )
        controls = widgets.HBox(
            [
                widgets.VBox([self.time_slider, self.freq_slider]),
                widgets.VBox([self.temperature_slider, self.sweeps_slider, self.button]),
            ]
        )
        return widgets.VBox([controls, self.status, self.plots, players])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())
