"""data_prep.prepare: each notebook's data, made once in quick mode and reused."""

from course_lib import data
from data_prep import prepare


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
