"""data_prep speech-commands and folder: values, splits, bad input (R1), interruption (R2).

Converted audio is compared with an independent decode of the source files
(soundfile + soxr), splits with the list files and TensorFlow's hash rule, and the
counts in the manifest with the files that were planted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from course_lib import data
from data_prep import convert
from data_prep.__main__ import main as data_prep_main
from data_prep.fixtures import make_fixtures
from data_prep.folder import convert_folder
from data_prep.nsynth import convert_nsynth
from data_prep.speech_commands import SC09_WORDS, convert_speech_commands

SPEAKERS = 16


@pytest.fixture(scope="module")
def speech_source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fixtures")
    return make_fixtures(root, kind="speech", per_class=SPEAKERS).speech_commands


@pytest.fixture(scope="module")
def converted_16k(speech_source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sc") / "all_16000"
    convert_speech_commands(speech_source, out, 16000, workers=1, progress=False)
    return out


def _listed(source: Path, name: str) -> set[str]:
    return set((source / name).read_text().split())


def _table(folder: Path, split: str) -> dict[str, np.ndarray]:
    return data.read_table(folder, split)


# ----------------------------------------------------------------------------- speech commands


def test_every_clip_is_stored_once_with_the_split_from_the_lists(speech_source, converted_16k):
    manifest = data.read_manifest(converted_16k)
    wavs = {p.relative_to(speech_source).as_posix() for p in speech_source.glob("[a-z]*/*.wav")}
    seen = {}
    for split in ("train", "validation", "test"):
        sources = list(_table(converted_16k, split)["source"])
        assert len(sources) == len(set(sources)) == manifest.splits[split]["examples"]
        seen[split] = set(sources)
    assert seen["validation"] == _listed(speech_source, "validation_list.txt")
    assert seen["test"] == _listed(speech_source, "testing_list.txt")
    assert seen["train"] | seen["validation"] | seen["test"] == wavs
    assert manifest.skipped == []


def test_no_speaker_is_in_two_splits(converted_16k):
    speakers = {
        s: set(_table(converted_16k, s)["speaker"]) for s in ("train", "validation", "test")
    }
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["validation"] & speakers["test"]
    assert all(len(names) > 0 for names in speakers.values())


def test_labels_names_and_audio_match_the_source_files(speech_source, converted_16k):
    manifest = data.read_manifest(converted_16k)
    assert manifest.labels == sorted(manifest.labels) and len(manifest.labels) == 20
    assert manifest.sample_rate == 16000 and manifest.clip_samples == 16000
    table = _table(converted_16k, "validation")
    for index in range(0, len(table["source"]), 7):
        source = table["source"][index]
        expected, rate = soundfile.read(speech_source / source, dtype="int16")
        assert rate == 16000
        stored = np.round(table["audio"][index] * 32768).astype(np.int16)
        np.testing.assert_array_equal(stored, expected)
        assert table["label_name"][index] == source.split("/")[0]
        assert manifest.labels[table["label"][index]] == table["label_name"][index]
        assert table["speaker"][index] == Path(source).name.split("_nohash_")[0]


@pytest.mark.parametrize("rate", [8000, 4000])
def test_lower_rates_are_band_limited_resamples_of_the_source(speech_source, tmp_path, rate):
    out = tmp_path / f"digits_{rate}"
    report = convert_speech_commands(
        speech_source, out, rate, words="sc09", workers=1, progress=False
    )
    assert report.labels == list(SC09_WORDS)
    table = _table(out, "test")
    assert table["audio"].shape[1] == rate
    source = table["source"][0]
    original, _ = soundfile.read(speech_source / source, dtype="float32")
    reference = soxr.resample(original, 16000, rate, quality="HQ")
    np.testing.assert_allclose(table["audio"][0], reference[:rate], atol=2.0 / 32768)
    spectrum = np.abs(np.fft.rfft(table["audio"][0]))
    assert spectrum.argmax() < rate // 2  # still speech, not an empty clip
    assert np.abs(table["audio"][0]).max() > 0.01


def test_word_list_picks_and_orders_labels(speech_source, tmp_path):
    report = convert_speech_commands(
        speech_source, tmp_path / "two", 16000, words="yes,no", workers=1, progress=False
    )
    assert report.labels == ["yes", "no"]
    assert sum(report.examples.values()) == 2 * SPEAKERS
    table = _table(tmp_path / "two", "train")
    assert set(table["label_name"]) == {"yes", "no"}
    assert all(
        report.labels[i] == n for i, n in zip(table["label"], table["label_name"], strict=True)
    )


def test_background_noise_is_resampled_beside_the_shards(converted_16k, tmp_path, speech_source):
    bank = data.load_noise_bank(converted_16k)
    assert bank.shape[1] == 16000 and bank.shape[0] >= 4
    assert np.all(np.std(bank, axis=1) > 1e-3)


def test_an_archive_converts_like_its_folder(speech_source, converted_16k, tmp_path):
    archive = tmp_path / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(speech_source.iterdir()):
            if not path.name.startswith("."):
                tar.add(path, arcname=path.name)
    out = tmp_path / "from_archive"
    convert_speech_commands(archive, out, 16000, workers=1, progress=False)
    for split in ("train", "validation", "test"):
        a, b = _table(out, split), _table(converted_16k, split)
        order_a, order_b = np.argsort(a["source"]), np.argsort(b["source"])
        np.testing.assert_array_equal(a["source"][order_a], b["source"][order_b])
        np.testing.assert_array_equal(a["audio"][order_a], b["audio"][order_b])


def test_parallel_workers_write_the_same_shards_as_one_process(speech_source, tmp_path):
    one = convert_speech_commands(
        speech_source, tmp_path / "one", 16000, words="sc09", workers=1, progress=False
    )
    two = convert_speech_commands(
        speech_source, tmp_path / "two", 16000, words="sc09", workers=2, progress=False
    )
    assert one.examples == two.examples
    for shard in sorted((tmp_path / "one").glob("*.tfrecord")):
        assert shard.read_bytes() == (tmp_path / "two" / shard.name).read_bytes()


def test_a_folder_without_list_files_is_split_by_the_tensorflow_hash_rule(speech_source, tmp_path):
    bare = tmp_path / "mini"
    for word in ("yes", "no"):
        shutil.copytree(speech_source / word, bare / word)
    out = tmp_path / "mini_out"
    convert_speech_commands(bare, out, 16000, workers=1, progress=False)
    for split in ("train", "validation", "test"):
        for source in _table(out, split)["source"]:
            base = Path(source).name.split("_nohash_")[0]
            value = int(hashlib.sha1(base.encode()).hexdigest(), 16) % (2**27)
            percent = value * 100.0 / (2**27 - 1)
            expected = "validation" if percent < 10 else "test" if percent < 20 else "train"
            assert split == expected, source


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("yes,banana", "error: unknown words banana: the source has "),
        ("sc09,", "unknown words sc09"),
    ],
)
def test_unknown_words_exit_non_zero_with_one_line(speech_source, tmp_path, capsys, words, message):
    argv = [
        "speech-commands",
        "--source",
        str(speech_source),
        "--out",
        str(tmp_path / "o"),
        "--words",
        words,
    ]
    assert data_prep_main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0]


def test_an_unsupported_rate_exits_non_zero(speech_source, tmp_path, capsys):
    argv = [
        "speech-commands",
        "--source",
        str(speech_source),
        "--out",
        str(tmp_path / "o"),
        "--sample-rate",
        "22050",
    ]
    with pytest.raises(SystemExit) as stopped:
        data_prep_main(argv)
    assert stopped.value.code == 2
    assert "invalid choice: 22050" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unsupported --sample-rate 22050"):
        convert_speech_commands(speech_source, tmp_path / "o", 22050)


def test_a_missing_source_exits_with_one_clear_line(tmp_path, capsys):
    code = data_prep_main(["folder", "--source", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"error: source folder {tmp_path / 'nope'} does not exist."]


def test_a_folder_without_audio_exits_with_one_clear_line(tmp_path, capsys):
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "notes.txt").write_text("hello")
    code = data_prep_main(
        ["folder", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: no audio files (wav, flac, ogg) in {tmp_path / 'src'}."
    )


def test_the_command_prints_a_summary(speech_source, tmp_path, capsys):
    code = data_prep_main(
        [
            "speech-commands",
            "--source",
            str(speech_source),
            "--out",
            str(tmp_path / "o"),
            "--words",
            "up,down",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"converted {2 * SPEAKERS} of {2 * SPEAKERS} files" in printed
    assert "skipped          0 files" in printed


# ----------------------------------------------------------------------------- R1: a messy folder


def _tone(seconds: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _messy_folder(root: Path) -> tuple[int, dict[str, str]]:
    """Plant usable and bad files; return (usable count, bad file -> reason fragment)."""
    usable = [
        ("speech/pcm8.wav", _tone(0.8, 8000), 8000, "PCM_U8"),
        ("speech/pcm16.wav", _tone(1.0, 16000), 16000, "PCM_16"),
        ("speech/pcm24.wav", _tone(1.0, 44100), 44100, "PCM_24"),
        ("speech/float.wav", _tone(0.5, 22050), 22050, "FLOAT"),
        ("speech/LOUD.WAV", _tone(1.0, 48000), 48000, "PCM_16"),
        ("speech/deep/nested/clip.flac", _tone(1.0, 32000), 32000, "PCM_16"),
        (
            "music/stereo.wav",
            np.stack([_tone(2.5, 16000), _tone(2.5, 16000, 220)], 1),
            16000,
            "PCM_16",
        ),
        ("music/silent.wav", np.zeros(16000, np.float32), 16000, "PCM_16"),
        ("music/tiny.wav", _tone(0.01, 16000), 16000, "PCM_16"),
        ("music/long.ogg", _tone(12.3, 16000), 16000, "VORBIS"),
    ]
    for relative, samples, rate, subtype in usable:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, samples, rate, subtype=subtype)
    bad = {
        "speech/empty.wav": "not decodable",
        "speech/random.wav": "not decodable",
        "music/truncated.wav": "not decodable",
        "music/nan.wav": "NaN or infinite",
        "music/readme.txt": "not an audio file (.txt)",
        "loose.wav": "not in a label subfolder",
    }
    (root / "speech/empty.wav").write_bytes(b"")
    (root / "speech/random.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    header_only = root / "music/pcm16_copy.wav"
    soundfile.write(header_only, _tone(1.0, 16000), 16000, subtype="PCM_16")
    (root / "music/truncated.wav").write_bytes(header_only.read_bytes()[:40])
    header_only.unlink()
    nan = _tone(1.0, 16000)
    nan[100:200] = np.nan
    soundfile.write(root / "music/nan.wav", nan, 16000, subtype="FLOAT")
    (root / "music/readme.txt").write_text("not audio")
    soundfile.write(root / "loose.wav", _tone(1.0, 16000), 16000)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "ignored.wav").write_bytes(b"junk")
    return len(usable), bad


def test_r1_every_usable_file_is_converted_and_every_bad_one_listed(tmp_path, capsys):
    usable, bad = _messy_folder(tmp_path / "messy")
    code = data_prep_main(
        [
            "folder",
            "--source",
            str(tmp_path / "messy"),
            "--out",
            str(tmp_path / "out"),
            "--sample-rate",
            "16000",
            "--clip-seconds",
            "1",
        ]
    )
    assert code == 0
    manifest = data.read_manifest(tmp_path / "out")
    reasons = {item["source"]: item["reason"] for item in manifest.skipped}
    assert set(reasons) == set(bad)
    for name, fragment in bad.items():
        assert fragment in reasons[name], (name, reasons[name])
    sources = set()
    for split in manifest.splits:
        table = _table(tmp_path / "out", split)
        sources |= set(table["source"])
        assert np.isfinite(table["audio"]).all()
    assert len(sources) == usable
    assert manifest.labels == ["music", "speech"]
    # long.ogg: 12.3 s -> 12 clips (0.3 s tail dropped); stereo 2.5 s -> 3 clips (0.5 s tail kept)
    clips = sum(info["examples"] for info in manifest.splits.values())
    assert clips == 8 * 1 + 3 + 12  # 8 files of at most one clip
    assert f"converted {usable} of {usable + len(bad)} files" in capsys.readouterr().out


def test_stereo_is_averaged_and_resampled(tmp_path):
    source = tmp_path / "src" / "a"
    source.mkdir(parents=True)
    left, right = _tone(1.0, 44100, 300), _tone(1.0, 44100, 500)
    soundfile.write(source / "x.wav", np.stack([left, right], 1), 44100, subtype="FLOAT")
    convert_folder(tmp_path / "src", tmp_path / "out", sample_rate=16000, workers=1, progress=False)
    split = next(iter(data.read_manifest(tmp_path / "out").splits))
    stored = _table(tmp_path / "out", split)["audio"][0]
    expected = soxr.resample((left + right) / 2, 44100, 16000, quality="HQ")
    np.testing.assert_allclose(stored, expected[:16000], atol=2.0 / 32768)


# ----------------------------------------------------------------------------- R2: interruption


def test_r2_an_interrupted_conversion_leaves_no_partial_shard_and_a_rerun_completes(
    speech_source, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    real_write_shard = data.write_shard
    calls = {"n": 0}

    def write_then_crash(path, examples):
        calls["n"] += 1
        if calls["n"] == 3:

            def crash_midway():
                for i, example in enumerate(examples):
                    if i == 5:
                        raise KeyboardInterrupt("disconnect")
                    yield example

            return real_write_shard(path, crash_midway())
        return real_write_shard(path, examples)

    monkeypatch.setattr(data, "write_shard", write_then_crash)
    monkeypatch.setattr(convert, "DEFAULT_FILES_PER_SHARD", 40)
    with pytest.raises(KeyboardInterrupt):
        convert_speech_commands(speech_source, out, 16000, words="sc09", workers=1, progress=False)
    complete = sorted(p.name for p in out.glob("*.tfrecord"))
    assert len(complete) == 2 and not (out / data.MANIFEST_NAME).exists()
    for name in complete:  # every shard on disk is whole
        assert (
            sum(1 for _ in _records(out / name))
            == json.loads((out / convert.PROGRESS_FOLDER / f"{name}.json").read_text())["examples"]
        )

    monkeypatch.setattr(data, "write_shard", real_write_shard)
    report = convert_speech_commands(
        speech_source, out, 16000, words="sc09", workers=1, progress=False
    )
    assert report.reused_shards == 2
    assert not list(out.glob("*.tmp"))
    sources = []
    for split in ("train", "validation", "test"):
        sources += list(_table(out, split)["source"])
    assert len(sources) == len(set(sources)) == 10 * SPEAKERS


def test_a_rerun_with_another_rate_starts_over(speech_source, tmp_path):
    out = tmp_path / "out"
    convert_speech_commands(speech_source, out, 16000, words="yes", workers=1, progress=False)
    report = convert_speech_commands(
        speech_source, out, 8000, words="yes", workers=1, progress=False
    )
    assert report.reused_shards == 0
    assert data.read_manifest(out).clip_samples == 8000
    assert _table(out, "train")["audio"].shape[1] == 8000


def _records(path: Path):
    import tensorflow as tf

    return tf.data.TFRecordDataset(str(path)).as_numpy_iterator()


@pytest.mark.parametrize(
    ("argv", "function"),
    [
        (["fixtures", "--out", "x"], make_fixtures),
        (["speech-commands", "--source", "s", "--out", "x"], convert_speech_commands),
        (["nsynth", "--source", "s", "--out", "x"], convert_nsynth),
        (["folder", "--source", "s", "--out", "x"], convert_folder),
    ],
)
def test_each_commands_options_are_its_functions_arguments(argv, function):
    import inspect

    from course_lib.command_line import keyword_arguments
    from data_prep.__main__ import build_parser

    options = keyword_arguments(build_parser().parse_args(argv))
    inspect.signature(function).bind(**options)  # a TypeError if a name differs
