"""data_prep.prepare: each notebook's data, made once in quick mode and reused."""

import pytest

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


def test_full_mode_has_no_music_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
    assert prepare.music_source(tmp_path) is None
    with pytest.raises(ValueError, match="needs source=<folder with one subfolder per genre>"):
        prepare.music_tfrecords(root=tmp_path)
