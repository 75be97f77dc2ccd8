"""Audio in and out: decoding, resampling, PCM packing, mu-law and playback.

Everything here works on NumPy arrays of float32 samples in [-1, 1] (mono unless
stated) so it can run in ``data_prep`` worker processes without TensorFlow.

Used in: 01_speech_commands_tfrecords.ipynb and every later notebook.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3"})


class AudioDecodeError(ValueError):
    """A file that cannot be used as audio; the message is the reason to report."""


def is_audio_file(path: str | Path) -> bool:
    """True for a file whose extension (any case) is an audio format we decode."""
    return os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 in [-1, 1], resampled to ``sample_rate``.

    Any PCM depth, float WAV, FLAC or OGG, any channel count (channels are averaged).

    Args:
        path: the audio file.
        sample_rate: target rate in Hz, or None to keep the file's rate.

    Returns:
        ``(samples, rate)`` with samples of shape ``[num_samples]``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        AudioDecodeError: empty, truncated, non-audio, or NaN/infinite samples; the
            message says which.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    try:
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, EOFError) as error:
        raise _undecodable(path, error) from error
    if samples.shape[0] == 0:
        raise AudioDecodeError("no samples (empty or truncated file)")
    if not np.isfinite(samples).all():
        raise AudioDecodeError("contains NaN or infinite samples")
    mono = samples.mean(axis=1, dtype=np.float32)  # [n, channels] -> [n]
    if sample_rate is not None and sample_rate != file_rate:
        mono = resample(mono, file_rate, sample_rate)
        file_rate = sample_rate
    return np.clip(mono, -1.0, 1.0), int(file_rate)


def load_pcm16(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode a file to mono int16 samples at ``sample_rate``, shape ``[num_samples]``.

    A mono 16-bit file already at ``sample_rate`` (all of Speech Commands) is read as
    int16 directly: exact, and about twice as fast as the float route. Anything else
    goes through :func:`load_audio` and :func:`to_pcm16`.

    Raises:
        FileNotFoundError, AudioDecodeError: as :func:`load_audio`.
    """
    import soundfile

    try:
        with soundfile.SoundFile(path) as sound:
            exact = (sound.channels, sound.subtype, sound.samplerate) == (1, "PCM_16", sample_rate)
            pcm = sound.read(dtype="int16") if exact else None
    except (RuntimeError, soundfile.LibsndfileError, EOFError) as error:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such audio file: {path}") from error
        raise _undecodable(Path(path), error) from error
    if pcm is None:
        samples, _ = load_audio(path, sample_rate)
        return np.frombuffer(to_pcm16(samples), dtype="<i2")
    if pcm.shape[0] == 0:
        raise AudioDecodeError("no samples (empty or truncated file)")
    return pcm


def clip_batch(clips) -> np.ndarray:
    """A batch of clips as float32 ``[n, samples]``, from ``[n, samples]`` or the models'
    ``[n, samples, 1]``.

    Raises:
        ValueError: any other shape.
    """
    clips = np.asarray(clips, np.float32)
    if clips.ndim == 3 and clips.shape[-1] == 1:
        clips = clips[..., 0]
    if clips.ndim != 2:
        raise ValueError(f"clips must be shaped [n, samples], got {clips.shape}.")
    return clips


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality), shape ``[n] -> [n * to / from]``."""
    import soxr

    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}.")
    if from_rate == to_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or crop the centre so that ``samples`` has ``length`` samples."""
    if samples.shape[0] >= length:
        start = (samples.shape[0] - length) // 2
        return samples[start : start + length]
    return np.pad(samples, (0, length - samples.shape[0]))


PCM16_SCALE = 32768.0
"""libsndfile's convention: ``float = int16 / 32768``, so a 16-bit file round-trips exactly."""


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] to mono int16 little-endian PCM bytes (the TFRecord format).

    ``int16 = clip(round(x * 32768), -32768, 32767)``: the inverse of how soundfile decodes
    16-bit audio, so converting a 16-bit file at its own rate stores its exact samples.
    """
    scaled = np.clip(np.round(np.asarray(samples, np.float64) * PCM16_SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """Inverse of :func:`to_pcm16`: bytes to float32 samples in [-1, 1]."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM16_SCALE


