"""The conversion engine shared by ``data_prep speech-commands`` and ``data_prep folder``.

A converter lists its source files as :class:`SourceFile` items (path, label, speaker,
split) and hands them to :func:`convert_files`, which

1. decodes and resamples them in parallel worker processes (soundfile + soxr, no
   TensorFlow in the workers), cutting each file into clips of ``clip_samples``;
2. writes the clips as int16 PCM examples into sharded TFRecords, in the format of
   :mod:`course_lib.data`, one shard per block of ``files_per_shard`` source files;
3. skips every unusable file (corrupt, empty, truncated, non-audio, NaN or infinite
   samples) and lists it with its reason in the manifest and the report;
4. writes ``manifest.json`` last.

Interruption and reruns: the file list of each split is shuffled with a fixed seed and
cut into blocks, so the plan is the same on every run. A shard is written to a
temporary name and renamed when complete, then a small progress record (its example
count and skipped files) is written under ``.progress/``. A rerun keeps every shard
that has its progress record and writes the others, so it finishes the job with no
partial shard, no duplicate and no missing example. Settings that differ from the
interrupted run's (rate, clip length, labels) restart the conversion from scratch.
Two processes converting into one folder take turns (:mod:`data_prep.conversion_lock`).

Used in: 01_speech_commands_tfrecords.ipynb (through :mod:`data_prep.prepare`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from course_lib import audio, data

SPLITS = ("train", "validation", "test")
PROGRESS_FOLDER = ".progress"
DEFAULT_FILES_PER_SHARD = 2048
SHUFFLE_SEED = 1234
MIN_TAIL_FRACTION = 0.5
"""A long file's last, partial clip is kept (zero-padded) when it holds at least this
fraction of a clip; a shorter tail is dropped."""
IN_PROCESS_BELOW = 512
"""With fewer files than this, decoding runs in this process (starting workers costs more)."""
CHUNK_FILES = 128
"""Files a worker decodes per task."""


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One audio file to convert.

    Attributes:
        path: the file on disk.
        source: its path relative to the source root (stored in every example).
        label: index into the dataset's labels.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        speaker: speaker id, or ``""``.
    """

    path: Path
    source: str
    label: int
    split: str
    speaker: str = ""


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A file that was not converted, and why."""

    source: str
    reason: str


@dataclasses.dataclass
class ConversionReport:
    """What a conversion wrote and skipped; ``print`` it for the summary.

    Attributes:
        out: the converted dataset folder.
        sample_rate: rate of the stored clips in Hz.
        clip_samples: samples per clip.
        labels: class names in label-index order.
        examples: split -> clips written.
        files: split -> source files converted.
        skipped: every file that was not converted, with its reason.
        seconds: wall time of this run.
        reused_shards: shards kept from an earlier, interrupted run.
    """

    out: Path
    sample_rate: int
    clip_samples: int
    labels: list[str]
    examples: dict[str, int]
    files: dict[str, int]
    skipped: list[Skipped]
    seconds: float
    reused_shards: int = 0

    @property
    def files_found(self) -> int:
        """Source files considered: converted plus skipped (the counts add up)."""
        return sum(self.files.values()) + len(self.skipped)

    def __str__(self) -> str:
        lines = [
            f"converted {sum(self.files.values())} of {self.files_found} files into "
            f"{self.out} ({len(self.labels)} labels, {self.sample_rate} Hz, "
            f"{self.clip_samples} samples per clip) in {self.seconds:.1f} s"
        ]
        for split, count in self.examples.items():
            lines.append(f"  {split:<10} {count:>7} clips from {self.files[split]} files")
        if self.reused_shards:
            lines.append(f"  kept {self.reused_shards} shards from an interrupted run")
        lines.append(f"  skipped    {len(self.skipped):>7} files")
        for item in self.skipped[:20]:
            lines.append(f"    {item.source}: {item.reason}")
        if len(self.skipped) > 20:
            lines.append(f"    ... and {len(self.skipped) - 20} more (see manifest.json)")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class _Shard:
    split: str
    index: int
    count: int
    files: tuple[SourceFile, ...]

    @property
    def name(self) -> str:
        return data.shard_name(self.split, self.index, self.count)


# ----------------------------------------------------------------------------- decoding


def decode_clips(
    path: str | Path, sample_rate: int, clip_samples: int, cut_long_files: bool
) -> tuple[list[bytes], str]:
    """Decode one file into int16 PCM clips, or return why it cannot be used.

    Args:
        path: the audio file.
        sample_rate: target rate in Hz.
        clip_samples: samples per clip.
        cut_long_files: cut a long file into consecutive clips (the last kept when it
            holds at least ``MIN_TAIL_FRACTION`` of a clip); otherwise keep one clip,
            zero-padded at the end or cropped around the centre.

    Returns:
        ``(clips, reason)``: PCM bytes of each clip and ``""``, or ``[]`` and the reason.
    """
    try:
        pcm = audio.load_pcm16(path, sample_rate)  # int16 [num_samples]
    except (audio.AudioDecodeError, OSError) as error:
        return [], str(error) or type(error).__name__
    if not cut_long_files or pcm.shape[0] <= clip_samples:
        return [audio.fit_length(pcm, clip_samples).astype("<i2").tobytes()], ""
    clips = []
    for start in range(0, pcm.shape[0], clip_samples):
        piece = pcm[start : start + clip_samples]
        if piece.shape[0] < clip_samples:
            if piece.shape[0] < MIN_TAIL_FRACTION * clip_samples:
                break
            piece = np.pad(piece, (0, clip_samples - piece.shape[0]))
        clips.append(piece.astype("<i2").tobytes())
    return clips, ""


# ----------------------------------------------------------------------------- planning


def plan_shards(files: Sequence[SourceFile], files_per_shard: int) -> list[_Shard]:
    """Cut each split's files, shuffled with a fixed seed, into shards of equal blocks.

    The same files always give the same plan, which is what makes reruns resume.
    """
    if files_per_shard < 1:
        raise ValueError(f"files_per_shard must be at least 1, got {files_per_shard}.")
    shards = []
    for split in SPLITS:
        members = sorted((f for f in files if f.split == split), key=lambda f: f.source)
        random.Random(SHUFFLE_SEED).shuffle(members)
        count = -(-len(members) // files_per_shard)
        for index in range(count):
            block = members[index * files_per_shard : (index + 1) * files_per_shard]
            shards.append(_Shard(split, index, count, tuple(block)))
    return shards


def _settings_key(
    sample_rate: int,
    clip_samples: int,
    labels: Sequence[str],
    cut_long_files: bool,
    files_per_shard: int,
) -> str:
    settings = json.dumps(
        [
            sample_rate,
            clip_samples,
            list(labels),
            cut_long_files,
            files_per_shard,
            data.FORMAT_VERSION,
        ]
    )
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def _prepare_output(out: Path, settings_key: str, shards: Sequence[_Shard]) -> None:
    """Create ``out``; forget an earlier run made with other settings; drop stale files."""
    progress = out / PROGRESS_FOLDER
    key_file = progress / "settings"
    if progress.is_dir() and (not key_file.is_file() or key_file.read_text() != settings_key):
        shutil.rmtree(progress)
        for old in out.glob("*.tfrecord"):
            old.unlink()
    progress.mkdir(parents=True, exist_ok=True)
    key_file.write_text(settings_key)
    planned = {shard.name for shard in shards}
    for old in list(out.glob("*.tfrecord")) + list(out.glob("*.tfrecord.tmp")):
        if old.name not in planned:
            old.unlink()
    (out / data.MANIFEST_NAME).unlink(missing_ok=True)


def _finished(out: Path, shard: _Shard) -> dict | None:
    record = out / PROGRESS_FOLDER / f"{shard.name}.json"
    if record.is_file() and (out / shard.name).is_file():
        return json.loads(record.read_text())
    return None


def _record_finished(out: Path, shard: _Shard, examples: int, skipped: list[Skipped]) -> None:
    record = out / PROGRESS_FOLDER / f"{shard.name}.json"
    temporary = record.with_name(record.name + ".tmp")
    temporary.write_text(
        json.dumps(
            {
                "examples": examples,
                "files": len(shard.files) - len(skipped),
                "skipped": [dataclasses.asdict(item) for item in skipped],
            }
        )
    )
    os.replace(temporary, record)


# ----------------------------------------------------------------------------- converting


def serialize_file(
    item: SourceFile, label_name: str, sample_rate: int, clip_samples: int, cut_long_files: bool
) -> tuple[list[bytes], str]:
    """Decode one file and serialize its clips as examples, or return why it is unusable.

    Runs in worker processes: no TensorFlow (see :func:`course_lib.data.serialize_example`).
    """
    clips, reason = decode_clips(item.path, sample_rate, clip_samples, cut_long_files)
    examples = [
        data.serialize_example(clip, sample_rate, item.label, label_name, item.speaker, item.source)
        for clip in clips
    ]
    return examples, reason


def default_workers(first_file: Path, sample_rate: int) -> int:
    """One process when files need no resampling, else one worker per CPU.

    Moving decoded audio between processes costs about as much as decoding a 16-bit
    file at its own rate, so workers only pay off when they resample (measured with
    ``benchmarks/p1_conversion.py``: 16 kHz -> 16 kHz is fastest in one process,
    16 kHz -> 8 kHz is about 1.6x faster with two workers on two CPUs).
    """
    import soundfile

    try:
        needs_resampling = soundfile.info(str(first_file)).samplerate != sample_rate
    except (RuntimeError, soundfile.LibsndfileError):
        needs_resampling = True
    return (os.cpu_count() or 1) if needs_resampling else 1


def _serialize_chunk(
    items: list[SourceFile], labels: Sequence[str], settings: tuple[int, int, bool]
) -> list[tuple[list[bytes], str]]:
    return [serialize_file(item, labels[item.label], *settings) for item in items]


def _serialized(
    shards: Sequence[_Shard],
    labels: Sequence[str],
    settings: tuple[int, int, bool],
    workers: int,
) -> Iterator[tuple[SourceFile, list[bytes], str]]:
    """Serialized examples of every file of ``shards``, in order, from ``workers`` processes.

    Processes, not threads: decoding and resampling hold the GIL long enough that threads
    run slower than one thread (measured with ``benchmarks/p1_conversion.py``). Files go
    to the workers in chunks, with at most ``2 * workers`` chunks in flight, so memory
    stays bounded. Workers start with "spawn": they never inherit a forked copy of
    TensorFlow's threads, and they never import TensorFlow.

    Args:
        settings: ``(sample_rate, clip_samples, cut_long_files)``.
    """
    files = [item for shard in shards for item in shard.files]
    if workers == 1 or len(files) < IN_PROCESS_BELOW:
        for item in files:
            yield (item, *serialize_file(item, labels[item.label], *settings))
        return
    chunks = [files[i : i + CHUNK_FILES] for i in range(0, len(files), CHUNK_FILES)]
    labels = list(labels)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        in_flight = collections.deque(
            pool.submit(_serialize_chunk, chunk, labels, settings)
            for chunk in chunks[: 2 * workers]
        )
        for index, chunk in enumerate(chunks):
            results = in_flight.popleft().result()
            following = index + 2 * workers
            if following < len(chunks):
                in_flight.append(pool.submit(_serialize_chunk, chunks[following], labels, settings))
            for item, result in zip(chunk, results, strict=True):
                yield (item, *result)


def convert_files(
    files: Sequence[SourceFile],
    out: str | Path,
    labels: Sequence[str],
    sample_rate: int,
    clip_samples: int,
    source_description: str,
    skipped: Sequence[Skipped] = (),
    cut_long_files: bool = False,
    workers: int | None = None,
    files_per_shard: int = DEFAULT_FILES_PER_SHARD,
    progress: bool = True,
) -> ConversionReport:
    """Convert ``files`` into sharded TFRecords and ``manifest.json`` in ``out``.

    Args:
        files: the audio files, with labels and splits.
        out: the output folder (created).
        labels: class names; ``SourceFile.label`` indexes them.
        sample_rate: target rate in Hz.
        clip_samples: samples per stored clip.
        source_description: what was converted, for the manifest.
        skipped: files already rejected while listing (not audio, no label...).
        cut_long_files: cut long files into several clips instead of one.
        workers: decoding processes (default: :func:`default_workers`).
        files_per_shard: source files per shard.
        progress: show a progress bar.

    Returns:
        The :class:`ConversionReport`; the same facts are in ``manifest.json``.

    Raises:
        ValueError: no files, a label index out of range, or a bad setting.
    """
    from course_lib.data import Manifest, write_manifest, write_shard
    from data_prep.conversion_lock import conversion_lock

    start = time.perf_counter()
    if not files:
        raise ValueError(f"no audio files to convert in {source_description}.")
    if sample_rate < 1 or clip_samples < 1:
        raise ValueError(
            f"sample_rate and clip_samples must be positive, got {sample_rate} and {clip_samples}."
        )
    if workers is None:
        workers = default_workers(files[0].path, sample_rate)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    bad_labels = [f.source for f in files if not 0 <= f.label < len(labels)]
    if bad_labels:
        raise ValueError(f"label index out of range for {bad_labels[:3]}.")

    out = Path(out)
    with conversion_lock(out):  # a second process waits here: see conversion_lock
        shards = plan_shards(files, files_per_shard)
        _prepare_output(
            out,
            _settings_key(sample_rate, clip_samples, labels, cut_long_files, files_per_shard),
            shards,
        )
        examples = dict.fromkeys(SPLITS, 0)
        converted = dict.fromkeys(SPLITS, 0)
        shard_counts = dict.fromkeys(SPLITS, 0)
        all_skipped = list(skipped)
        pending, reused = [], 0
        for shard in shards:
            shard_counts[shard.split] = shard.count
            record = _finished(out, shard)
            if record is None:
                pending.append(shard)
                continue
            reused += 1
            examples[shard.split] += record["examples"]
            converted[shard.split] += record["files"]
            all_skipped.extend(Skipped(**item) for item in record["skipped"])

        bar = _progress_bar(sum(len(s.files) for s in pending), progress)
        settings = (sample_rate, clip_samples, cut_long_files)
        serialized = _serialized(pending, labels, settings, workers)
        for shard in pending:
            shard_skipped: list[Skipped] = []

            def shard_examples(shard=shard, shard_skipped=shard_skipped):
                for _ in shard.files:
                    item, examples_of_file, reason = next(serialized)
                    bar.update(1)
                    if reason:
                        shard_skipped.append(Skipped(item.source, reason))
                    yield from examples_of_file

            written = write_shard(out / shard.name, shard_examples())
            _record_finished(out, shard, written, shard_skipped)
            examples[shard.split] += written
            converted[shard.split] += len(shard.files) - len(shard_skipped)
            all_skipped.extend(shard_skipped)
        bar.close()

        present = [split for split in SPLITS if shard_counts[split]]
        manifest = Manifest(
            sample_rate=sample_rate,
            clip_samples=clip_samples,
            labels=list(labels),
            splits={s: {"examples": examples[s], "shards": shard_counts[s]} for s in present},
            skipped=[dataclasses.asdict(item) for item in all_skipped],
            source=source_description,
        )
        write_manifest(out, manifest)
        return ConversionReport(
            out=out,
            sample_rate=sample_rate,
            clip_samples=clip_samples,
            labels=list(labels),
            examples={s: examples[s] for s in present},
            files={s: converted[s] for s in present},
            skipped=all_skipped,
            seconds=time.perf_counter() - start,
            reused_shards=reused,
        )


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc="converting", disable=not enabled or total == 0)


# ----------------------------------------------------------------------------- splitting


MAX_FILES_PER_CLASS = 2**27 - 1


def hash_split(file_name: str, validation_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """The Speech Commands split rule (TF ``speech_commands/input_data.which_set``).

    The file name with its ``_nohash_...`` part removed is hashed with SHA-1, so all
    clips of one speaker land in the same split, and adding files never moves old ones.

    Returns:
        ``"train"``, ``"validation"`` or ``"test"``.
    """
    base = Path(file_name).name.split("_nohash_")[0]
    digest = hashlib.sha1(base.encode()).hexdigest()
    percent = (int(digest, 16) % (MAX_FILES_PER_CLASS + 1)) * (100.0 / MAX_FILES_PER_CLASS)
    if percent < validation_percent:
        return "validation"
    if percent < validation_percent + test_percent:
        return "test"
    return "train"


def list_files(root: Path) -> tuple[list[str], list[str]]:
    """Every visible file under ``root`` as sorted relative POSIX paths: (audio, other).

    Hidden files and folders (names starting with ``.``) are not data and are ignored.
    """
    audio_files, other_files = [], []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        prefix = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        for name in sorted(names):
            if not name.startswith("."):
                is_audio = audio.is_audio_file(name)
                (audio_files if is_audio else other_files).append(prefix + name)
    return audio_files, other_files


def not_audio_reason(name: str) -> str:
    """The reason reported for a file skipped because it is not audio."""
    return f"not an audio file ({Path(name).suffix or 'no extension'})"
