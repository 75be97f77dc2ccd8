"""``python -m data_prep folder``: any folder of audio files to the kit's TFRecords.

Labels come from the first-level subfolders (files may sit deeper inside them); a
folder without subfolders is one class named after the folder. WAV, FLAC and OGG at
any rate, bit depth or channel count are decoded to mono at ``--sample-rate``; files
longer than ``--clip-seconds`` are cut into consecutive clips, shorter ones are
zero-padded. Splits follow the Speech Commands hash of each file name (10% validation,
10% test), so every clip of one file stays in one split.

Bad files (corrupt, empty, truncated, random bytes, NaN or infinite samples, files that
are not audio, audio files directly in a root that has label subfolders) are skipped
and listed with their reason; the counts of converted and skipped files add up to the
files found.

Used in: 04_vae_fid.ipynb (the music option) and your own data.
"""

from __future__ import annotations

from pathlib import Path

from data_prep.convert import (
    ConversionReport,
    Skipped,
    SourceFile,
    convert_files,
    hash_split,
    list_files,
    not_audio_reason,
)

MAX_CLIP_SECONDS = 60.0


def convert_folder(
    source: str | Path,
    out: str | Path,
    sample_rate: int = 16000,
    clip_seconds: float = 1.0,
    workers: int | None = None,
    progress: bool = True,
) -> ConversionReport:
    """Convert a folder of audio files, labelled by subfolder, into sharded TFRecords.

    Args:
        source: the folder; ``source/<label>/**/<file>`` gives the label of each file.
        out: output folder.
        sample_rate: target rate in Hz (1000 to 192000).
        clip_seconds: clip length; long files are cut into several clips.
        workers: decoding processes (default: one, or one per CPU when files
            need resampling; see :func:`data_prep.convert.default_workers`).
        progress: show a progress bar.

    Returns:
        The :class:`~data_prep.convert.ConversionReport` (also in ``manifest.json``).

    Raises:
        FileNotFoundError, NotADirectoryError: ``source`` is missing or not a folder.
        ValueError: a bad rate or clip length, or no audio files at all.
    """
    source, out = Path(source), Path(out)
    if not 1000 <= sample_rate <= 192000:
        raise ValueError(f"--sample-rate {sample_rate} is outside 1000..192000 Hz.")
    if not 0 < clip_seconds <= MAX_CLIP_SECONDS:
        raise ValueError(f"--clip-seconds {clip_seconds} must be in (0, {MAX_CLIP_SECONDS:g}].")
    if not source.exists():
        raise FileNotFoundError(f"source folder {source} does not exist.")
    if not source.is_dir():
        raise NotADirectoryError(f"source {source} is not a folder.")
    if out.resolve().is_relative_to(source.resolve()):
        raise ValueError(f"--out {out} must not be inside --source {source}.")

    audio_files, other_files = list_files(source)
    skipped = [Skipped(name, not_audio_reason(name)) for name in other_files]
    labelled = [name for name in audio_files if "/" in name]
    if labelled:
        labels = sorted({name.split("/", 1)[0] for name in labelled})
        skipped += [
            Skipped(name, "not in a label subfolder") for name in audio_files if "/" not in name
        ]
    else:
        labels = [source.resolve().name]
    index = {label: i for i, label in enumerate(labels)}
    files = [
        SourceFile(
            source / name,
            name,
            index[name.split("/", 1)[0]] if labelled else 0,
            hash_split(name.rsplit("/", 1)[-1]),
        )
        for name in labelled or audio_files
    ]
    if not files:
        raise ValueError(f"no audio files (wav, flac, ogg) in {source}.")
    return convert_files(
        files,
        out,
        labels,
        sample_rate,
        clip_samples=round(clip_seconds * sample_rate),
        source_description=f"folder:{source}",
        skipped=skipped,
        cut_long_files=True,
        workers=workers,
        progress=progress,
    )
