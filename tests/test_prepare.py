"""data_prep.prepare: each notebook's data, made once in quick mode and reused; the Drive
footprint of benchmarks/drive_footprint.py against real conversions."""

import importlib.util
import sys
from pathlib import Path

import pytest

from course_lib import data
from data_prep import prepare
from data_prep.fixture_music import GENRES
from data_prep.fixtures import DEFAULT_PER_CLASS

ROOT = Path(__file__).resolve().parents[1]


def load_footprint_module():
    """benchmarks/drive_footprint.py (``benchmarks`` is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "drive_footprint", ROOT / "benchmarks" / "drive_footprint.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_course(tmp_path_factory):
    """Notebook 01's conversions in quick mode, plus the NSynth notes and the music, in one
    data folder."""
    root = tmp_path_factory.mktemp("quick_course")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_MODE", "quick")
        folders = prepare.speech_commands_for_course(root=root)
        notes = prepare.nsynth_tfrecords(16000, root=root, max_per_family=3)
        music = prepare.music_tfrecords(sample_rate=16000, root=root)
    return root, folders, notes, music


def test_quick_mode_uses_the_fixtures_and_converts_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    source = prepare.speech_commands_source(tmp_path)
    assert (source / "testing_list.txt").is_file() and (source / "zero").is_dir()
    folder = prepare.speech_commands_tfrecords(8000, "sc09", root=tmp_path)
    manifest = data.read_manifest(folder)
    assert manifest.sample_rate == 8000 and len(manifest.labels) == 10
    stamp = (folder / data.MANIFEST_NAME).stat().st_mtime_ns
    assert prepare.speech_commands_tfrecords(8000, "sc09", root=tmp_path) == folder
    assert (folder / data.MANIFEST_NAME).stat().st_mtime_ns == stamp  # not converted again
    genres = prepare.music_source(tmp_path)
    assert len([p for p in genres.iterdir() if p.is_dir()]) >= 3


def test_the_rehearsal_reads_tiny_fixtures_at_the_full_rates(tmp_path, monkeypatch):
    """The rehearsal runs the full presets on a few clips: the full presets' rates, and
    fixtures of :data:`prepare.REHEARSAL_FIXTURE_SIZES` (one speaker per split and word)."""
    monkeypatch.setenv("COURSE_MODE", "rehearsal")
    assert prepare.course_sample_rates() == prepare.course_sample_rates("full") == (16000,)
    source = prepare.speech_commands_source(tmp_path)
    speakers = prepare.REHEARSAL_FIXTURE_SIZES["speech"]
    assert sorted(len(list((source / word).glob("*.wav"))) for word in ("zero", "nine")) == [
        speakers,
        speakers,
    ]
    manifest = data.read_manifest(prepare.speech_commands_tfrecords(16000, root=tmp_path))
    assert manifest.sample_rate == 16000
    assert {split: info["examples"] for split, info in manifest.splits.items()} == {
        "train": 10,
        "validation": 10,
        "test": 10,
    }
    # The music keeps its files (every split holds some) and is REHEARSAL_MUSIC_SECONDS long.
    music = data.read_manifest(prepare.music_tfrecords(sample_rate=16000, root=tmp_path))
    files = len(GENRES) * DEFAULT_PER_CLASS["music"]
    assert sum(info["examples"] for info in music.splits.values()) == (
        files * prepare.REHEARSAL_MUSIC_SECONDS
    )
    assert all(info["examples"] > 0 for info in music.splits.values())


def test_full_mode_plays_the_synthesized_music_too(tmp_path, monkeypatch):
    """GTZAN cannot be downloaded: without a folder of their own, students hear the
    synthesized music in full mode as well, offline."""
    monkeypatch.setenv("COURSE_MODE", "full")
    genres = prepare.music_source(tmp_path)
    assert genres.is_relative_to(tmp_path) and len([p for p in genres.iterdir() if p.is_dir()]) >= 3
    folder = prepare.music_tfrecords(sample_rate=4000, root=tmp_path)
    manifest = data.read_manifest(folder)
    assert manifest.sample_rate == 4000 and len(manifest.labels) == len(list(genres.iterdir()))


def test_nsynth_notes_convert_once_and_on_the_command_line(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("COURSE_MODE", "quick")
    folder = prepare.nsynth_tfrecords(16000, root=tmp_path, max_per_family=2)
    manifest = data.read_manifest(folder)
    assert manifest.clip_samples == 4 * 16000 and len(manifest.labels) >= 2
    assert prepare.nsynth_tfrecords(16000, root=tmp_path, max_per_family=2) == folder
    out = tmp_path / "cli"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_prep",
            "nsynth",
            "--source",
            str(prepare.nsynth_source(tmp_path)),
            "--out",
            str(out),
            "--sample-rate",
            "8000",
            "--max-per-family",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert data.read_manifest(out).sample_rate == 8000
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_prep",
            "nsynth",
            "--source",
            str(tmp_path / "none"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error:")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_notebook_01_converts_sc09_at_the_rates_the_course_reads(quick_course):
    """Quick mode: the later notebooks read SC09 at 16, 8 and 4 kHz (judge; VAE and VQ;
    diffusion and WaveNet), so notebook 01 converts exactly those, which also serve its
    own comparison; the fixtures stay in the scratch folder."""
    root, folders, _, _ = quick_course
    assert prepare.course_sample_rates("quick") == (16000, 8000, 4000)
    assert folders == {
        rate: root / "tfrecords" / f"speech_commands_sc09_{rate}" for rate in (16000, 8000, 4000)
    }
    speech = {p.name for p in (root / "tfrecords").iterdir() if p.name.startswith("speech")}
    assert speech == {folder.name for folder in folders.values()}
    for rate, folder in folders.items():
        manifest = data.read_manifest(folder)
        assert manifest.sample_rate == rate and len(manifest.labels) == 10
    assert (root / "scratch" / "fixtures").is_dir() and not (root / "fixtures").exists()


def test_all_words_add_the_35_word_set_at_16_khz_only(quick_course, monkeypatch):
    """``WORDS = "all"`` converts the whole set at 16 kHz; the comparison at 8 and 4 kHz
    reads SC09's folders, which hold "six"; nothing else is converted again."""
    root, sc09, _, _ = quick_course
    monkeypatch.setenv("COURSE_MODE", "quick")
    cfg = prepare.SpeechCommandsConfig.for_mode().replace(words="all")
    folders = prepare.speech_commands_for_course(cfg, root=root)
    assert folders == {**sc09, 16000: root / "tfrecords" / "speech_commands_all_16000"}
    assert len(data.read_manifest(folders[16000]).labels) == 20
    assert prepare.comparison_word("yes,no") == "yes"
    assert prepare.comparison_word("no, six") == "six"
    with pytest.raises(ValueError, match="words is empty"):
        prepare.comparison_word(" , ")


