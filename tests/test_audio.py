"""course_lib.audio: decoding, resampling, PCM packing, mu-law, against NumPy references."""

import numpy as np
import pytest
import soundfile

from course_lib import audio


def _sine(frequency, rate, seconds=1.0, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_load_audio_decodes_every_wav_depth(tmp_path, subtype):
    clip = _sine(440, 16000)
    path = tmp_path / "tone.wav"
    soundfile.write(path, clip, 16000, subtype=subtype)
    samples, rate = audio.load_audio(path)
    assert rate == 16000 and samples.dtype == np.float32
    tolerance = 1 / 120 if subtype == "PCM_U8" else 1e-4
    np.testing.assert_allclose(samples, clip, atol=tolerance)


def test_load_audio_mixes_stereo_and_resamples_keeping_pitch(tmp_path):
    left, right = _sine(1000, 48000), _sine(1000, 48000, amplitude=0.1)
    path = tmp_path / "stereo.flac"
    soundfile.write(path, np.stack([left, right], axis=1), 48000)
    samples, rate = audio.load_audio(path, sample_rate=16000)
    assert rate == 16000 and samples.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=1)  # 1 Hz bins over 1 s
    assert np.max(np.abs(samples[100:-100])) == pytest.approx(0.3, abs=0.01)  # mean of channels


def test_bad_files_raise_decode_errors_with_reasons(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.wav"
    noise.write_bytes(np.random.default_rng(0).bytes(4000))
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.full(100, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(FileNotFoundError, match="no such audio file"):
        audio.load_audio(tmp_path / "missing.wav")
    for path, reason in [(empty, "not decodable"), (noise, "not decodable"), (nan, "NaN")]:
        with pytest.raises(audio.AudioDecodeError, match=reason):
            audio.load_audio(path)


def test_pcm16_round_trip_and_format():
    clip = np.array([-1.0, -0.5, 0.0, 0.25, 1.0, 2.0], np.float32)
    data = audio.to_pcm16(clip)
    assert data[:2] == (-32768).to_bytes(2, "little", signed=True)
    assert data[-4:] == (32767).to_bytes(2, "little", signed=True) * 2  # 1.0 and 2.0 clip
    np.testing.assert_allclose(audio.from_pcm16(data), np.clip(clip, -1, 1), atol=1 / 32768)


def test_pcm16_matches_soundfile_so_16_bit_files_round_trip_exactly(tmp_path):
    import soundfile

    pcm = np.random.default_rng(0).integers(-32768, 32768, 4000).astype(np.int16)
    soundfile.write(tmp_path / "x.wav", pcm, 16000, subtype="PCM_16")
    samples, _ = audio.load_audio(tmp_path / "x.wav")
    assert audio.to_pcm16(samples) == pcm.astype("<i2").tobytes()


def test_fit_length_pads_and_crops_the_centre():
    np.testing.assert_array_equal(audio.fit_length(np.arange(3.0), 5), [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(audio.fit_length(np.arange(6.0), 2), [2, 3])


def test_mu_law_matches_numpy_reference_and_round_trips():
    x = np.linspace(-1, 1, 10001).astype(np.float32)
    mu = 255.0
    reference = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    reference_classes = np.floor((reference + 1) / 2 * mu + 0.5).astype(np.int32)
    classes = np.asarray(audio.mu_law_encode(x))
    np.testing.assert_array_equal(classes, reference_classes)
    assert classes.min() == 0 and classes.max() == 255
    decoded = np.asarray(audio.mu_law_decode(classes))

    # Rounding moves the companded value by at most half a class (1 / mu); the error in x
    # is at most the inverse map's growth over that half step.
    def inverse(y):
        return (np.power(1 + mu, y) - 1) / mu

    bound = inverse(np.abs(reference) + 1 / mu) - inverse(np.abs(reference))
    assert np.all(np.abs(decoded - x) <= bound + 1e-6)
    np.testing.assert_array_equal(np.asarray(audio.mu_law_encode(decoded)), classes)


def test_peak_normalize_and_silence():
    np.testing.assert_allclose(np.max(np.abs(audio.peak_normalize(_sine(5, 100) * 0.1))), 0.95)
    np.testing.assert_array_equal(audio.peak_normalize(np.zeros(4)), np.zeros(4))


def test_write_wav_round_trips(tmp_path):
    clip = _sine(300, 8000)
    path = audio.write_wav(tmp_path / "nested" / "out.wav", clip, 8000)
    samples, rate = audio.load_audio(path)
    assert rate == 8000
    np.testing.assert_allclose(samples, clip, atol=1 / 32768 + 1e-6)


def test_audio_grid_checks_labels():
    clips = [_sine(200, 4000, 0.1), _sine(400, 4000, 0.1)]
    grid = audio.audio_grid(clips, 4000, labels=["low", "high"], columns=2)
    assert len(grid.children) == 2
    with pytest.raises(ValueError, match="2 clips but 1 labels"):
        audio.audio_grid(clips, 4000, labels=["one"])
    assert len(audio.audio_grid(clips, [4000, 8000]).children) == 2
    with pytest.raises(ValueError, match="2 clips but 3 sample rates"):
        audio.audio_grid(clips, [4000, 8000, 16000])


def test_a_silent_clip_plays_silence_and_a_quiet_one_full_volume():
    import io
    import wave

    def decoded(player) -> np.ndarray:
        with wave.open(io.BytesIO(player.data)) as stream:
            return np.frombuffer(stream.readframes(stream.getnframes()), "<i2")

    np.testing.assert_array_equal(decoded(audio.play(np.zeros((800, 1)), 8000)), 0)
    quiet = 0.01 * np.sin(np.linspace(0, 20 * np.pi, 800))
    assert np.abs(decoded(audio.play(quiet, 8000))).max() >= 32000


def test_clip_batch_takes_the_models_channel_axis_off_and_refuses_other_shapes():
    clips = np.arange(6, dtype=np.float64).reshape(2, 3, 1)
    flat = audio.clip_batch(clips)
    assert flat.dtype == np.float32 and flat.shape == (2, 3)
    np.testing.assert_array_equal(flat, clips[..., 0])
    assert audio.clip_batch(flat).shape == (2, 3)
    for shape in [(6,), (2, 3, 2), (1, 2, 3, 1)]:
        with pytest.raises(ValueError, match=r"clips must be shaped \[n, samples\], got"):
            audio.clip_batch(np.zeros(shape))
