"""An invertible spectrogram: the image that the VAE and the VQ-VAE learn to draw.

Audio becomes a magnitude STFT on a decibel scale mapped to [0, 1]; a model's output goes
back to audio by Griffin-Lim phase reconstruction. Both directions use ``tf.signal`` with
the same framing, so they run inside ``tf.data`` pipelines and on the GPU.

With a Hann window of ``frame_length`` samples, hop ``frame_step`` and frames padded at
the end (``ceil(samples / frame_step)`` frames):

    X[t, k] = sum_n w[n] x[t * hop + n] exp(-2 pi i k n / frame_length)
    dB[t, k] = 20 log10(max(|X[t, k]|, 10^(min_db / 20)))
    unit[t, k] = clip((dB[t, k] - min_db) / (max_db - min_db), 0, 1)

(a full-scale sine peaks near ``20 log10(frame_length / 4)``, about 42 dB, so the default
range -50..50 dB keeps it unclipped). The default 512-sample window (32 ms at 16 kHz) has
256 frequency bins below Nyquist, and the 125-sample hop gives 128 frames per second at
16 kHz: powers of two, so convolutional encoders can halve both axes several times.

Griffin-Lim (Griffin & Lim, 1984), with the momentum of Perraudin et al. (2013), finds a
phase for a given magnitude ``S`` by alternating projections,

    x_i = ISTFT(S * exp(i phi_i)),   phi_{i+1} = angle(STFT(x_i) + momentum (STFT(x_i) - c_{i-1})),

starting from zero phase (deterministic).

Used in: 04_vae_fid.ipynb, 05_vq_vae_inpainting.ipynb.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class SpectrogramSpec:
    """How audio is turned into a spectrogram image and back.

    Attributes:
        sample_rate: samples per second of the audio.
        frame_length: Hann window and FFT length in samples.
        frame_step: hop between frames in samples.
        min_db: the magnitude level (dB) that maps to 0; quieter is silence.
        max_db: the magnitude level (dB) that maps to 1; louder is clipped.
    """

    sample_rate: int = 16000
    frame_length: int = 512
    frame_step: int = 125
    min_db: float = -50.0
    max_db: float = 50.0

    def __post_init__(self):
        if self.frame_length < 2 or not 0 < self.frame_step <= self.frame_length:
            raise ValueError(
                f"need frame_length >= 2 and 0 < frame_step <= frame_length, got "
                f"{self.frame_length} and {self.frame_step}."
            )
        if self.min_db >= self.max_db:
            raise ValueError(f"min_db must be below max_db, got {self.min_db} and {self.max_db}.")

    @property
    def bins(self) -> int:
        """Frequency bins kept per frame: ``frame_length // 2`` (the STFT's Nyquist bin is
        dropped, see :func:`to_spectrogram`)."""
        return self.frame_length // 2

    def frames(self, samples: int) -> int:
        """Frames for a clip of ``samples``: ``ceil(samples / frame_step)``."""
        return math.ceil(samples / self.frame_step)

    def shape(self, samples: int) -> tuple[int, int]:
        """The spectrogram image shape ``(frames, bins)`` of a clip of ``samples``."""
        return self.frames(samples), self.bins


def to_spectrogram(audio, spec: SpectrogramSpec = SpectrogramSpec()) -> tf.Tensor:
    """Audio ``[batch, samples]`` or ``[batch, samples, 1]`` to ``[batch, frames, bins]`` in
    [0, 1].

    The Nyquist bin is dropped so that ``bins = frame_length // 2`` (256 by default);
    :func:`to_audio` puts it back as zero.
    """
    audio = tf.convert_to_tensor(audio, tf.float32)
    if audio.shape.rank == 3:
        audio = tf.squeeze(audio, -1)
    if audio.shape.rank != 2:
        raise ValueError(f"audio must be shaped [batch, samples], got {audio.shape}.")
    stft = _stft(audio, spec)[..., : spec.bins]
    floor = 10.0 ** (spec.min_db / 20.0)
    magnitude = tf.abs(stft)
    decibels = 20.0 * tf.math.log(tf.maximum(magnitude, floor)) / math.log(10.0)
    unit = tf.clip_by_value((decibels - spec.min_db) / (spec.max_db - spec.min_db), 0.0, 1.0)
    return tf.where(magnitude <= floor, tf.zeros_like(unit), unit)  # exact 0 for silence


def to_magnitude(unit, spec: SpectrogramSpec = SpectrogramSpec()) -> tf.Tensor:
    """Inverse of the [0, 1] scaling: linear STFT magnitudes ``[batch, frames, bins + 1]``
    (the dropped Nyquist bin restored as 0). Values at 0 map to silence."""
    unit = tf.convert_to_tensor(unit, tf.float32)
    if unit.shape.rank == 4:
        unit = tf.squeeze(unit, -1)
    decibels = tf.clip_by_value(unit, 0.0, 1.0) * (spec.max_db - spec.min_db) + spec.min_db
    magnitude = 10.0 ** (decibels / 20.0)
    magnitude = tf.where(unit <= 0.0, tf.zeros_like(magnitude), magnitude)
    return tf.pad(magnitude, [[0, 0], [0, 0], [0, 1]])


def to_audio(
    unit,
    samples: int,
    spec: SpectrogramSpec = SpectrogramSpec(),
    iterations: int = 32,
    momentum: float = 0.99,
) -> np.ndarray:
    """Spectrogram images ``[batch, frames, bins]`` (or ``[..., 1]``) back to audio
    ``[batch, samples]`` by fast Griffin-Lim, clipped to [-1, 1].

    Args:
        unit: spectrograms from :func:`to_spectrogram` or a model.
        samples: length of the clips to return.
        spec: the representation's settings.
        iterations: Griffin-Lim iterations (more: cleaner phase, slower).
        momentum: 0 is classic Griffin-Lim; 0.99 converges faster.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}.")
    magnitude = tf.cast(to_magnitude(unit, spec), tf.complex64)
    return _griffin_lim(magnitude, samples, spec, iterations, momentum).numpy()