def test_footprint_bytes_per_clip_times_clips_is_the_shard_size(quick_course):
    """The footprint's model of a shard (the kit's record, serialized, plus TFRecord
    framing) agrees with real conversions at every rate and clip length."""
    footprint = load_footprint_module()
    _, folders, notes, music = quick_course
    kinds = [(folder, footprint.SPEECH_METADATA) for folder in folders.values()]
    kinds += [(notes, footprint.NSYNTH_METADATA), (music, footprint.MUSIC_METADATA)]
    for folder, metadata in kinds:
        manifest = data.read_manifest(folder)
        conversion = footprint.Conversion(
            folder.name,
            "",
            sum(split["examples"] for split in manifest.splits.values()),
            manifest.clip_samples,
            manifest.sample_rate,
            metadata,
        )
        shards = sum(path.stat().st_size for path in folder.glob("*.tfrecord"))
        assert conversion.shard_bytes == pytest.approx(shards, rel=0.003), folder.name


def test_the_full_mode_footprint_fits_the_drive_budget():
    """Full mode: SC09 at 16 kHz (the only rate notebooks 02 to 07 read), "six" at 8 and
    4 kHz, NSynth as notebook 05 converts it, the music; within 5 GB with room for the
    checkpoints (about 0.3 GB). The 35-word set is the flag that goes over."""
    footprint = load_footprint_module()
    rows = footprint.course_conversions("sc09")
    assert [row.name for row in rows] == [
        "SC09 at 16 kHz",
        '"six" at 8 kHz',
        '"six" at 4 kHz',
        "NSynth at 16 kHz",
        "music (synthesized) at 16 kHz",
    ]
    assert rows[0].clips == 38_908 and rows[0].bytes_per_clip == pytest.approx(32_000, rel=0.01)
    assert footprint.total_bytes(rows, []) < 4.0e9
    with_all = footprint.course_conversions("all")
    assert footprint.total_bytes(with_all, []) - footprint.total_bytes(rows, []) > 3e9
    table = footprint.footprint_table(rows, [footprint.Checkpoint("judge", "02", 1_000_000, 2)])
    assert "| judge | 02 | 1,000,000 | 2 | 0.024 |" in table and "**total**" in table
    with pytest.raises(ValueError, match="'sc09' or 'all'"):
        footprint.course_conversions("digits")


def test_a_checkpoint_is_three_times_the_weights(tmp_path):
    """Keras' backup of a network trained with Adam holds the weights and both moments:
    count_params() x 4 bytes x 3, as the footprint counts it."""
    import keras
    import numpy as np

    from course_lib import training

    footprint = load_footprint_module()
    model = keras.Sequential([keras.Input((300,)), keras.layers.Dense(300), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.fit(
        np.zeros((8, 300), np.float32),
        np.zeros((8, 4), np.float32),
        epochs=1,
        verbose=0,
        callbacks=[training.resume_callback(tmp_path)],
    )
    saved = sum(path.stat().st_size for path in (tmp_path / "backup").rglob("*") if path.is_file())
    assert saved == pytest.approx(footprint.checkpoint_bytes(model.count_params()), rel=0.02)
