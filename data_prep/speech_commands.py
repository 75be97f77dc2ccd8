"""``python -m data_prep speech-commands``: Speech Commands to the kit's TFRecords.

Reads the v0.02 archive (``speech_commands_v0.02.tar.gz``, extracted once on the local
disk, into ``config.scratch_dir()``, never beside an output that may be on Google
Drive) or an extracted folder: one folder per word with ``<speaker>_nohash_<n>.wav``
files, ``validation_list.txt`` and ``testing_list.txt`` (a folder without them, such
as TensorFlow's ``mini_speech_commands``, is split by the dataset's own hash rule), and
``_background_noise_/``, which is resampled into the output's ``background_noise/``.

Used in: 01_speech_commands_tfrecords.ipynb (through :mod:`data_prep.prepare`).
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from course_lib import audio, config, data
from data_prep.convert import (
    ConversionReport,
    Skipped,
    SourceFile,
    convert_files,
    hash_split,
    list_files,
    not_audio_reason,
)

SAMPLE_RATES = (16000, 8000, 4000)
SC09_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NOISE_SOURCE_FOLDER = "_background_noise_"
LIST_FILES = {"validation": "validation_list.txt", "test": "testing_list.txt"}
EXTRACTED_MARKER = ".extracted"


def word_folders(root: Path) -> list[str]:
    """The word folders of a Speech Commands folder, sorted (``_background_noise_`` is not one)."""
    return sorted(
        child.name
        for child in root.iterdir()
        if child.is_dir() and not child.name.startswith(("_", "."))
    )


def select_words(words: str, available: list[str]) -> list[str]:
    """Resolve ``--words``: ``all``, ``sc09`` or a comma-separated list, in label order.

    Raises:
        ValueError: a requested word has no folder in the source.
    """
    spec = words.strip().lower()
    if spec == "all":
        chosen = list(available)
    elif spec == "sc09":
        chosen = list(SC09_WORDS)
    else:
        chosen = [word.strip() for word in spec.split(",") if word.strip()]
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"--words lists a word twice: {words!r}.")
    if not chosen:
        raise ValueError("--words is empty: use all, sc09 or a comma-separated list.")
    unknown = [word for word in chosen if word not in available]
    if unknown:
        raise ValueError(
            f"unknown words {', '.join(unknown)}: the source has "
            f"{', '.join(available) or 'no word folders'}."
        )
    return chosen


def speaker_of(file_name: str) -> str:
    """The speaker id of ``<speaker>_nohash_<n>.wav`` (the whole stem for other names)."""
    return file_name.rsplit(".", 1)[0].split("_nohash_")[0]


def read_split_lists(root: Path) -> dict[str, str] | None:
    """``word/file.wav`` -> ``"validation"`` or ``"test"`` from the list files.

    Returns:
        The mapping, or None when the folder has no list files (use :func:`hash_split`).
    """
    if not any((root / name).is_file() for name in LIST_FILES.values()):
        return None
    splits = {}
    for split, name in LIST_FILES.items():
        path = root / name
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    splits[line.strip()] = split
    return splits


def extract_archive(archive: Path, destination: Path) -> Path:
    """Extract a Speech Commands ``.tar.gz`` once into ``destination`` and return it.

    The marker file written last names the archive (path, size and time), so the same
    archive is extracted once, and another archive replaces the folder's files instead
    of being mistaken for it.
    """
    marker = destination / EXTRACTED_MARKER
    stat = archive.stat()
    identity = f"{archive.resolve()} {stat.st_size} {stat.st_mtime_ns}"
    if marker.is_file():
        if marker.read_text() == identity:
            return destination
        shutil.rmtree(destination)  # made here for another archive (the marker says so)
    if not tarfile.is_tarfile(archive):
        raise ValueError(f"{archive} is not a tar archive; pass the .tar.gz or its folder.")
    destination.mkdir(parents=True, exist_ok=True)
    print(f"extracting {archive.name} into {destination} (once)")
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    marker.write_text(identity)
    return destination


def convert_speech_commands(
    source: str | Path,
    out: str | Path,
    sample_rate: int = 16000,
    words: str = "all",
    workers: int | None = None,
    progress: bool = True,
    extract_to: str | Path | None = None,
) -> ConversionReport:
    """Convert Speech Commands into sharded TFRecords of 1 s clips at ``sample_rate``.

    Args:
        source: the extracted folder or the ``.tar.gz`` archive.
        out: output folder (shards, ``manifest.json``, ``background_noise/``).
        sample_rate: 16000, 8000 or 4000 Hz.
        words: ``"all"`` (every word folder: 35 in v0.02), ``"sc09"`` (the ten digits,
            labels in the order zero..nine) or a comma-separated list.
        workers: decoding processes (default: one, or one per CPU when files
            need resampling; see :func:`data_prep.convert.default_workers`).
        progress: show a progress bar.
        extract_to: where an archive ``source`` is extracted (once); default
            ``config.scratch_dir() / "downloads" / "<archive name>_extracted"``, on the
            local disk, so that ``out`` (often on Google Drive) gets only the shards.

    Returns:
        The :class:`~data_prep.convert.ConversionReport` (also in ``manifest.json``).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: unsupported rate, unknown words, or no audio in the source.
    """
    source, out = Path(source), Path(out)
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(
            f"unsupported --sample-rate {sample_rate}: use one of "
            f"{', '.join(map(str, SAMPLE_RATES))}."
        )
    if not source.exists():
        raise FileNotFoundError(f"Speech Commands source {source} does not exist.")
    if source.is_file():
        if extract_to is None:
            extract_to = (
                config.scratch_dir() / "downloads" / f"{source.name.split('.')[0]}_extracted"
            )
        source = extract_archive(source, Path(extract_to))
    available = word_folders(source)
    if not available:
        raise ValueError(f"{source} has no word folders: is it a Speech Commands folder?")
    labels = select_words(words, available)
    listed = read_split_lists(source)

    files, skipped = [], []
    for label, word in enumerate(labels):
        audio_files, other_files = list_files(source / word)
        skipped.extend(Skipped(f"{word}/{name}", not_audio_reason(name)) for name in other_files)
        for name in audio_files:
            relative = f"{word}/{name}"
            file_name = name.rsplit("/", 1)[-1]
            split = listed.get(relative, "train") if listed is not None else hash_split(file_name)
            files.append(
                SourceFile(source / relative, relative, label, split, speaker_of(file_name))
            )
    if not files:
        raise ValueError(f"no audio files in the word folders of {source}.")

    report = convert_files(
        files,
        out,
        labels,
        sample_rate,
        clip_samples=sample_rate,
        source_description=f"speech-commands:{source} words={words}",
        skipped=skipped,
        workers=workers,
        progress=progress,
    )
    write_background_noise(source / NOISE_SOURCE_FOLDER, out, sample_rate)
    return report


def write_background_noise(noise_folder: Path, out: Path, sample_rate: int) -> int:
    """Resample the background-noise recordings into ``out/background_noise/``.

    Returns:
        The number of files written (0 when the source has no noise folder).
    """
    if not noise_folder.is_dir():
        return 0
    written = 0
    for path in sorted(noise_folder.iterdir()):
        if not audio.is_audio_file(path):
            continue
        try:
            samples, _ = audio.load_audio(path, sample_rate)
        except audio.AudioDecodeError as error:
            print(f"background noise {path.name} skipped: {error}")
            continue
        audio.write_wav(out / data.NOISE_FOLDER / f"{path.stem}.wav", samples, sample_rate)
        written += 1
    return written
