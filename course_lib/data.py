"""The kit's TFRecord format, written and read through one definition.

A converted dataset is one folder:

- shards ``{split}-{i:05d}-of-{n:05d}.tfrecord`` (uncompressed), each example holding
  ``audio`` (mono int16 little-endian PCM bytes), ``sample_rate``, ``label`` (index into
  the manifest's labels), ``label_name``, ``speaker`` (may be empty) and ``source``
  (path relative to the source root);
- ``manifest.json`` with ``sample_rate``, ``clip_samples``, ``labels``, ``splits``
  (name to ``{examples, shards}``), ``skipped`` (``{source, reason}`` list), ``source``
  and ``version``;
- optionally ``background_noise/*.wav`` at the dataset's rate, for augmentation.

:func:`load_split` turns a split into a batched, prefetched ``tf.data.Dataset`` of
float32 ``(batch, clip_samples, 1)`` audio in [-1, 1] and int32 labels, parsing whole
batches at once with ``tf.io.parse_example``. For tables, plots and players,
:func:`read_table` reads a sample of a split (a limit, column values, a number per label)
as NumPy columns and :func:`label_counts` counts a split's labels, both holding only what
they return.

Used in: 01_speech_commands_tfrecords.ipynb and every notebook that trains on audio.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
NOISE_FOLDER = "background_noise"
PCM_SCALE = 32768.0  # course_lib.audio.PCM16_SCALE, libsndfile's convention


def _feature_spec() -> dict[str, Any]:
    import tensorflow as tf

    return {
        "audio": tf.io.FixedLenFeature([], tf.string),
        "sample_rate": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "label_name": tf.io.FixedLenFeature([], tf.string),
        "speaker": tf.io.FixedLenFeature([], tf.string, default_value=b""),
        "source": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    }


# ----------------------------------------------------------------------------- writing


def serialize_example(
    pcm16: bytes,
    sample_rate: int,
    label: int,
    label_name: str,
    speaker: str = "",
    source: str = "",
) -> bytes:
    """One example in the kit's schema, serialized as a ``tf.train.Example``.

    The protobuf wire format is written directly (no TensorFlow import), so the
    conversion's worker processes can serialize without loading TensorFlow;
    ``tf.io.parse_example`` reads it back (tests/test_data.py checks the round trip
    against ``tf.train.Example``).
    """
    small_features = (
        ("sample_rate", _int64_feature(sample_rate)),
        ("label", _int64_feature(label)),
        ("label_name", _bytes_feature(label_name.encode())),
        ("speaker", _bytes_feature(speaker.encode())),
        ("source", _bytes_feature(source.encode())),
    )
    # Example.features (1) -> Features.feature (1, repeated map entry {key (1), value (2)}).
    small_entries = b"".join(
        _field(1, _field(1, k.encode()) + _field(2, v)) for k, v in small_features
    )
    # The audio entry is built from the inside out as headers only, so the clip's bytes
    # are copied once, by the final join.
    headers = []
    length = len(pcm16)
    for field_number, prefix in ((1, b""), (1, b""), (2, _field(1, b"audio")), (1, b"")):
        # BytesList.value, Feature.bytes_list, map entry value (after its key), Features.feature
        header = prefix + _varint(field_number << 3 | 2) + _varint(length)
        headers.insert(0, header)
        length += len(header)
    length += len(small_entries)
    example_header = _varint(1 << 3 | 2) + _varint(length)
    return b"".join([example_header, *headers, pcm16, small_entries])


_SMALL_VARINTS = [bytes((value,)) for value in range(0x80)]


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (int64 values wrap as unsigned)."""
    if 0 <= value < 0x80:
        return _SMALL_VARINTS[value]
    value &= 0xFFFFFFFFFFFFFFFF
    encoded = bytearray()
    while value > 0x7F:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)


