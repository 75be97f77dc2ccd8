"""data_prep.nsynth on the notes fixture: split counts against examples.json, family
labels, instruments held out for validation, skipped files with reasons, the cap."""

import json
import shutil

import numpy as np
import pytest

from course_lib import data
from data_prep.fixtures import make_fixtures
from data_prep.nsynth import convert_nsynth, held_out_instruments


@pytest.fixture(scope="module")
def nsynth_copy(tmp_path_factory):
    """The notes fixture (2 instruments per family and split) with one corrupt wav, one
    wav that examples.json does not list, and one listed note whose wav is missing."""
    made = make_fixtures(tmp_path_factory.mktemp("fixtures"), kind="notes", per_class=9).nsynth
    root = tmp_path_factory.mktemp("nsynth")
    shutil.copytree(made / "nsynth-valid", root / "nsynth-valid")
    shutil.copytree(made / "nsynth-test", root / "nsynth-test")
    valid = json.loads((root / "nsynth-valid" / "examples.json").read_text())
    test = json.loads((root / "nsynth-test" / "examples.json").read_text())
    corrupt, missing = sorted(valid)[0], sorted(test)[0]
    (root / "nsynth-valid" / "audio" / f"{corrupt}.wav").write_bytes(b"RIFF\x00garbage")
    (root / "nsynth-test" / "audio" / f"{missing}.wav").unlink()
    shutil.copy(
        root / "nsynth-valid" / "audio" / f"{sorted(valid)[1]}.wav",
        root / "nsynth-valid" / "audio" / "stray_note.wav",
    )
    return {"root": root, "valid": valid, "test": test, "corrupt": corrupt, "missing": missing}


def test_counts_labels_and_skipped_files_match_examples_json(nsynth_copy, tmp_path):
    root, valid, test = nsynth_copy["root"], nsynth_copy["valid"], nsynth_copy["test"]
    report = convert_nsynth(root, tmp_path / "out", progress=False)
    assert report.labels == ["brass", "flute", "keyboard", "mallet", "organ"]  # NSynth order
    assert report.examples["train"] + report.examples["validation"] == len(valid) - 1
    assert report.examples["test"] == len(test) - 1
    assert report.examples["validation"] > 0
    reasons = {item.source: item.reason for item in report.skipped}
    corrupt = f"nsynth-valid/audio/{nsynth_copy['corrupt']}.wav"
    assert "not decodable" in reasons[corrupt] or "truncated" in reasons[corrupt]
    assert reasons[f"nsynth-test/audio/{nsynth_copy['missing']}.wav"] == (
        "listed in examples.json but the wav is missing"
    )
    assert reasons["nsynth-valid/audio/stray_note.wav"] == "not listed in examples.json"
    assert report.files_found == len(valid) + len(test) + 1  # the counts add up

    manifest = data.read_manifest(tmp_path / "out")
    assert manifest.clip_samples == 64000 and manifest.sample_rate == 16000
    entries = {**valid, **test}
    instruments = {}
    for split in ("train", "validation", "test"):
        table = data.read_table(tmp_path / "out", split)
        assert len(table["label"]) == report.examples[split]
        for name, label, speaker, source in zip(
            table["label_name"], table["label"], table["speaker"], table["source"], strict=True
        ):
            entry = entries[source.rsplit("/", 1)[-1].removesuffix(".wav")]
            assert name == entry["instrument_family_str"] == report.labels[label]
            assert speaker == entry["instrument_str"]
        instruments[split] = set(table["speaker"])
        assert np.abs(table["audio"]).max() > 0.1
    assert not instruments["train"] & instruments["validation"]  # held out by instrument
    assert not instruments["train"] & instruments["test"]


def test_max_per_family_caps_every_split(nsynth_copy, tmp_path):
    report = convert_nsynth(nsynth_copy["root"], tmp_path / "out", max_per_family=3, progress=False)
    for split in report.examples:
        table = data.read_table(tmp_path / "out", split)
        _, counts = np.unique(table["label_name"], return_counts=True)
        assert counts.max() <= 3
    assert report.examples["test"] == 5 * 3
    assert "max_per_family=3" in data.read_manifest(tmp_path / "out").source


def test_held_out_instruments_never_empty_a_family():
    families = {"brass": {"b1", "b2", "b3"}, "flute": {"f1"}, "organ": {f"o{i}" for i in range(20)}}
    held = held_out_instruments(families, 0.1)
    assert len(held & families["brass"]) == 1 and not held & families["flute"]
    assert len(held & families["organ"]) == 2
    assert held == held_out_instruments(families, 0.1)  # deterministic


def test_bad_sources_and_settings_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_nsynth(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds neither nsynth-valid/examples\.json"):
        convert_nsynth(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ValueError, match="--max-per-family must be at least 1"):
        convert_nsynth(tmp_path / "empty", tmp_path / "out", max_per_family=0)
    broken = tmp_path / "broken" / "nsynth-valid"
    broken.mkdir(parents=True)
    (broken / "examples.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        convert_nsynth(tmp_path / "broken", tmp_path / "out")
