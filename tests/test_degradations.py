"""course_lib.degradations: each damage is exactly the one it names."""

import numpy as np
import pytest

from course_lib import degradations

RATE = 8000


def tones(frequencies, n=RATE):
    t = np.arange(n) / RATE
    return np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in frequencies]).astype(np.float32)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 30.0])
def test_noise_is_added_at_the_requested_snr(snr_db):
    clean = 0.2 * tones([440, 1000])  # quiet enough that the noise is never clipped
    noisy = degradations.add_noise_at_snr(clean, snr_db, seed=1)
    noise = noisy - clean
    measured = 10 * np.log10(np.mean(clean**2, axis=1) / np.mean(noise**2, axis=1))
    np.testing.assert_allclose(measured, snr_db, atol=0.2)
    assert np.abs(noisy).max() <= 1.0


def test_low_pass_removes_only_what_lies_above_the_cutoff():
    mixed = tones([300]) + tones([3000])
    filtered = degradations.low_pass(mixed, 1000, RATE)
    np.testing.assert_allclose(filtered, tones([300]), atol=1e-4)
    with pytest.raises(ValueError, match="cutoff_hz must be in"):
        degradations.low_pass(mixed, 5000, RATE)


def test_time_shift_delays_and_advances_with_silence():
    clips = np.arange(10, dtype=np.float32)[None] / 10
    np.testing.assert_array_equal(degradations.time_shift(clips, 3)[0, :3], 0)
    np.testing.assert_array_equal(degradations.time_shift(clips, 3)[0, 3:], clips[0, :7])
    np.testing.assert_array_equal(degradations.time_shift(clips, -2)[0, :8], clips[0, 2:])
    np.testing.assert_array_equal(degradations.time_shift(clips, -2)[0, 8:], 0)
    assert not degradations.time_shift(clips, 12).any()


def test_input_is_not_modified_and_shapes_are_checked():
    clips = tones([440])
    before = clips.copy()
    degradations.add_noise_at_snr(clips, 0)
    degradations.time_shift(clips[..., None], 5)
    np.testing.assert_array_equal(clips, before)
    with pytest.raises(ValueError, match=r"shaped \[n, samples\]"):
        degradations.low_pass(np.zeros(10), 100, RATE)