def peak_normalize(samples: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale so that the largest absolute sample is ``peak``; silence is returned unchanged."""
    largest = float(np.max(np.abs(samples))) if samples.size else 0.0
    if largest == 0.0:
        return samples.astype(np.float32, copy=False)
    return (samples * (peak / largest)).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples as a 16-bit PCM WAV file, creating parent folders."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(
        path, np.clip(np.asarray(samples, np.float32), -1, 1), sample_rate, subtype="PCM_16"
    )
    return path


def mu_law_encode(samples, quantization_channels: int = 256):
    """Mu-law companding and quantization (G.711; van den Oord et al. 2016, eq. 2).

    f(x) = sign(x) * ln(1 + mu |x|) / ln(1 + mu), with mu = channels - 1, then mapped
    from [-1, 1] to integer classes 0 .. channels - 1.

    Args:
        samples: float array or tensor in [-1, 1], any shape.
        quantization_channels: number of classes (256 in WaveNet).

    Returns:
        int32 classes of the same shape.
    """
    from keras import ops

    mu = float(quantization_channels - 1)
    x = ops.clip(ops.convert_to_tensor(samples, "float32"), -1.0, 1.0)
    companded = ops.sign(x) * ops.log1p(mu * ops.abs(x)) / np.log1p(mu)
    return ops.cast(ops.floor((companded + 1.0) / 2.0 * mu + 0.5), "int32")


def mu_law_decode(classes, quantization_channels: int = 256):
    """Inverse of :func:`mu_law_encode`: integer classes to float samples in [-1, 1].

    x = sign(y) * ((1 + mu)^|y| - 1) / mu, with y the class mapped back to [-1, 1].
    """
    from keras import ops

    mu = float(quantization_channels - 1)
    y = 2.0 * ops.cast(classes, "float32") / mu - 1.0
    return ops.sign(y) * (ops.power(1.0 + mu, ops.abs(y)) - 1.0) / mu


def play(samples: np.ndarray, sample_rate: int):
    """An ``IPython.display.Audio`` player for one clip (shape ``[n]`` or ``[n, 1]``).

    The clip is scaled to full volume, except a silent one: IPython 7 (Colab's) divides
    by the peak, so a silent clip would turn into NaN noise.
    """
    from IPython.display import Audio

    clip = np.asarray(samples, np.float32).reshape(-1)
    audible = clip.size > 0 and float(np.max(np.abs(clip))) > 0.0
    return Audio(clip, rate=sample_rate, normalize=audible)


def audio_grid(
    clips: Sequence[np.ndarray],
    sample_rate: int | Sequence[int],
    labels: Sequence[str] | None = None,
    columns: int = 4,
):
    """A grid of labelled players, one per clip, as an ipywidgets ``GridBox``.

    Args:
        clips: clips of shape ``[n]`` or ``[n, 1]``.
        sample_rate: their rate in Hz, or one rate per clip.
        labels: a caption per clip (default: the index).
        columns: players per row.
    """
    import ipywidgets as widgets
    from IPython.display import display

    rates = [sample_rate] * len(clips) if isinstance(sample_rate, int) else list(sample_rate)
    if len(rates) != len(clips):
        raise ValueError(f"got {len(clips)} clips but {len(rates)} sample rates.")
    if labels is not None and len(labels) != len(clips):
        raise ValueError(f"got {len(clips)} clips but {len(labels)} labels.")
    cells = []
    for index, (clip, rate) in enumerate(zip(clips, rates, strict=True)):
        output = widgets.Output()
        with output:
            display(play(clip, rate))
        caption = str(labels[index]) if labels is not None else str(index)
        cells.append(widgets.VBox([widgets.Label(caption), output]))
    layout = widgets.Layout(grid_template_columns=f"repeat({columns}, max-content)")
    return widgets.GridBox(cells, layout=layout)


def _undecodable(path: Path, error: BaseException) -> AudioDecodeError:
    """The reason a file cannot be decoded, without libsndfile's copy of the full path."""
    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    reason = reason.replace(f"Error opening {str(path)!r}: ", "").replace(str(path), path.name)
    return AudioDecodeError(f"not decodable as audio ({reason})")