def _field(field_number: int, payload: bytes) -> bytes:
    """A protobuf field of wire type 2 (bytes, string, message or packed list)."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _bytes_feature(value: bytes) -> bytes:
    """Feature.bytes_list (1) -> BytesList.value (1)."""
    return _field(1, _field(1, value))


def _int64_feature(value: int) -> bytes:
    """Feature.int64_list (3) -> Int64List.value (1, packed)."""
    return _field(3, _field(1, _varint(int(value))))


def shard_name(split: str, index: int, count: int) -> str:
    """The file name of shard ``index`` of ``count`` in ``split``."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is outside 0..{count - 1}.")
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def write_shard(path: str | Path, serialized_examples: Iterable[bytes]) -> int:
    """Write examples to ``path`` atomically: a temporary name, renamed when complete.

    An interrupted write leaves at most a ``.tmp`` file, never a partial shard.

    Returns:
        The number of examples written.
    """
    import tensorflow as tf

    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    count = 0
    with tf.io.TFRecordWriter(str(temporary)) as writer:
        for serialized in serialized_examples:
            writer.write(serialized)
            count += 1
    os.replace(temporary, path)
    return count


@dataclasses.dataclass
class Manifest:
    """What ``manifest.json`` holds; see the module docstring."""

    sample_rate: int
    clip_samples: int
    labels: list[str]
    splits: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    source: str = ""
    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def write_manifest(folder: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically into ``folder``."""
    path = Path(folder) / MANIFEST_NAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(manifest.to_json())
    os.replace(temporary, path)
    return path


def read_manifest(folder: str | Path) -> Manifest:
    """Read a converted dataset's ``manifest.json``.

    Raises:
        FileNotFoundError: the folder holds no manifest (not converted yet).
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: convert the dataset first "
            "(python -m data_prep speech-commands|folder ... --out FOLDER)."
        )
    fields = json.loads(path.read_text())
    known = {field.name for field in dataclasses.fields(Manifest)}
    return Manifest(**{key: value for key, value in fields.items() if key in known})


def label_names(folder: str | Path) -> list[str]:
    """The class names of a converted dataset, in label-index order."""
    return list(read_manifest(folder).labels)


