"""Command line for the "blur" effect: resample a time-frequency region of a sound.

    python -m course_lib.inpaint --input in.wav --output out.wav --time 0.5:1.5 \\
        --freq 200:2000 [--model DIR] [--temperature T] [--sweeps N] [--seed S]

``--time`` is in seconds and ``--freq`` in Hz. The sound is encoded by a trained VQ-VAE,
the code map inside the box is redrawn by the Naive Bayes model
(:mod:`course_lib.inpainting`), decoded and turned back into audio; the output WAV has
the input's rate and length (mono).

An effect folder (``--model``; default: the notebook's ``checkpoints/vq_inpainting``
folder) holds what :func:`save_effect` writes:

- ``vq_vae.keras``: the trained VQ-VAE;
- ``naive_bayes.npz``: the Naive Bayes counts;
- ``effect.json``: the spectrogram settings and the default sweeps, temperature and
  Griffin-Lim iterations.

The command line only parses its arguments and calls :func:`inpaint_file`, which a
notebook calls directly with the same arguments (in its own process: no second TensorFlow
on a GPU the notebook already holds, and errors show where they happen).

A bad argument prints one ``error:`` line and exits 2. TensorFlow is imported only once
the arguments, the input file and the effect folder have been checked.

Used in: 05_vq_vae_inpainting.ipynb.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.command_line import run_command

MODEL_NAME = "vq_vae.keras"
NAIVE_BAYES_NAME = "naive_bayes.npz"
SETTINGS_NAME = "effect.json"
DEFAULT_EFFECT = "vq_inpainting"  # folder name under course_lib.config.checkpoint_dir
SETTINGS_VERSION = 1


# ----------------------------------------------------------------------------- effect folder


@dataclasses.dataclass
class Effect:
    """A loaded effect: the models, the spectrogram settings and default sampling."""

    vq_model: Any
    naive_bayes: Any
    spec: Any
    sweeps: int = 4
    temperature: float = 1.0
    griffin_lim_iterations: int = 32


def save_effect(
    folder: str | Path,
    vq_model,
    naive_bayes,
    spec,
    sweeps: int = 4,
    temperature: float = 1.0,
    griffin_lim_iterations: int = 32,
) -> Path:
    """Write a trained VQ-VAE, its fitted Naive Bayes model and the settings to ``folder``.

    Args:
        folder: created if missing; existing effect files are replaced.
        vq_model: a :class:`course_lib.vq.VQVAE`.
        naive_bayes: a fitted :class:`course_lib.inpainting.CodeNaiveBayes`.
        spec: the :class:`course_lib.spectrogram.SpectrogramSpec` the model was trained on.
        sweeps, temperature, griffin_lim_iterations: defaults of the command line.

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
    """Load what :func:`save_effect` wrote."""
    import keras

    from course_lib.inpainting import CodeNaiveBayes
    from course_lib.spectrogram import SpectrogramSpec
    from course_lib.vq import model as _registers_the_vq_vae  # noqa: F401

    folder = Path(folder)
    settings = read_effect_settings(folder)
    vq_model = keras.saving.load_model(folder / MODEL_NAME, compile=False)
    return Effect(
        vq_model=vq_model,
        naive_bayes=CodeNaiveBayes.load(folder / NAIVE_BAYES_NAME),
        spec=SpectrogramSpec(**settings["spectrogram"]),
        sweeps=int(settings.get("sweeps", 4)),
        temperature=float(settings.get("temperature", 1.0)),
        griffin_lim_iterations=int(settings.get("griffin_lim_iterations", 32)),
    )


# ----------------------------------------------------------------------------- arguments


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``error:`` line (exit 2), no usage."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def parse_range(text: str, unit: str) -> tuple[float, float]:
    """``"A:B"`` to ``(A, B)`` with ``0 <= A < B``.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    parts = text.split(":")
    try:
        start, stop = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a range START:STOP in {unit} (for example 0.5:1.5)"
        ) from None
    if not 0 <= start < stop or stop == float("inf"):
        raise argparse.ArgumentTypeError(
            f"range {text!r} must satisfy 0 <= START < STOP (in {unit})"
        )
    return start, stop


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m course_lib.inpaint",
        description="Resample a time-frequency region of a sound with a VQ-VAE and Naive Bayes.",
    )
    parser.add_argument("--input", type=Path, required=True, help="the sound to transform")
    parser.add_argument("--output", type=Path, required=True, help="the WAV file to write")
    parser.add_argument(
        "--time",
        type=lambda text: parse_range(text, "seconds"),
        required=True,
        help="START:STOP in seconds",
    )
    parser.add_argument(
        "--freq",
        type=lambda text: parse_range(text, "Hz"),
        required=True,
        help="LOW:HIGH in Hz",
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="effect folder (default: the notebook's)"
    )
    parser.add_argument("--temperature", type=float, default=None, help="0 = most likely codes")
    parser.add_argument("--sweeps", type=int, default=None, help="Gibbs sweeps over the region")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--iterations", type=int, default=None, help="Griffin-Lim iterations (default: saved)"
    )
    return parser


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
    ``python -m course_lib.inpaint`` does, in this process.

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
    from course_lib.inpainting import inpaint_audio

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


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: parse the arguments, call :func:`inpaint_file`, print its summary
    (or one ``error:`` line and return 2)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: inpaint_file(
            args.input,
            args.output,
            args.time,
            args.freq,
            model=args.model,
            temperature=args.temperature,
            sweeps=args.sweeps,
            seed=args.seed,
            iterations=args.iterations,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
