"""The "blur" effect: a VQ-VAE and its Naive Bayes model applied to a clip, saved to a
folder, and applied to a sound file.

- :func:`inpaint_audio`: encode one clip, resample a time-frequency box of its code map
  with Naive Bayes (:mod:`course_lib.inpainting.algorithm`), decode, and invert the
  spectrogram (Griffin-Lim); :func:`code_region` turns seconds and Hz into that box;
- :func:`save_effect`, :func:`load_effect`: the effect on disk;
- :func:`inpaint_file`: a sound file in, a WAV file out; what
  ``python -m course_lib.inpainting`` calls, and what a notebook calls directly with the
  same arguments (in its own process: no second TensorFlow on a GPU the notebook already
  holds, and errors show where they happen).

An effect folder (default: the notebook's ``checkpoints/vq_inpainting`` folder) holds what
:func:`save_effect` writes:

- ``vq_vae.keras``: the trained VQ-VAE;
- ``naive_bayes.npz``: the Naive Bayes counts;
- ``effect.json``: the spectrogram settings and the default sweeps, temperature and
  Griffin-Lim iterations.

:func:`inpaint_file` checks its arguments, the input file and the effect folder before
TensorFlow is imported; its messages name the command line's options. The output WAV has
the input's rate and length (mono).

Used in: 05_vq_vae_inpainting.ipynb, ``python -m course_lib.inpainting``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from course_lib.inpainting.algorithm import CodeNaiveBayes

if TYPE_CHECKING:  # course_lib.spectrogram loads TensorFlow; only the functions need it
    from course_lib.spectrogram import SpectrogramSpec

MODEL_NAME = "vq_vae.keras"
NAIVE_BAYES_NAME = "naive_bayes.npz"
SETTINGS_NAME = "effect.json"
DEFAULT_EFFECT = "vq_inpainting"  # folder name under course_lib.config.checkpoint_dir
SETTINGS_VERSION = 1


# ----------------------------------------------------------------------------- one clip


@dataclasses.dataclass(frozen=True)
class InpaintingResult:
    """What :func:`inpaint_audio` made.

    Attributes:
        audio: the new sound, ``[samples]`` (the input's length).
        before_image, after_image: spectrogram images ``[frames, bins]`` in [0, 1].
        before_codes, after_codes: code maps ``[h, w]``.
        time_slice, freq_slice: the resampled box on the code map.
        factor: pixels (frames and bins) per code along each axis.
    """

    audio: np.ndarray
    before_image: np.ndarray
    after_image: np.ndarray
    before_codes: np.ndarray
    after_codes: np.ndarray
    time_slice: slice
    freq_slice: slice
    factor: int

    @property
    def changed_fraction(self) -> float:
        """Fraction of the box's codes that changed."""
        box = (self.time_slice, self.freq_slice)
        return float(np.mean(self.before_codes[box] != self.after_codes[box]))


def code_region(
    time_range: tuple[float, float],
    freq_range: tuple[float, float],
    spec: SpectrogramSpec,
    factor: int,
    code_shape: tuple[int, int],
    freq_unit: Literal["hz", "bin"] = "hz",
) -> tuple[slice, slice]:
    """The code-map box covering a time range (seconds) and a frequency range (Hz or
    spectrogram bins), rounded outwards to whole codes.

    A frame ``i`` starts at ``i * frame_step / sample_rate`` seconds; bin ``k`` is at
    ``k * sample_rate / frame_length`` Hz; code ``(r, c)`` covers frames ``r f .. r f + f - 1``
    and bins ``c f .. c f + f - 1``.
    """
    (t_start, t_stop), (f_start, f_stop) = time_range, freq_range
    if not 0 <= t_start < t_stop:
        raise ValueError(f"time range {t_start}:{t_stop} s must satisfy 0 <= start < stop.")
    if freq_unit not in ("hz", "bin"):
        raise ValueError(f"freq_unit must be 'hz' or 'bin', not {freq_unit!r}.")
    if not 0 <= f_start < f_stop:
        raise ValueError(f"frequency range {f_start}:{f_stop} must satisfy 0 <= start < stop.")
    frames_per_second = spec.sample_rate / spec.frame_step
    bins_per_unit = spec.frame_length / spec.sample_rate if freq_unit == "hz" else 1.0
    rows = _cells(t_start * frames_per_second, t_stop * frames_per_second, factor, code_shape[0])
    cols = _cells(f_start * bins_per_unit, f_stop * bins_per_unit, factor, code_shape[1])
    if rows is None or cols is None:
        raise ValueError(
            f"the region {t_start}:{t_stop} s x {f_start}:{f_stop} {freq_unit} lies outside the "
            f"sound ({code_shape[0] * factor / frames_per_second:.2f} s, "
            f"{spec.sample_rate / 2:g} Hz)."
        )
    return rows, cols


def _cells(start: float, stop: float, factor: int, count: int) -> slice | None:
    first = int(np.floor(start / factor))
    last = int(np.ceil(stop / factor))
    first, last = max(first, 0), min(last, count)
    return slice(first, last) if first < last else None


def inpaint_audio(
    audio,
    vq_model,
    naive_bayes: CodeNaiveBayes,
    spec: SpectrogramSpec,
    time_range: tuple[float, float],
    freq_range: tuple[float, float],
    freq_unit: Literal["hz", "bin"] = "hz",
    sweeps: int = 4,
    temperature: float = 1.0,
    seed: int | None = 0,
    iterations: int = 32,
    keep_outside: bool = True,
) -> InpaintingResult:
    """The "blur" effect: encode a sound, resample a time-frequency box of its code map with
    Naive Bayes, decode, and invert the spectrogram (Griffin-Lim).

    Args:
        audio: one sound ``[samples]`` at ``spec.sample_rate``, any length.
        vq_model: a trained :class:`course_lib.vq.VQVAE` (its ``encode_codes`` and
            ``decode_codes`` are used).
        naive_bayes: a fitted :class:`CodeNaiveBayes` on that model's code maps.
        spec: the spectrogram settings the model was trained with.
        time_range: ``(start, stop)`` in seconds.
        freq_range: ``(low, high)`` in Hz (or spectrogram bins with ``freq_unit="bin"``).
        sweeps, temperature, seed: see :meth:`CodeNaiveBayes.resample_region`.
        iterations: Griffin-Lim iterations.
        keep_outside: keep the input's own spectrogram outside the box and decode only the
            box with the margin the decoder sees (``vq_model.decoder_reach`` codes); False
            decodes the whole code map and uses it everywhere.

    Returns:
        An :class:`InpaintingResult`; ``result.audio`` has the input's length.
    """
    from course_lib import spectrogram

    audio = np.asarray(audio, np.float32).reshape(-1)
    if audio.size == 0:
        raise ValueError("audio is empty.")
    factor = int(vq_model.downsampling_factor)
    if spec.bins % factor:
        raise ValueError(
            f"{spec.bins} frequency bins do not divide by the model's downsampling factor {factor}."
        )
    if naive_bayes.codebook_size != vq_model.codebook_size:
        raise ValueError(
            f"the Naive Bayes model has {naive_bayes.codebook_size} codes but the VQ-VAE "
            f"{vq_model.codebook_size}: fit it on this model's code maps."
        )
    image = spectrogram.to_spectrogram(audio[None], spec).numpy()[0]  # [frames, bins]
    frames = image.shape[0]
    padded_frames = -(-frames // factor) * factor
    padded = np.pad(image, ((0, padded_frames - frames), (0, 0)))  # silence at the end
    before_codes = vq_model.encode_codes(padded[None])[0]  # [h, w]
    rows, cols = code_region(time_range, freq_range, spec, factor, before_codes.shape, freq_unit)
    after_codes = naive_bayes.resample_region(
        before_codes, rows, cols, sweeps=sweeps, temperature=temperature, seed=seed
    )
    if keep_outside:
        # Decode only the box and the margin the decoder can see (much faster, and the
        # same pixels inside the box), then paste the box into the input's spectrogram.
        reach = int(vq_model.decoder_reach)
        height, width = after_codes.shape
        top, left = max(rows.start - reach, 0), max(cols.start - reach, 0)
        crop = after_codes[
            top : min(rows.stop + reach, height), left : min(cols.stop + reach, width)
        ]
        decoded = vq_model.decode_codes(crop[None])[0, ..., 0]  # [crop frames, crop bins]
        inside = (
            slice((rows.start - top) * factor, (rows.stop - top) * factor),
            slice((cols.start - left) * factor, (cols.stop - left) * factor),
        )
        after = padded.copy()
        box = (
            slice(rows.start * factor, rows.stop * factor),
            slice(cols.start * factor, cols.stop * factor),
        )
        after[box] = decoded[inside]
    else:
        after = vq_model.decode_codes(after_codes[None])[0, ..., 0]  # [frames', bins]
    after = after[:frames]
    new_audio = spectrogram.to_audio(after[None], audio.size, spec, iterations)[0]
    return InpaintingResult(
        audio=new_audio,
        before_image=image,
        after_image=after,
        before_codes=before_codes,
        after_codes=after_codes,
        time_slice=rows,
        freq_slice=cols,
        factor=factor,
    )


# ----------------------------------------------------------------------------- effect folder


@dataclasses.dataclass
class Effect:
    """A loaded effect: the models, the spectrogram settings and default sampling (these
    defaults are also :func:`save_effect`'s)."""

    vq_model: Any  # a course_lib.vq.VQVAE
    naive_bayes: CodeNaiveBayes
    spec: SpectrogramSpec
    sweeps: int = 4
    temperature: float = 1.0
    griffin_lim_iterations: int = 32


def save_effect(
    folder: str | Path,
    vq_model,
    naive_bayes: CodeNaiveBayes,
    spec: SpectrogramSpec,
    sweeps: int = Effect.sweeps,
    temperature: float = Effect.temperature,
    griffin_lim_iterations: int = Effect.griffin_lim_iterations,
) -> Path:
    """Write a trained VQ-VAE, its fitted Naive Bayes model and the settings to ``folder``.

    Args:
        folder: created if missing; existing effect files are replaced.
        vq_model: a :class:`course_lib.vq.VQVAE`.
        naive_bayes: a fitted :class:`~course_lib.inpainting.algorithm.CodeNaiveBayes`.
        spec: the :class:`course_lib.spectrogram.SpectrogramSpec` the model was trained on.
        sweeps, temperature, griffin_lim_iterations: defaults of :func:`inpaint_file`.

    Returns:
        The folder.
    """
    if naive_bayes.codebook_size != vq_model.codebook_size:
        raise ValueError(
            f"the Naive Bayes model has {naive_bayes.codebook_size} codes but the VQ-VAE "
            f"{vq_model.codebook_size}."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vq_model.save(folder / MODEL_NAME)
    naive_bayes.save(folder / NAIVE_BAYES_NAME)
    settings = {
        "version": SETTINGS_VERSION,
        "spectrogram": dataclasses.asdict(spec),
        "downsampling_factor": int(vq_model.downsampling_factor),
        "codebook_size": int(vq_model.codebook_size),
        "sweeps": int(sweeps),
        "temperature": float(temperature),
        "griffin_lim_iterations": int(griffin_lim_iterations),
    }
    path = folder / SETTINGS_NAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(settings, indent=2))
    os.replace(temporary, path)
    return folder


def read_effect_settings(folder: str | Path) -> dict:
    """The settings of an effect folder (no TensorFlow needed).

    Raises:
        FileNotFoundError: the folder lacks one of the three effect files.
    """
    folder = Path(folder)
    missing = [
        name
        for name in (SETTINGS_NAME, MODEL_NAME, NAIVE_BAYES_NAME)
        if not (folder / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{folder} holds no trained effect (missing {', '.join(missing)}); train one in "
            "05_vq_vae_inpainting.ipynb (it calls save_effect) or pass --model DIR."
        )
    settings = json.loads((folder / SETTINGS_NAME).read_text())
    if not isinstance(settings.get("spectrogram"), dict):
        raise ValueError(f"{folder / SETTINGS_NAME} has no spectrogram settings.")
    return settings


def load_effect(folder: str | Path) -> Effect:
    """Load what :func:`save_effect` wrote.

    Raises:
        FileNotFoundError: the folder lacks one of the three effect files.
        ValueError: its ``vq_vae.keras`` holds another kind of model.
    """
    import keras

    from course_lib.spectrogram import SpectrogramSpec
    from course_lib.vq import VQVAE  # importing course_lib.vq makes its classes known to Keras

    folder = Path(folder)
    settings = read_effect_settings(folder)
    vq_model = keras.saving.load_model(folder / MODEL_NAME, compile=False)
    if not isinstance(vq_model, VQVAE):
        raise ValueError(
            f"{folder / MODEL_NAME} holds a {type(vq_model).__name__}, not a course_lib.vq.VQVAE."
        )
    return Effect(
        vq_model=vq_model,
        naive_bayes=CodeNaiveBayes.load(folder / NAIVE_BAYES_NAME),
        spec=SpectrogramSpec(**settings["spectrogram"]),
        sweeps=int(settings.get("sweeps", Effect.sweeps)),
        temperature=float(settings.get("temperature", Effect.temperature)),
        griffin_lim_iterations=int(
            settings.get("griffin_lim_iterations", Effect.griffin_lim_iterations)
        ),
    )


# ----------------------------------------------------------------------------- a sound file


def _default_model_folder() -> Path:
    from course_lib import config

    return config.checkpoint_dir(DEFAULT_EFFECT)


def _checked_range(values: tuple[float, float], option: str, unit: str) -> tuple[float, float]:
    """``(start, stop)`` as floats with ``0 <= start < stop < inf``, else ``ValueError``."""
    start, stop = (float(value) for value in values)
    if not 0 <= start < stop or stop == float("inf"):
        raise ValueError(
            f"{option} range {start:g}:{stop:g} must satisfy 0 <= START < STOP (in {unit})."
        )
    return start, stop


def check_request(
    input_path: Path,
    time_range: tuple[float, float],
    freq_range: tuple[float, float],
    model: Path | None = None,
    temperature: float | None = None,
    sweeps: int | None = None,
    iterations: int | None = None,
):
    """Everything that can be checked without TensorFlow: the settings, the input sound,
    the effect folder, and the region against the sound's duration and the Nyquist
    frequency. Messages name the command-line options (``--input`` for ``input_path``).

    Returns:
        ``(samples, input_rate, settings, folder)``.
    """
    from course_lib import audio

    _checked_range(time_range, "--time", "seconds")
    _checked_range(freq_range, "--freq", "Hz")
    if temperature is not None and temperature < 0:
        raise ValueError(f"--temperature must be >= 0, got {temperature}.")
    if sweeps is not None and sweeps < 1:
        raise ValueError(f"--sweeps must be at least 1, got {sweeps}.")
    if iterations is not None and iterations < 1:
        raise ValueError(f"--iterations must be at least 1, got {iterations}.")
    if input_path.is_dir():
        raise ValueError(f"--input {input_path} is a folder, not a sound file.")
    if not input_path.exists():
        raise FileNotFoundError(f"--input {input_path} does not exist.")
    try:
        samples, input_rate = audio.load_audio(input_path)
    except audio.AudioDecodeError as error:
        raise ValueError(f"--input {input_path} is not usable audio: {error}") from error
    folder = Path(model) if model is not None else _default_model_folder()
    settings = read_effect_settings(folder)
    spectrogram_settings = settings["spectrogram"]
    duration = samples.shape[0] / input_rate
    nyquist = spectrogram_settings["sample_rate"] / 2
    start = time_range[0]
    if start >= duration:
        raise ValueError(f"--time starts at {start:g} s but {input_path} lasts {duration:.2f} s.")
    low = freq_range[0]
    if low >= nyquist:
        raise ValueError(
            f"--freq starts at {low:g} Hz, at or above the model's Nyquist frequency "
            f"{nyquist:g} Hz."
        )
    return samples, input_rate, settings, folder


def inpaint_file(
    input_path: str | Path,
    output_path: str | Path,
    time_range: tuple[float, float],
    freq_range: tuple[float, float],
    model: str | Path | None = None,
    temperature: float | None = None,
    sweeps: int | None = None,
    seed: int = 0,
    iterations: int | None = None,
) -> str:
    """Apply a saved effect to a sound file and write the result: what
    ``python -m course_lib.inpainting`` does, in this process.

    Args:
        input_path: the sound to transform (``--input``; any format ``audio.load_audio``
            reads, any rate, mono or not).
        output_path: the WAV file to write (``--output``): mono, the input's rate and length.
        time_range: ``(start, stop)`` in seconds (``--time START:STOP``).
        freq_range: ``(low, high)`` in Hz (``--freq LOW:HIGH``).
        model: the effect folder :func:`save_effect` wrote (``--model``; default: the
            notebook's ``checkpoints/vq_inpainting``).
        temperature, sweeps, iterations: ``None`` uses the effect's saved defaults.
        seed: the sampling seed.

    Returns:
        A one-line summary: what was written, how many codes were resampled, how long it took.

    Raises:
        ValueError, FileNotFoundError: a bad argument, checked before TensorFlow loads; the
            message names the command-line option.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    samples, input_rate, _, folder = check_request(
        input_path, time_range, freq_range, model, temperature, sweeps, iterations
    )

    from course_lib import audio

    started = time.perf_counter()
    effect = load_effect(folder)
    rate = effect.spec.sample_rate
    model_audio = audio.resample(samples, input_rate, rate)
    result = inpaint_audio(
        model_audio,
        effect.vq_model,
        effect.naive_bayes,
        effect.spec,
        time_range=tuple(time_range),
        freq_range=tuple(freq_range),
        sweeps=sweeps if sweeps is not None else effect.sweeps,
        temperature=temperature if temperature is not None else effect.temperature,
        seed=seed,
        iterations=iterations or effect.griffin_lim_iterations,
    )
    output = audio.resample(result.audio, rate, input_rate)[: samples.shape[0]]
    output = np.pad(output, (0, samples.shape[0] - output.shape[0]))  # the input's length
    audio.write_wav(output_path, output, input_rate)
    box = result.after_codes[result.time_slice, result.freq_slice]
    return (
        f"wrote {output_path} ({samples.shape[0] / input_rate:.2f} s at {input_rate} Hz): "
        f"resampled {box.size} codes ({100 * result.changed_fraction:.0f}% changed) in "
        f"{time.perf_counter() - started:.2f} s"
    )
