"""data_prep fixtures: real layouts, real audio properties, determinism, safe reruns.

The datasets are generated once per module at small sizes (16 speakers, 8 notes per
family and split, 3 clips per genre) and checked against independent measurements:
TensorFlow's split hash rule re-implemented here, energy envelopes, a nearest-centroid
word classifier across speakers, FFT pitch estimates, onset autocorrelation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from course_lib.audio import to_pcm16
from data_prep import espeak, fixture_music, fixture_notes, fixture_speech, nsynth
from data_prep.fixtures import MARKER_NAME, make_fixtures

SPEAKERS = 16
NOTES = 8
CLIPS = 3
NSYNTH_KEYS = {
    "note",
    "note_str",
    "instrument",
    "instrument_str",
    "pitch",
    "velocity",
    "sample_rate",
    "instrument_family",
    "instrument_family_str",
    "instrument_source",
    "instrument_source_str",
    "qualities",
    "qualities_str",
}


@pytest.fixture(scope="module")
def fixtures_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fixtures")
    make_fixtures(root, "speech", per_class=SPEAKERS, seed=0)
    make_fixtures(root, "notes", per_class=NOTES, seed=0)
    make_fixtures(root, "music", per_class=CLIPS, seed=0)
    return root


def _read(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(path, dtype="float32")
    return samples, rate


def _tensorflow_split(file_name: str) -> str:
    """TensorFlow's speech_commands ``input_data.which_set``, written out independently."""
    hash_name = re.sub(r"_nohash_.*$", "", os.path.basename(file_name))
    hashed = int(hashlib.sha1(hash_name.encode()).hexdigest(), 16)
    percentage = (hashed % 2**27) * (100.0 / (2**27 - 1))
    if percentage < 10:
        return "validation"
    return "testing" if percentage < 20 else "training"


