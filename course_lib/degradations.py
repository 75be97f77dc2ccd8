"""Controlled damage to audio clips, to see how a metric reacts to known defects.

Each function takes clips ``[n, samples]`` (float, in [-1, 1]) and returns a damaged
copy of the same shape; the input is never modified.

Used in: 02_judge_and_metrics.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib import audio


def add_noise_at_snr(clips: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add white Gaussian noise at a signal-to-noise ratio of ``snr_db`` per clip.

    ``SNR = 10 log10(P_signal / P_noise)`` with ``P`` the mean square, so the noise
    standard deviation is ``sqrt(P_signal / 10^(snr_db / 10))``. A silent clip gets no
    noise. The result is clipped to [-1, 1].
    """
    clips = _clips(clips)
    power = np.mean(clips**2, axis=1, keepdims=True)
    scale = np.sqrt(power / 10 ** (snr_db / 10))
    noise = np.random.default_rng(seed).standard_normal(clips.shape).astype(np.float32)
    return np.clip(clips + scale * noise, -1.0, 1.0).astype(np.float32)


def low_pass(clips: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Remove every frequency above ``cutoff_hz`` (an ideal filter: zeroed FFT bins)."""
    clips = _clips(clips)
    if not 0 < cutoff_hz <= sample_rate / 2:
        raise ValueError(f"cutoff_hz must be in (0, {sample_rate / 2}], got {cutoff_hz}.")
    spectrum = np.fft.rfft(clips, axis=1)
    frequencies = np.fft.rfftfreq(clips.shape[1], 1 / sample_rate)
    spectrum[:, frequencies > cutoff_hz] = 0
    return np.fft.irfft(spectrum, n=clips.shape[1], axis=1).astype(np.float32)


def time_shift(clips: np.ndarray, shift: int) -> np.ndarray:
    """Delay every clip by ``shift`` samples (advance when negative), filling with silence."""
    clips = _clips(clips)
    shifted = np.zeros_like(clips)
    length = clips.shape[1]
    if abs(shift) >= length:
        return shifted
    if shift >= 0:
        shifted[:, shift:] = clips[:, : length - shift]
    else:
        shifted[:, :shift] = clips[:, -shift:]
    return shifted


def _clips(clips: np.ndarray) -> np.ndarray:
    """A float32 ``[n, samples]`` copy to damage (the caller's clips stay as they were)."""
    return audio.clip_batch(clips).copy()