@tf.function(reduce_retracing=True)
def _griffin_lim(magnitude, samples, spec, iterations, momentum):
    angles = tf.ones_like(magnitude)
    previous = tf.zeros_like(magnitude)
    for _ in tf.range(iterations):
        rebuilt = _stft(_istft(magnitude * angles, samples, spec), spec)
        accelerated = rebuilt - tf.cast(momentum / (1.0 + momentum), tf.complex64) * previous
        angles = accelerated / tf.cast(tf.maximum(tf.abs(accelerated), 1e-16), tf.complex64)
        previous = rebuilt
    audio = _istft(magnitude * angles, samples, spec)
    return tf.clip_by_value(audio, -1.0, 1.0)


def _stft(audio, spec: SpectrogramSpec):
    return tf.signal.stft(
        audio,
        spec.frame_length,
        spec.frame_step,
        fft_length=spec.frame_length,
        window_fn=tf.signal.hann_window,
        pad_end=True,
    )


def _istft(stft, samples, spec: SpectrogramSpec):
    audio = tf.signal.inverse_stft(
        stft,
        spec.frame_length,
        spec.frame_step,
        fft_length=spec.frame_length,
        window_fn=tf.signal.inverse_stft_window_fn(spec.frame_step, tf.signal.hann_window),
    )
    return audio[:, :samples]


def spectral_convergence(audio, reference, spec: SpectrogramSpec = SpectrogramSpec()) -> float:
    """``|| |STFT(audio)| - |STFT(reference)| ||_F / || |STFT(reference)| ||_F``: 0 when the
    magnitudes match (phase is ignored). Audio ``[batch, samples]``."""
    a = tf.abs(_stft(tf.convert_to_tensor(audio, tf.float32), spec))
    b = tf.abs(_stft(tf.convert_to_tensor(reference, tf.float32), spec))
    return float(tf.norm(a - b) / tf.maximum(tf.norm(b), 1e-12))


def log_spectral_distance(
    audio, reference, spec: SpectrogramSpec = SpectrogramSpec(), floor_db: float = -100.0
) -> float:
    """Log-spectral distance in dB between clips ``[batch, samples]`` (phase is ignored):

        LSD = mean_t sqrt( mean_k (10 log10 P[t, k] - 10 log10 P_ref[t, k])^2 ),

    with ``P = |STFT|^2`` floored at ``floor_db`` so that silence does not dominate. 0 when
    the magnitudes match; a gain ``g`` gives ``|20 log10 g|`` wherever both are above the
    floor. Averaged over the batch. Used in: 05_vq_vae_inpainting.ipynb.
    """
    floor = 10.0 ** (floor_db / 10.0)
    power = tf.square(tf.abs(_stft(tf.convert_to_tensor(audio, tf.float32), spec)))
    reference_power = tf.square(tf.abs(_stft(tf.convert_to_tensor(reference, tf.float32), spec)))
    if power.shape != reference_power.shape:
        raise ValueError(
            f"audio and reference must have the same shape, got spectra {power.shape} and "
            f"{reference_power.shape}."
        )
    to_db = 10.0 / math.log(10.0)
    difference = to_db * (
        tf.math.log(tf.maximum(power, floor)) - tf.math.log(tf.maximum(reference_power, floor))
    )
    per_frame = tf.sqrt(tf.reduce_mean(tf.square(difference), axis=-1))  # [batch, frames]
    return float(tf.reduce_mean(per_frame))