def _frame_rms(samples: np.ndarray, frame: int = 160) -> np.ndarray:
    frames = samples[: samples.shape[0] // frame * frame].reshape(-1, frame)
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def _active_seconds(samples: np.ndarray, rate: int) -> float:
    rms = _frame_rms(samples)
    loud = np.flatnonzero(rms > rms.max() / 31.6)  # within 30 dB of the loudest 10 ms
    return (loud[-1] - loud[0] + 1) * 160 / rate


def _word_features(samples: np.ndarray, bands: int = 24, segments: int = 8) -> np.ndarray:
    """Log band energies of the active part, averaged over 8 equal time segments."""
    frame, hop = 400, 160
    count = 1 + (samples.shape[0] - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    power = np.abs(np.fft.rfft(samples[index] * np.hanning(frame), axis=1)) ** 2
    edges = np.geomspace(2, power.shape[1], bands + 1).astype(int)
    log_bands = np.log(
        np.stack([power[:, a:b].sum(1) for a, b in itertools.pairwise(edges)], 1) + 1e-10
    )
    loudness = log_bands.max(1)
    active = np.flatnonzero(loudness > loudness.max() - np.log(1e3))
    word = log_bands[active[0] : active[-1] + 1]
    parts = np.array_split(np.arange(word.shape[0]), segments)
    features = np.stack([word[part].mean(0) for part in parts])
    return (features - features.mean()).ravel()


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha1(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# eSpeak NG through ctypes


def test_espeak_says_a_word_of_plausible_length():
    samples = espeak.synthesize(espeak.Utterance("seven", "en-us+m3", rate=175))
    assert espeak.sample_rate() == 22050 and samples.dtype == np.int16
    seconds = _active_seconds(samples.astype(np.float32) / 32768, 22050)
    assert 0.2 <= seconds <= 0.9
    assert np.abs(samples).max() > 3000  # speech, not silence


def test_espeak_batches_are_bit_reproducible_across_processes():
    # f3 and whisper add breath noise, which eSpeak seeds from the clock unless reseeded.
    utterances = [
        espeak.Utterance(word, voice, rate=150, pitch=31)
        for voice in ("en+f3", "en-gb-scotland+whisper")
        for word in ("yes", "nine")
    ]
    first = espeak.synthesize_batch(utterances)
    time.sleep(1.1)  # a clock-seeded generator would now start elsewhere
    second = espeak.synthesize_batch(utterances)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], first[2])  # the voices really differ


def test_espeak_rejects_unknown_voices_and_bad_parameters():
    with pytest.raises(ValueError, match="no voice"):
        espeak.synthesize(espeak.Utterance("yes", "en+nobody"))
    with pytest.raises(ValueError, match="rate"):
        espeak.Utterance("yes", rate=20)
    with pytest.raises(ValueError, match="pitch"):
        espeak.Utterance("yes", pitch=101)


# Speech Commands layout


def test_speech_commands_layout_and_clip_format(fixtures_root):
    root = fixtures_root / "speech_commands"
    words = {path.name for path in root.iterdir() if path.is_dir() and path.name[0] != "_"}
    assert words == set(fixture_speech.WORDS) and len(words) == 20
    for word in words:
        names = sorted(path.name for path in (root / word).iterdir())
        assert len(names) == SPEAKERS
        assert all(re.fullmatch(r"[0-9a-f]{8}_nohash_0\.wav", name) for name in names)
        for name in names[:4]:
            info = soundfile.info(root / word / name)
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (
                16000,
                1,
                16000,
                "PCM_16",
            )
    noises = sorted((root / "_background_noise_").glob("*.wav"))
    assert len(noises) >= 3
    for path in noises:
        info = soundfile.info(path)
        assert info.samplerate == 16000 and 10 <= info.duration <= 20


def test_speech_splits_are_by_speaker_and_agree_with_tensorflows_hash(fixtures_root):
    root = fixtures_root / "speech_commands"
    splits = {}
    for split in ("validation", "testing"):
        lines = (root / f"{split}_list.txt").read_text().splitlines()
        assert all((root / line).is_file() for line in lines)
        assert all(_tensorflow_split(line) == split for line in lines)
        speakers = {line.split("/")[1].split("_nohash_")[0] for line in lines}
        assert len(lines) == len(speakers) * 20  # every word of each held-out speaker
        splits[split] = speakers
    everyone = {path.name.split("_nohash_")[0] for path in (root / "yes").iterdir()}
    training = everyone - splits["validation"] - splits["testing"]
    assert not splits["validation"] & splits["testing"]
    assert len(splits["validation"]) == len(splits["testing"]) == 2  # 10% of 16, rounded
    assert all(_tensorflow_split(speaker) == "training" for speaker in training)


def test_at_least_16_distinct_speakers_with_distinct_voices(fixtures_root):
    marker = json.loads((fixtures_root / "speech_commands" / MARKER_NAME).read_text())
    speakers = marker["speakers"]
    voices = {(s["accent"], s["variant"], s["rate"], s["pitch"]) for s in speakers}
    assert len({s["speaker_id"] for s in speakers}) == len(voices) == SPEAKERS >= 16
    assert len({s["accent"] for s in speakers}) >= 4  # several accents, not one voice


def test_speech_clips_are_words_in_light_noise(fixtures_root):
    root = fixtures_root / "speech_commands"
    durations = {}
    for word in fixture_speech.WORDS:
        for path in sorted((root / word).iterdir()):
            samples, rate = _read(path)
            rms = _frame_rms(samples)
            assert rms.max() > 10 * np.percentile(rms, 5)  # a word over a 20 dB quieter floor
            assert np.abs(samples).max() < 0.99  # never clipped
            durations.setdefault(word, []).append(_active_seconds(samples, rate))
    all_durations = np.concatenate(list(durations.values()))
    assert all_durations.min() >= 0.1 and all_durations.max() <= 0.95
    assert np.mean(durations["seven"]) > np.mean(durations["up"])  # two syllables vs one


def test_words_are_recognisable_across_speakers(fixtures_root):
    """Nearest-centroid on log-band features: trained on some speakers, tested on others."""
    root = fixtures_root / "speech_commands"
    held_out = set((root / "validation_list.txt").read_text().split())
    held_out |= set((root / "testing_list.txt").read_text().split())
    features = {True: [], False: []}
    labels = {True: [], False: []}
    for label, word in enumerate(fixture_speech.WORDS):
        for path in sorted((root / word).iterdir()):
            is_held_out = f"{word}/{path.name}" in held_out
            features[is_held_out].append(_word_features(_read(path)[0]))
            labels[is_held_out].append(label)
    train, train_labels = np.array(features[False]), np.array(labels[False])
    test, test_labels = np.array(features[True]), np.array(labels[True])
    centroids = np.stack([train[train_labels == label].mean(0) for label in range(20)])
    distances = ((test[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = np.mean(np.argmin(distances, axis=1) == test_labels)
    assert accuracy >= 0.6  # chance is 0.05; about 0.9 measured


# NSynth layout


def test_nsynth_layout_and_metadata(fixtures_root):
    instruments = {}
    for split in ("valid", "test"):
        folder = fixtures_root / "nsynth" / f"nsynth-{split}"
        examples = json.loads((folder / "examples.json").read_text())
        assert {path.stem for path in (folder / "audio").glob("*.wav")} == set(examples)
        assert len(examples) == NOTES * len(fixture_notes.INSTRUMENTS)
        for note_str, meta in examples.items():
            assert set(meta) == NSYNTH_KEYS and meta["note_str"] == note_str
            assert note_str == (
                f"{meta['instrument_family_str']}_"
                f"{meta['instrument_source_str']}_"
                f"{int(meta['instrument_str'][-3:]):03d}-{meta['pitch']:03d}-"
                f"{meta['velocity']:03d}"
            )
            assert (
                nsynth.NSYNTH_FAMILIES[meta["instrument_family"]] == meta["instrument_family_str"]
            )
            assert nsynth.NSYNTH_SOURCES[meta["instrument_source"]] == meta["instrument_source_str"]
            assert meta["velocity"] in (25, 50, 75, 100, 127) and 36 <= meta["pitch"] <= 84
            assert len(meta["qualities"]) == 10 and sum(meta["qualities"]) == len(
                meta["qualities_str"]
            )
        instruments[split] = {meta["instrument_str"] for meta in examples.values()}
        info = soundfile.info(folder / "audio" / f"{note_str}.wav")
        assert (info.samplerate, info.frames, info.subtype) == (16000, 64000, "PCM_16")
    assert not instruments["valid"] & instruments["test"]  # different instruments per split


@pytest.mark.parametrize("family", ["flute", "keyboard", "mallet", "organ", "brass"])
def test_notes_sound_at_their_labelled_pitch(fixtures_root, family):
    folder = fixtures_root / "nsynth" / "nsynth-valid"
    examples = json.loads((folder / "examples.json").read_text())
    for note_str, meta in examples.items():
        if meta["instrument_family_str"] != family:
            continue
        samples, rate = _read(folder / "audio" / f"{note_str}.wav")
        held = samples[rate // 4 : rate // 4 + 2 * rate] * np.hanning(2 * rate)
        peak_hz = np.argmax(np.abs(np.fft.rfft(held))) / 2.0  # 0.5 Hz bins
        f0 = 440.0 * 2 ** ((meta["pitch"] - 69) / 12)
        if family in ("flute", "keyboard", "mallet"):  # the fundamental is the loudest
            assert abs(12 * np.log2(peak_hz / f0)) < 0.3, note_str
        else:  # drawbars and FM brass: the loudest partial is a harmonic of f0
            harmonic = peak_hz / f0
            assert round(harmonic) >= 1 and abs(harmonic - round(harmonic)) < 0.02, note_str


def test_notes_are_held_three_seconds_then_released(fixtures_root):
    folder = fixtures_root / "nsynth" / "nsynth-test"
    examples = json.loads((folder / "examples.json").read_text())
    for note_str, meta in examples.items():
        samples, rate = _read(folder / "audio" / f"{note_str}.wav")
        start, before_off, tail = (
            np.sqrt(np.mean(samples[int(a * rate) : int(b * rate)] ** 2))
            for a, b in ((0.1, 0.6), (2.5, 3.0), (3.6, 4.0))
        )
        assert tail < start / 100, note_str  # released: 40 dB down in the last 0.4 s
        if meta["instrument_family_str"] in ("organ", "flute", "brass"):  # sustained
            assert before_off > start / 3, note_str


# GTZAN layout


def test_gtzan_layout_and_clip_format(fixtures_root):
    genres = fixtures_root / "gtzan" / "genres"
    assert {path.name for path in genres.iterdir()} == set(fixture_music.GENRES)
    for genre in fixture_music.GENRES:
        names = sorted(path.name for path in (genres / genre).iterdir())
        assert names == [f"{genre}.{index:05d}.wav" for index in range(CLIPS)]
        info = soundfile.info(genres / genre / names[0])
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert info.frames == 6 * 22050


def _onset_autocorrelation(samples: np.ndarray, hop: int = 256) -> np.ndarray:
    """Autocorrelation of the positive spectral flux (onset strength), 1 at lag 0."""
    frame = 1024
    count = 1 + (samples.shape[0] - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    magnitude = np.log1p(100 * np.abs(np.fft.rfft(samples[index] * np.hanning(frame), axis=1)))
    flux = np.maximum(np.diff(magnitude, axis=0), 0).sum(1)
    flux -= flux.mean()
    correlation = np.correlate(flux, flux, "full")[flux.shape[0] - 1 :]
    return correlation / correlation[0]


def test_genres_differ_in_rhythm_and_timbre(fixtures_root):
    genres = fixtures_root / "gtzan" / "genres"
    frames_per_second = 22050 / 256
    centroids, tempos = {}, {}
    for genre in fixture_music.GENRES:
        for index in range(CLIPS):
            samples, rate = _read(genres / genre / f"{genre}.{index:05d}.wav")
            rendered, plan = fixture_music.render_clip(genre, index, seed=0)
            pcm, _ = soundfile.read(genres / genre / f"{genre}.{index:05d}.wav", dtype="int16")
            assert pcm.tobytes() == to_pcm16(rendered)  # the file is the planned clip
            # Onsets repeat at the planned beat, and not at 15% longer or shorter lags.
            correlation = _onset_autocorrelation(samples)
            beat = frames_per_second * 60 / plan.tempo
            assert correlation[round(beat)] > 0.3, (genre, index)
            assert max(correlation[round(beat * 0.85)], correlation[round(beat * 1.15)]) < 0.15
            spectrum = np.abs(np.fft.rfft(samples))
            frequencies = np.fft.rfftfreq(samples.shape[0], 1 / rate)
            centroids.setdefault(genre, []).append(
                np.sum(spectrum * frequencies) / np.sum(spectrum)
            )
            tempos.setdefault(genre, []).append(plan.tempo)
    # No drums and soft tones in classical, hats and distortion in disco and rock.
    assert max(centroids["classical"]) < min(centroids["reggae"])
    assert max(centroids["reggae"]) < min(centroids["disco"] + centroids["rock"])
    assert max(tempos["disco"]) < min(tempos["rock"])
    assert max(tempos["reggae"]) < min(tempos["disco"])


# Determinism, reruns, arguments


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    first = make_fixtures(tmp_path / "a", per_class=3, seed=5)
    second = make_fixtures(tmp_path / "b", per_class=3, seed=5)
    other = make_fixtures(tmp_path / "c", kind="speech", per_class=3, seed=6)
    digests = _tree_digest(tmp_path / "a")
    assert digests == _tree_digest(tmp_path / "b")
    assert sum(name.endswith(".wav") for name in digests) == 60 + 30 + 12 + 4
    assert first.speech_commands == tmp_path / "a" / "speech_commands"
    assert second.nsynth == tmp_path / "b" / "nsynth" and second.gtzan == tmp_path / "b" / "gtzan"
    assert other.nsynth is None and other.gtzan is None
    speakers = {path.name for path in (tmp_path / "a" / "speech_commands" / "yes").iterdir()}
    assert not speakers & {path.name for path in (other.speech_commands / "yes").iterdir()}


def test_rerun_reuses_a_complete_dataset_and_rebuilds_on_new_settings(tmp_path):
    built = make_fixtures(tmp_path, kind="music", per_class=1)
    clip = tmp_path / "gtzan" / "genres" / "rock" / "rock.00000.wav"
    stamp = clip.stat().st_mtime_ns
    again = make_fixtures(tmp_path, kind="music", per_class=1)
    assert again.datasets[0].reused and not built.datasets[0].reused
    assert clip.stat().st_mtime_ns == stamp  # not written again
    assert "reused" in str(again) and "gtzan" in str(again)
    bigger = make_fixtures(tmp_path, kind="music", per_class=2)
    assert not bigger.datasets[0].reused and bigger.datasets[0].counts["rock"] == 2
    assert (tmp_path / "gtzan" / "genres" / "rock" / "rock.00001.wav").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gtzan"]  # no staging left
    assert soundfile.info(clip).frames == fixture_music.CLIP_SECONDS * fixture_music.SAMPLE_RATE
    shorter = make_fixtures(tmp_path, kind="music", per_class=2, music_seconds=1.5)
    assert not shorter.datasets[0].reused and shorter.datasets[0].counts["rock"] == 2
    assert soundfile.info(clip).frames == round(1.5 * fixture_music.SAMPLE_RATE)
    assert make_fixtures(tmp_path, kind="music", per_class=2, music_seconds=1.5).datasets[0].reused


def test_an_interrupted_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail_halfway(folder, per_class, seed):
        (folder / "genres" / "rock").mkdir(parents=True)
        (folder / "genres" / "rock" / "rock.00000.wav").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(fixture_music, "write_gtzan", fail_halfway)
    with pytest.raises(KeyboardInterrupt):
        make_fixtures(tmp_path, kind="music", per_class=1)
    assert list(tmp_path.iterdir()) == []
    # A staging folder of a killed run (its process is gone) is cleared by the next build.
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    abandoned = tmp_path / f".gtzan.partial-{finished.stdout.strip()}-deadbeef"
    abandoned.mkdir()
    monkeypatch.undo()
    make_fixtures(tmp_path, kind="music", per_class=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gtzan"]


def test_a_foreign_folder_is_never_overwritten(tmp_path):
    (tmp_path / "nsynth").mkdir()
    (tmp_path / "nsynth" / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not made by `fixtures`"):
        make_fixtures(tmp_path, kind="notes", per_class=1)
    assert (tmp_path / "nsynth" / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "drums"}, "kind"),
        ({"per_class": 0}, "per_class"),
        ({"per_class": -3}, "per_class"),
        ({"per_class": 2.5}, "per_class"),
        ({"seed": -1}, "seed"),
        ({"music_seconds": 0.5}, "music_seconds"),
        ({"music_seconds": "6"}, "music_seconds"),
    ],
)
def test_bad_arguments_raise_value_errors(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        make_fixtures(tmp_path, **arguments)


def test_command_line_prints_the_summary_and_rejects_bad_counts(tmp_path, capsys):
    from data_prep.__main__ import main

    assert main(["fixtures", "--out", str(tmp_path), "--kind", "music", "--per-class", "1"]) == 0
    output = capsys.readouterr().out
    assert "gtzan" in output and "classical 1" in output
    assert main(["fixtures", "--out", str(tmp_path), "--per-class", "0"]) == 2
    assert "per_class" in capsys.readouterr().err


def test_fixtures_do_not_import_tensorflow():
    code = (
        "import sys, data_prep.fixtures, data_prep.fixture_speech, data_prep.fixture_notes,"
        " data_prep.fixture_music; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.stdout.split() == ["False", "False"]
