"""Make sure a notebook's data exists: fixtures in quick mode, downloads in full mode.

Library functions take a folder; notebooks call these to get one. Every function is
cached in the data folder (``course_lib.config.data_dir()``, on Google Drive when
mounted), so it does the work once and returns at once afterwards.

Used in: every notebook.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from course_lib import config, data


@dataclasses.dataclass(frozen=True)
class SpeechCommandsConfig(config.Presets):
    """Settings of 01_speech_commands_tfrecords.ipynb.

    Full: all 35 words of Speech Commands v0.02 (105,829 clips; about 2.4 GB to download
    and roughly 10 to 15 minutes to convert three rates on a Colab CPU). Quick: the
    spoken-word fixture (20 words).
    """

    # data
    words: str = "all"
    sample_rates: tuple[int, ...] = (16000, 8000, 4000)
    # pipeline
    batch_size: int = 64
    benchmark_batches: int = 200
    # listening and plots
    clips_to_show: int = 8

    @classmethod
    def quick(cls) -> SpeechCommandsConfig:
        return cls(benchmark_batches=12)


def _root(root: str | Path | None) -> Path:
    return Path(root) if root is not None else config.data_dir()


def _fixture(root: Path, kind: str) -> Path:
    """The folder of one fixture dataset under ``root / "fixtures"`` (``kind``: ``"speech"``,
    ``"notes"`` or ``"music"``), generated on first use."""
    from data_prep.fixtures import make_fixtures

    (made,) = make_fixtures(root / "fixtures", kind=kind).datasets
    return made.root


def _fixture_or_download(root: str | Path | None, kind: str, dataset: str) -> Path:
    """The ``kind`` fixture in quick mode; the published ``dataset``, downloaded into
    ``root / "downloads"`` once, in full mode."""
    root = _root(root)
    if config.is_quick():
        return _fixture(root, kind)
    from data_prep.download import download_dataset

    return download_dataset(dataset, root / "downloads")


def _converted(out: Path) -> bool:
    """Whether ``out`` holds a finished conversion (its ``manifest.json`` is written last)."""
    return (out / data.MANIFEST_NAME).is_file()


def speech_commands_source(root: str | Path | None = None) -> Path:
    """The Speech Commands folder: the spoken-word fixture (quick) or the real v0.02 (full)."""
    return _fixture_or_download(root, "speech", "speech-commands")


def speech_commands_tfrecords(
    sample_rate: int = 16000,
    words: str = "all",
    root: str | Path | None = None,
    source: str | Path | None = None,
) -> Path:
    """Converted Speech Commands TFRecords at ``sample_rate``, converting on first use.

    Args:
        sample_rate: 16000, 8000 or 4000.
        words: ``"all"``, ``"sc09"`` (the ten digits) or a comma-separated list.
        root: data folder (default: ``config.data_dir()``).
        source: a Speech Commands folder or archive to convert instead of the default.

    Returns:
        The folder with shards and ``manifest.json`` (read it with ``course_lib.data``).
    """
    from data_prep.speech_commands import convert_speech_commands

    root = _root(root)
    words_tag = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")
    out = root / "tfrecords" / f"speech_commands_{words_tag}_{sample_rate}"
    if not _converted(out):
        source = source if source is not None else speech_commands_source(root)
        print(convert_speech_commands(source, out, sample_rate=sample_rate, words=words))
    return out


def nsynth_source(root: str | Path | None = None) -> Path:
    """The NSynth json/wav folder (``nsynth-valid/``, ``nsynth-test/``): fixture or download."""
    return _fixture_or_download(root, "notes", "nsynth")


def nsynth_tfrecords(
    sample_rate: int = 16000,
    root: str | Path | None = None,
    max_per_family: int | None = None,
    source: str | Path | None = None,
) -> Path:
    """Converted NSynth notes (4 s; label = instrument family), converting on first use.

    Args:
        sample_rate: target rate in Hz.
        root: data folder (default: ``config.data_dir()``).
        max_per_family: keep at most this many notes per family and split.
        source: a folder with ``nsynth-valid/`` and ``nsynth-test/`` instead of the default
            (the notes fixture in quick mode, the download in full mode).
    """
    from data_prep.nsynth import convert_nsynth

    root = _root(root)
    cap = "" if max_per_family is None else f"_max{max_per_family}"
    out = root / "tfrecords" / f"nsynth_{sample_rate}{cap}"
    if not _converted(out):
        source = source if source is not None else nsynth_source(root)
        print(convert_nsynth(source, out, sample_rate=sample_rate, max_per_family=max_per_family))
    return out


def music_source(root: str | Path | None = None) -> Path:
    """The synthesized music fixture, in the GTZAN layout (``genres/<genre>/*.wav``).

    GTZAN cannot be downloaded, so notebooks 04 and 06 use this music in both modes
    unless the student points ``MUSIC_FOLDER`` at their own copy (or any folder of music
    in subfolders): the music sections always have something to play.
    """
    return _fixture(_root(root), "music") / "genres"


def music_tfrecords(
    source: str | Path | None = None,
    sample_rate: int = 16000,
    clip_seconds: float = 1.0,
    root: str | Path | None = None,
) -> Path:
    """A music folder in the GTZAN layout (``genres/<genre>/*.wav``) converted into clips.

    Args:
        source: a ``genres`` folder (your GTZAN copy, or any music in subfolders);
            default: the synthesized music of :func:`music_source`.
        sample_rate: target rate in Hz.
        clip_seconds: clip length; long files are cut into clips.
    """
    from data_prep.folder import convert_folder

    root = _root(root)
    if source is None:
        source = music_source(root)
    source = Path(source)
    tag = re.sub(r"[^A-Za-z0-9]+", "-", source.resolve().as_posix()).strip("-")[-60:]
    out = root / "tfrecords" / f"music_{tag}_{sample_rate}_{clip_seconds:g}s"
    if not _converted(out):
        print(convert_folder(source, out, sample_rate=sample_rate, clip_seconds=clip_seconds))
    return out
