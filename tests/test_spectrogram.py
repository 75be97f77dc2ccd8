"""course_lib.spectrogram: the scaling against numpy, and Griffin-Lim's reconstruction."""

import numpy as np
import pytest

from course_lib import spectrogram

SPEC = spectrogram.SpectrogramSpec()
RATE = SPEC.sample_rate


def numpy_stft_magnitude(signal, spec):
    """Periodic Hann frames every ``frame_step``, zero-padded at the end, as tf.signal does."""
    frames = spec.frames(len(signal))
    padded = np.pad(signal, (0, (frames - 1) * spec.frame_step + spec.frame_length - len(signal)))
    n = np.arange(spec.frame_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / spec.frame_length)
    starts = np.arange(frames) * spec.frame_step
    framed = np.stack([padded[s : s + spec.frame_length] for s in starts]) * window
    return np.abs(np.fft.rfft(framed, axis=1))


def speech_like(seconds=1.0, seed=0):
    """A gliding harmonic tone with a syllable-like envelope."""
    t = np.arange(int(RATE * seconds)) / RATE
    pitch = 120 + 60 * t / seconds
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.sin(np.pi * t / seconds) ** 2 * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * envelope * voice + noise).astype(np.float32)


def test_shape_is_powers_of_two_for_one_second():
    assert SPEC.shape(RATE) == (128, 256)
    unit = spectrogram.to_spectrogram(np.zeros((2, RATE, 1), np.float32)).numpy()
    assert unit.shape == (2, 128, 256) and unit.max() == 0.0


def test_scaling_matches_a_numpy_stft_in_decibels():
    signal = speech_like()
    unit = spectrogram.to_spectrogram(signal[None]).numpy()[0]
    magnitude = numpy_stft_magnitude(signal, SPEC)[:, : SPEC.bins]
    decibels = 20 * np.log10(np.maximum(magnitude, 10 ** (SPEC.min_db / 20)))
    expected = np.clip((decibels - SPEC.min_db) / (SPEC.max_db - SPEC.min_db), 0, 1)
    np.testing.assert_allclose(unit, expected, atol=2e-4)


def test_a_sine_lands_in_its_bin_at_its_level():
    t = np.arange(RATE) / RATE
    sine = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    unit = spectrogram.to_spectrogram(sine[None]).numpy()[0]
    middle = unit[64]
    assert np.argmax(middle) == round(1000 * SPEC.frame_length / RATE)
    # Peak magnitude of a Hann-windowed sine: amplitude * sum(window) / 2 = 0.5 * 256 / 2.
    expected = (20 * np.log10(64) - SPEC.min_db) / (SPEC.max_db - SPEC.min_db)
    assert middle.max() == pytest.approx(expected, abs=0.01)


def test_to_magnitude_inverts_the_scaling():
    signal = speech_like()
    unit = spectrogram.to_spectrogram(signal[None])
    magnitude = spectrogram.to_magnitude(unit).numpy()[0]
    reference = numpy_stft_magnitude(signal, SPEC)
    audible = reference[:, : SPEC.bins] > 10 ** (SPEC.min_db / 20)
    np.testing.assert_allclose(
        magnitude[:, : SPEC.bins][audible], reference[:, : SPEC.bins][audible], rtol=2e-3
    )
    assert magnitude.shape[-1] == SPEC.bins + 1 and not magnitude[:, -1].any()


def test_griffin_lim_rebuilds_the_magnitudes():
    signal = speech_like()[None]
    unit = spectrogram.to_spectrogram(signal)
    few = spectrogram.spectral_convergence(spectrogram.to_audio(unit, RATE, iterations=2), signal)
    many = spectrogram.spectral_convergence(spectrogram.to_audio(unit, RATE, iterations=48), signal)
    assert many < 0.15 and many < few
    rebuilt = spectrogram.to_audio(unit, RATE, iterations=48)
    assert rebuilt.shape == (1, RATE) and np.abs(rebuilt).max() <= 1.0
    silent = spectrogram.to_audio(np.zeros((1, 128, 256)), RATE, iterations=4)
    assert not silent.any()


def test_bad_settings_and_shapes_are_reported():
    with pytest.raises(ValueError, match="min_db must be below max_db"):
        spectrogram.SpectrogramSpec(min_db=10, max_db=0)
    with pytest.raises(ValueError, match="0 < frame_step <= frame_length"):
        spectrogram.SpectrogramSpec(frame_step=1000)
    with pytest.raises(ValueError, match=r"shaped \[batch, samples\]"):
        spectrogram.to_spectrogram(np.zeros(100))
    with pytest.raises(ValueError, match="iterations must be at least 1"):
        spectrogram.to_audio(np.zeros((1, 4, 256)), 500, iterations=0)