def shard_paths(folder: str | Path, split: str) -> list[Path]:
    """The complete shards of ``split`` in ``folder``, sorted."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if split not in manifest.splits:
        raise ValueError(f"split {split!r} is not in {folder}; it has {sorted(manifest.splits)}.")
    paths = sorted(folder.glob(f"{split}-*-of-*.tfrecord"))
    if not paths:
        raise FileNotFoundError(f"no shards for split {split!r} in {folder}.")
    return paths


# ----------------------------------------------------------------------------- reading


def parse_batch(serialized, clip_samples: int):
    """Parse a batch of serialized examples into audio and labels.

    Args:
        serialized: string tensor of shape ``[batch]``.
        clip_samples: samples per clip (from the manifest).

    Returns:
        ``(audio, labels)``: float32 ``[batch, clip_samples, 1]`` in [-1, 1] and int32
        ``[batch]``.
    """
    import tensorflow as tf

    features = tf.io.parse_example(serialized, _feature_spec())
    pcm = tf.io.decode_raw(features["audio"], tf.int16, little_endian=True)  # [b, n]
    audio = tf.cast(pcm, tf.float32) / PCM_SCALE
    audio = tf.reshape(audio, [-1, clip_samples, 1])  # [b, n] -> [b, n, 1]
    return audio, tf.cast(features["label"], tf.int32)


def load_split(
    folder: str | Path,
    split: str,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    time_shift_samples: int = 0,
    noise_bank: np.ndarray | None = None,
    noise_probability: float = 0.8,
    max_noise_gain: float = 0.1,
    cache: bool = False,
):
    """A ``tf.data.Dataset`` over one split of a converted dataset.

    Args:
        folder: the converted dataset (shards and ``manifest.json``).
        split: ``"train"``, ``"validation"`` or ``"test"``.
        batch_size: clips per batch.
        shuffle: shuffle shards and examples (training); without it, the clips come in
            file order (shard after shard, as :func:`read_table` reads them).
        seed: shuffle and augmentation seed.
        repeat: repeat forever (use ``steps_per_epoch`` in ``fit``).
        drop_remainder: drop a last incomplete batch (static batch shape, for XLA).
        time_shift_samples: if > 0, shift each clip by a random offset in
            ``[-time_shift_samples, time_shift_samples]`` with zero fill.
        noise_bank: optional float array ``[num_noises, clip_samples]`` of background
            noise (see :func:`load_noise_bank`) mixed into each clip.
        noise_probability: fraction of clips that receive background noise.
        max_noise_gain: noise gain is drawn uniformly from ``[0, max_noise_gain]``.
        cache: keep the split's serialized records in memory after the first epoch
            (1.1 to 1.2 x the shards' size: about 1.2 GB for SC09's training split at
            16 kHz). The course does not: without it the pipeline still delivers
            15,000 to 20,000 one-second clips/s on two CPU cores from a local disk (with
            it 17,000 to 33,000; ``benchmarks/p6_record_cache.py``), ten times what a
            T4 trains on (the judge: about 1,000 clips/s).

    Returns:
        Batches ``(audio [batch, clip_samples, 1] float32, labels [batch] int32)``.
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    manifest = read_manifest(folder)
    clip_samples = int(manifest.clip_samples)
    files = [str(path) for path in shard_paths(folder, split)]
    records = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        records = records.shuffle(len(files), seed=seed)
    # Shuffled: records from up to 8 shards at once. In order: one shard after another,
    # the file order of read_table, so a row index means the same clip in both.
    records = records.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8) if shuffle else 1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle,
    )
    if cache:
        records = records.cache()
    if shuffle:
        records = records.shuffle(8 * batch_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        records = records.repeat()
    batches = records.batch(batch_size, drop_remainder=drop_remainder)
    dataset = batches.map(
        lambda serialized: parse_batch(serialized, clip_samples),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if time_shift_samples > 0 or noise_bank is not None:
        generator = tf.random.Generator.from_seed(seed)
        noises = None if noise_bank is None else _check_noise_bank(noise_bank, clip_samples)

        def augment(audio, labels):
            if time_shift_samples > 0:
                audio = random_time_shift(audio, time_shift_samples, generator)
            if noises is not None:
                audio = mix_background_noise(
                    audio, noises, noise_probability, max_noise_gain, generator
                )
            return audio, labels

        dataset = dataset.map(augment)
    if not repeat:
        # Known length: Keras shows epoch progress and does not warn about running out.
        examples = int(manifest.splits.get(split, {}).get("examples", 0))
        batch_count = examples // batch_size if drop_remainder else -(-examples // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batch_count))
    return dataset.prefetch(tf.data.AUTOTUNE)


def random_time_shift(audio, max_shift: int, generator):
    """Shift each clip by its own random offset in ``[-max_shift, max_shift]``, zero fill.

    Args:
        audio: float32 ``[batch, samples, 1]``.
        max_shift: largest shift in samples.
        generator: a ``tf.random.Generator``.
    """
    import tensorflow as tf

    batch = tf.shape(audio)[0]
    samples = tf.shape(audio)[1]
    shifts = generator.uniform([batch], -max_shift, max_shift + 1, dtype=tf.int32)
    padded = tf.pad(audio, [[0, 0], [max_shift, max_shift], [0, 0]])  # [b, n + 2s, 1]
    starts = max_shift - shifts  # a positive shift delays the clip
    positions = starts[:, None] + tf.range(samples)[None, :]  # [b, n]
    return tf.gather(padded, positions, batch_dims=1)


def mix_background_noise(audio, noise_bank, probability: float, max_gain: float, generator):
    """Add a random background-noise clip at a random gain to a fraction of the batch.

    Args:
        audio: float32 ``[batch, samples, 1]``.
        noise_bank: float32 tensor ``[num_noises, samples]``.
        probability: chance that a clip gets noise.
        max_gain: gain drawn uniformly in ``[0, max_gain]``.
        generator: a ``tf.random.Generator``.
    """
    import tensorflow as tf

    batch = tf.shape(audio)[0]
    choice = generator.uniform([batch], 0, tf.shape(noise_bank)[0], dtype=tf.int32)
    gains = generator.uniform([batch], 0.0, max_gain)
    gains *= tf.cast(generator.uniform([batch]) < probability, tf.float32)
    noise = tf.gather(noise_bank, choice)[:, :, None]  # [b, n] -> [b, n, 1]
    return tf.clip_by_value(audio + gains[:, None, None] * noise, -1.0, 1.0)


# The fraction of the Nyquist frequency that course_lib.audio.resample (soxr, "HQ") keeps:
# clips converted to 8 or 4 kHz and resampled back to 16 kHz are 6 dB down at 95% of
# the lower rate's Nyquist frequency (3.8 kHz, 1.9 kHz) and 60 dB down at 98%; an
# ideal low-pass there matches them 20 times more closely than one at 100% (measured on
# the fixture's test clips: relative squared error 1.7e-4 against 3.3e-3).
RESAMPLE_BANDWIDTH = 0.95


def band_limit(audio, cutoffs_hz, sample_rate: int):
    """An ideal low-pass per clip: every FFT bin at or above the clip's cutoff is zeroed.

    With ``X = rfft(x)`` over the whole clip (bin ``k`` at ``k * sample_rate / samples``
    Hz), the result is ``irfft(X * [f_k < cutoff])``. A cutoff above ``sample_rate / 2``
    (e.g. ``inf``) keeps the clip as it is.

    Args:
        audio: float32 ``[batch, samples, 1]``.
        cutoffs_hz: float ``[batch]``, one cutoff per clip in Hz.
        sample_rate: the rate of ``audio`` in Hz.

    Returns:
        float32 ``[batch, samples, 1]``; clips whose cutoff is above ``sample_rate / 2``
        are returned exactly.
    """
    import tensorflow as tf

    audio = tf.convert_to_tensor(audio, tf.float32)
    cutoffs_hz = tf.cast(cutoffs_hz, tf.float32)
    signals = audio[:, :, 0]  # [b, n, 1] -> [b, n]
    samples = tf.shape(signals)[1]
    spectrum = tf.signal.rfft(signals)  # [b, n // 2 + 1]
    bins = tf.range(tf.shape(spectrum)[1], dtype=tf.float32)
    frequencies = bins * (sample_rate / tf.cast(samples, tf.float32))  # Hz of each bin
    keep = frequencies[None, :] < cutoffs_hz[:, None]  # [b, n // 2 + 1]
    filtered = tf.signal.irfft(spectrum * tf.cast(keep, spectrum.dtype), samples[None])
    untouched = cutoffs_hz > sample_rate / 2  # [b]
    return tf.where(untouched[:, None, None], audio, filtered[:, :, None])


def random_band_limit(
    audio,
    sample_rate: int,
    rates,
    probability: float,
    generator,
    bandwidth: float = RESAMPLE_BANDWIDTH,
):
    """Make a random fraction of the batch sound as if it had been recorded at a lower rate.

    Each clip is, with chance ``probability``, given one of ``rates`` (each equally
    likely) and low-passed by :func:`band_limit` at ``bandwidth * rate / 2``: what a clip
    made at ``rate`` holds once resampled to ``sample_rate`` (``course_lib.audio.resample``,
    as ``course_lib.judge.Judge.conform`` does). A judge trained on such clips hears the
    digits of an 8 or 4 kHz generator as well as those of a 16 kHz one. The other clips
    are returned exactly.

    Args:
        audio: float32 ``[batch, samples, 1]`` at ``sample_rate``.
        sample_rate: the rate of ``audio`` in Hz.
        rates: the lower rates to imitate, each in ``(0, sample_rate)``, e.g. ``(8000, 4000)``.
        probability: chance in ``[0, 1]`` that a clip is band-limited.
        generator: a ``tf.random.Generator``.
        bandwidth: the fraction of each rate's Nyquist frequency kept, in ``(0, 1]``
            (default: :data:`RESAMPLE_BANDWIDTH`, the resampler's).

    Returns:
        float32 ``[batch, samples, 1]``.

    Raises:
        ValueError: no rates, a rate outside ``(0, sample_rate)``, or a probability or
            bandwidth out of range.
    """
    import tensorflow as tf

    rates = tuple(rates)
    if not rates or not all(0 < rate < sample_rate for rate in rates):
        raise ValueError(f"rates must be one or more rates in (0, {sample_rate}) Hz, got {rates}.")
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}.")
    if not 0 < bandwidth <= 1:
        raise ValueError(f"bandwidth must be in (0, 1], got {bandwidth}.")
    batch = tf.shape(audio)[0]
    nyquists = tf.constant([bandwidth * rate / 2 for rate in rates], tf.float32)
    choice = generator.uniform([batch], 0, len(rates), dtype=tf.int32)
    limited = generator.uniform([batch]) < probability
    cutoffs = tf.where(limited, tf.gather(nyquists, choice), float("inf"))
    return band_limit(audio, cutoffs, sample_rate)


def load_noise_bank(folder: str | Path, clip_samples: int | None = None) -> np.ndarray:
    """Cut the dataset's ``background_noise/*.wav`` into clips ``[num_clips, clip_samples]``.

    Raises:
        FileNotFoundError: the dataset has no background-noise folder.
    """
    from course_lib import audio

    folder = Path(folder)
    manifest = read_manifest(folder)
    clip_samples = clip_samples or int(manifest.clip_samples)
    files = sorted((folder / NOISE_FOLDER).glob("*.wav"))
    if not files:
        raise FileNotFoundError(f"{folder / NOISE_FOLDER} holds no WAV files.")
    clips = []
    for path in files:
        samples, _ = audio.load_audio(path, manifest.sample_rate)
        for start in range(0, samples.shape[0] - clip_samples + 1, clip_samples):
            clips.append(samples[start : start + clip_samples])
    if not clips:
        raise ValueError(f"background noise files in {folder} are shorter than one clip.")
    return np.stack(clips).astype(np.float32)


def _check_noise_bank(noise_bank: np.ndarray, clip_samples: int):
    import tensorflow as tf

    noise_bank = np.asarray(noise_bank, np.float32)
    if noise_bank.ndim != 2 or noise_bank.shape[1] != clip_samples:
        raise ValueError(
            f"noise_bank must have shape [num_noises, {clip_samples}], got {noise_bank.shape}."
        )
    return tf.constant(noise_bank)


def read_arrays(
    folder: str | Path, split: str, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A split as NumPy arrays (in file order): audio ``[n, clip_samples]`` and labels ``[n]``.

    Args:
        limit: read at most this many examples (in batches of at most ``limit``, so a
            small sample does not read, parse and prefetch batches of 256 clips).
    """
    batch_size = 256 if limit is None else max(1, min(256, limit))
    dataset = load_split(folder, split, batch_size=batch_size, shuffle=False)
    audio_batches, label_batches, total = [], [], 0
    for audio_batch, label_batch in dataset:
        audio_batches.append(audio_batch.numpy()[..., 0])
        label_batches.append(label_batch.numpy())
        total += len(label_batches[-1])
        if limit is not None and total >= limit:
            break
    if not audio_batches:
        clip_samples = read_manifest(folder).clip_samples
        return np.zeros((0, clip_samples), np.float32), np.zeros((0,), np.int32)
    audio_array = np.concatenate(audio_batches)[:limit]
    return audio_array, np.concatenate(label_batches)[:limit]


TABLE_METADATA = ("label_name", "speaker", "source")  # the string columns of read_table
TABLE_BATCH = 128  # records that read_table and label_counts parse at once: 4 MB of 1 s
# clips at 16 kHz, 16 MB of 4 s notes, so a sample costs little more than itself


def read_table(
    folder: str | Path,
    split: str,
    limit: int | None = None,
    *,
    where: Mapping[str, Any] | None = None,
    per_label: int | None = None,
    rows: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """Rows of a split with their metadata, in file order, as NumPy columns.

    The split is read in batches and only the rows kept are decoded and held, so a
    sample (``limit``, ``where``, ``per_label``) of a large split takes the memory of the
    sample, not of the split. Reading stops as soon as the sample is complete.

    Args:
        folder: the converted dataset.
        split: the split's name.
        limit: keep at most this many rows (None: no limit).
        where: keep only rows whose columns hold these values, e.g.
            ``{"label_name": "six"}``, ``{"source": path}`` or ``{"label": [0, 1, 2]}``
            (a list or tuple: any of its values).
        per_label: keep at most this many rows of each label (the first ones in file
            order).
        rows: keep only the rows at these positions of the split in file order (the
            order of ``load_split(..., shuffle=False)`` and :func:`read_arrays`, so the
            indices of ``Judge.evaluate``'s mistakes); reading stops after the last one.

    Returns:
        ``audio`` float32 ``[n, clip_samples]``, ``label`` int32 ``[n]``, and ``label_name``,
        ``speaker``, ``source`` as string arrays ``[n]``.
    """
    import tensorflow as tf

    manifest = read_manifest(folder)
    where = dict(where or {})
    unknown = set(where) - set(TABLE_METADATA) - {"label"}
    if unknown:
        raise ValueError(f"where can filter on label, {', '.join(TABLE_METADATA)}; not {unknown}.")
    records = tf.data.TFRecordDataset([str(path) for path in shard_paths(folder, split)])
    if limit is not None and not where and per_label is None:
        records = records.take(limit)
    positions = None if rows is None else np.unique(np.asarray(rows, np.int64))  # sorted
    if positions is not None:
        records = records.take(int(positions[-1]) + 1 if len(positions) else 0)
    wanted_labels = _labels_passing(manifest.labels, where)  # [labels] bool
    kept_per_label = np.zeros(len(manifest.labels), np.int64)
    parts: list[dict[str, np.ndarray]] = []
    kept = read = 0
    for serialized in records.batch(TABLE_BATCH):
        batch = _metadata_columns(tf.io.parse_example(serialized, _feature_spec()))
        keep = np.ones(len(batch["label"]), bool)
        if positions is not None:
            keep &= np.isin(read + np.arange(len(keep)), positions)
        read += len(keep)
        for column, values in where.items():
            keep &= np.isin(batch[column], values if isinstance(values, list | tuple) else [values])
        if per_label is not None:
            keep &= _first_per_label(batch["label"], keep, kept_per_label, per_label)
        if limit is not None:
            keep &= np.cumsum(keep) <= limit - kept
        parts.append({key: column[keep] for key, column in batch.items()})
        kept += int(keep.sum())
        sample_complete = per_label is not None and np.all(
            kept_per_label[wanted_labels] >= per_label
        )
        if (limit is not None and kept >= limit) or sample_complete:
            break
    if not parts:  # an empty split
        parts = [_metadata_columns(None)]
    audio_bytes = np.concatenate([part.pop("audio_bytes") for part in parts])
    pcm = np.frombuffer(b"".join(audio_bytes), "<i2").reshape(-1, manifest.clip_samples)
    table = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return {"audio": pcm.astype(np.float32) / PCM_SCALE, **table}


def _metadata_columns(features) -> dict[str, np.ndarray]:
    """A parsed batch as NumPy columns ``[batch]``: ``label`` int32, the strings of
    ``TABLE_METADATA`` and the undecoded ``audio_bytes`` (object array of bytes); empty
    columns when ``features`` is None."""
    if features is None:
        return {
            "label": np.zeros(0, np.int32),
            "audio_bytes": np.zeros(0, object),
            **{key: np.zeros(0, str) for key in TABLE_METADATA},
        }
    columns = {
        "label": features["label"].numpy().astype(np.int32),
        "audio_bytes": features["audio"].numpy(),
    }
    for key in TABLE_METADATA:
        columns[key] = np.char.decode(features[key].numpy().astype(bytes), "utf-8")
    return columns


def _labels_passing(labels: list[str], where: Mapping[str, Any]) -> np.ndarray:
    """Which label indices a ``where`` filter of :func:`read_table` can keep, ``[labels]``."""
    label_columns = {"label": np.arange(len(labels)), "label_name": np.array(labels)}
    passing = np.ones(len(labels), bool)
    for column, values in where.items():
        if column in label_columns:
            wanted = values if isinstance(values, list | tuple) else [values]
            passing &= np.isin(label_columns[column], wanted)
    return passing


def _first_per_label(
    labels: np.ndarray, candidates: np.ndarray, kept_per_label: np.ndarray, per_label: int
) -> np.ndarray:
    """Which candidate rows ``[n]`` still fit under ``per_label`` rows of their label;
    ``kept_per_label [labels]`` is updated with them."""
    keep = np.zeros(len(labels), bool)
    for row in np.flatnonzero(candidates):
        if kept_per_label[labels[row]] < per_label:
            kept_per_label[labels[row]] += 1
            keep[row] = True
    return keep


def label_counts(folder: str | Path, split: str) -> dict[str, int]:
    """Clips per label of a split, in the manifest's label order, counted by streaming
    the labels (no audio is decoded or held)."""
    import tensorflow as tf

    labels = read_manifest(folder).labels
    label_spec = {"label": tf.io.FixedLenFeature([], tf.int64)}
    records = tf.data.TFRecordDataset([str(path) for path in shard_paths(folder, split)])
    batches = records.batch(TABLE_BATCH).map(
        lambda serialized: tf.io.parse_example(serialized, label_spec)
    )
    counts = np.zeros(len(labels), np.int64)
    for batch in batches:
        counts += np.bincount(batch["label"].numpy(), minlength=len(labels))[: len(labels)]
    return {name: int(count) for name, count in zip(labels, counts, strict=True)}
