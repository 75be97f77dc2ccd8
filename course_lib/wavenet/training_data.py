"""Training crops for WaveNet: random windows of receptive field + target length.

As in ibab/tensorflow-wavenet, every clip is trimmed of leading and trailing silence
(frames whose RMS is below a threshold), padded with ``receptive_field`` zeros in front
(so the first samples are learned from silence), and cut at a random place into a crop
of ``receptive_field + target_length`` samples. The crop is mu-law encoded to classes
``c``; the model reads ``c[:-1]`` and is scored on its last ``target_length`` outputs
against ``c[receptive_field:]``, the positions whose receptive field lies in the crop.

Two sources give the same batches:

- :func:`load_audio_folder` + :func:`crop_dataset`: a folder of audio files (any rate,
  resampled; labels from first-level subfolders), or arrays (:func:`corpus_from_arrays`);
- :func:`crop_dataset_from_records`: a converted TFRecord dataset (``course_lib.data``).

Used in: 06_wavenet.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from course_lib import audio


@dataclasses.dataclass
class AudioCorpus:
    """Clips ready to crop: trimmed, at one sample rate, with labels.

    Attributes:
        clips: float32 arrays ``[n_i]`` in [-1, 1], one per usable file.
        labels: int32 ``[num_clips]``, index into ``label_names``.
        label_names: the label of each index (first-level subfolder names).
        sample_rate: the clips' rate in Hz.
        skipped: ``(file, reason)`` for every file that could not be used.
    """

    clips: list[np.ndarray]
    labels: np.ndarray
    label_names: list[str]
    sample_rate: int
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def total_samples(self) -> int:
        return int(sum(clip.shape[0] for clip in self.clips))


def frame_rms(samples: np.ndarray, frame_length: int) -> np.ndarray:
    """RMS of consecutive frames (the last one may be shorter): ``[n] -> [ceil(n / frame)]``."""
    count = -(-samples.shape[0] // frame_length)
    padded = np.zeros(count * frame_length, np.float32)
    padded[: samples.shape[0]] = samples
    frames = padded.reshape(count, frame_length)  # [frames, frame_length]
    lengths = np.full(count, frame_length, np.float32)
    lengths[-1] = samples.shape[0] - (count - 1) * frame_length
    return np.sqrt((frames**2).sum(axis=1) / lengths)


def trim_silence(
    samples: np.ndarray, threshold: float = 0.01, frame_length: int = 512
) -> np.ndarray:
    """Cut leading and trailing frames whose RMS is below ``threshold``.

    Args:
        samples: float ``[n]``.
        threshold: frame RMS (amplitude, not dB) under which a frame is silence; 0
            keeps everything.
        frame_length: samples per frame.

    Returns:
        ``samples[first_loud_frame_start : last_loud_frame_end]``; empty if all is silence.
    """
    samples = np.asarray(samples, np.float32).reshape(-1)
    if threshold <= 0 or samples.size == 0:
        return samples
    loud = np.flatnonzero(frame_rms(samples, frame_length) >= threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] * frame_length : (loud[-1] + 1) * frame_length]


def align_onset(
    samples: np.ndarray, onset: int, frame_length: int, fraction: float = 0.1
) -> np.ndarray:
    """Move a clip's word so that it starts at sample ``onset``, keeping the clip's length.

    The word starts at the first frame whose RMS reaches ``fraction`` of the loudest
    frame's, and ends with the last such frame. Shifting the clip by ``onset - start``
    moves silence out at one end and zeros in at the other. A word too long to start at
    ``onset`` starts as near to it as the clip allows: the shift never pushes a frame of
    the word out of the clip, so no part of the word is lost.

    Word-over-time conditioning (``model.WaveNet``'s ``label_frames``) tells the model
    where in the clip it is; aligned clips make that *where in the word*.

    Args:
        samples: float ``[n]``.
        onset: the clip position where the word should start, ``0 <= onset < n``.
        frame_length: samples per RMS frame (10 ms is ``sample_rate // 100``).
        fraction: a frame belongs to the word from this share of the loudest frame's RMS.

    Returns:
        float32 ``[n]``, the clip shifted; empty if the clip is all zeros.
    """
    samples = np.asarray(samples, np.float32).reshape(-1)
    length = samples.shape[0]
    if not 0 <= onset < max(length, 1) or frame_length < 1 or not 0 < fraction <= 1:
        raise ValueError(
            f"need 0 <= onset < clip length ({length}), frame_length >= 1 and 0 < fraction "
            f"<= 1, got onset={onset}, frame_length={frame_length}, fraction={fraction}."
        )
    rms = frame_rms(samples, frame_length)
    if rms.max(initial=0.0) <= 0.0:
        return samples[:0]
    loud = np.flatnonzero(rms >= fraction * rms.max())
    start = loud[0] * frame_length
    end = min((loud[-1] + 1) * frame_length, length)
    shift = int(np.clip(onset - start, -start, length - end))  # the word stays whole
    aligned = np.zeros_like(samples)
    if shift >= 0:
        aligned[shift:] = samples[: length - shift]
    else:
        aligned[:shift] = samples[-shift:]
    return aligned


def corpus_from_arrays(
    clips: Sequence[np.ndarray],
    sample_rate: int,
    labels: Sequence[int] | None = None,
    label_names: Sequence[str] | None = None,
    silence_threshold: float = 0.01,
) -> AudioCorpus:
    """An :class:`AudioCorpus` from in-memory clips (e.g. synthetic sines).

    Raises:
        ValueError: no clip keeps any sample after trimming silence.
    """
    labels = np.zeros(len(clips), np.int32) if labels is None else np.asarray(labels, np.int32)
    if labels.shape != (len(clips),):
        raise ValueError(f"got {len(clips)} clips but {labels.shape[0]} labels.")
    names = (
        list(label_names)
        if label_names is not None
        else [str(index) for index in range(int(labels.max(initial=0)) + 1)]
    )
    kept, kept_labels, skipped = [], [], []
    for index, (clip, label) in enumerate(zip(clips, labels, strict=True)):
        trimmed = trim_silence(clip, silence_threshold)
        if trimmed.size == 0:
            skipped.append((f"clip {index}", "silent (every frame below the threshold)"))
            continue
        kept.append(np.clip(trimmed, -1.0, 1.0).astype(np.float32))
        kept_labels.append(label)
    if not kept:
        raise ValueError(
            "no usable audio: every clip is silent after trimming "
            f"(silence_threshold={silence_threshold})."
        )
    return AudioCorpus(kept, np.asarray(kept_labels, np.int32), names, sample_rate, skipped)


def load_audio_folder(
    folder: str | Path, sample_rate: int, silence_threshold: float = 0.01
) -> AudioCorpus:
    """Load, resample and trim every audio file under ``folder``.

    Labels are the first-level subfolders (``folder/yes/a.wav`` has label ``yes``; files
    directly in ``folder`` get the folder's own name). Folders whose name starts with
    ``_`` or ``.`` (such as Speech Commands' ``_background_noise_``) are ignored.

    Args:
        folder: the audio folder (WAV, FLAC, OGG, ..., any rate and channel count).
        sample_rate: the rate to resample to, in Hz.
        silence_threshold: frame RMS under which leading/trailing audio is cut.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
        ValueError: no usable audio (the message counts the files and gives reasons).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"--data-dir {folder} is not a folder.")
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and audio.is_audio_file(path)
        and not any(part.startswith(("_", ".")) for part in path.relative_to(folder).parts[:-1])
    )
    entries, skipped = [], []
    for path in files:
        relative = path.relative_to(folder)
        try:
            samples, _ = audio.load_audio(path, sample_rate)
        except (audio.AudioDecodeError, ValueError) as error:
            skipped.append((str(relative), str(error)))
            continue
        trimmed = trim_silence(samples, silence_threshold)
        if trimmed.size == 0:
            skipped.append((str(relative), "silent (every frame below the threshold)"))
            continue
        name = relative.parts[0] if len(relative.parts) > 1 else folder.name
        entries.append((name, trimmed))
    if not entries:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped[:3])
        raise ValueError(
            f"no usable audio in {folder}: {len(files)} audio files found"
            + (f", none usable ({reasons})" if skipped else "")
            + ". Point --data-dir at a folder of WAV/FLAC files."
        )
    names = sorted({name for name, _ in entries})
    labels = np.asarray([names.index(name) for name, _ in entries], np.int32)
    return AudioCorpus([clip for _, clip in entries], labels, names, sample_rate, skipped)


def crop_length(receptive_field: int, target_length: int) -> int:
    """Samples per training crop: the receptive field plus the predicted samples."""
    if receptive_field < 1 or target_length < 1:
        raise ValueError(
            f"receptive_field and target_length must be >= 1, got "
            f"{receptive_field} and {target_length}."
        )
    return receptive_field + target_length


def _crop_and_encode(
    samples, index, receptive_field: int, length: int, seed: int, quantization_channels: int
):
    """One random crop of a clip as mu-law classes: ``[n] -> ([length] int32, start)``,
    ``start`` being the clip position of the crop's first predicted sample (its input
    number ``receptive_field``, whose prediction comes from input ``receptive_field - 1``)
    minus ``receptive_field - 1``: the clip position predicted at the crop's first step."""
    import tensorflow as tf

    samples = tf.reshape(samples, [-1])
    # Silence in front (the first samples are predicted from silence), and behind if short.
    tail = tf.maximum(length - tf.shape(samples)[0] - receptive_field, 0)
    padded = tf.pad(samples, [[receptive_field, tail]])  # [rf + n + tail]
    last_start = tf.shape(padded)[0] - length
    start = tf.random.stateless_uniform(
        [],
        seed=tf.stack([tf.cast(index, tf.int32), seed]),
        minval=0,
        maxval=last_start + 1,
        dtype=tf.int32,
    )
    crop = padded[start : start + length]  # [length]
    # Input i of the crop is padded[start + i], clip position start + i - rf; its
    # prediction is the next sample, clip position start + i - rf + 1.
    return audio.mu_law_encode(crop, quantization_channels), start - receptive_field + 1


def _crops_to_batches(
    clips,
    receptive_field: int,
    target_length: int,
    batch_size: int,
    seed: int,
    with_labels: bool,
    quantization_channels: int,
    with_starts: bool = False,
):
    """Shared tail: ``(samples [n], label)`` elements -> ``(x, y)`` training batches."""
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    length = crop_length(receptive_field, target_length)

    def crop(index, element):
        samples, label = element
        classes, start = _crop_and_encode(
            samples, index, receptive_field, length, seed, quantization_channels
        )
        return classes, label, start

    def split(classes, labels, starts):
        inputs = classes[:, :-1]  # [b, length - 1]
        targets = classes[:, receptive_field:]  # [b, target_length], the next samples
        if with_starts:
            return (inputs, labels, starts), targets
        return ((inputs, labels) if with_labels else inputs), targets

    batches = (
        clips.enumerate()
        .map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=True)  # static shapes for XLA and distribution
        .map(split)
    )
    return batches.prefetch(tf.data.AUTOTUNE)


def crop_dataset(
    corpus: AudioCorpus,
    receptive_field: int,
    target_length: int,
    batch_size: int,
    seed: int = 0,
    with_labels: bool = False,
    quantization_channels: int = 256,
    with_starts: bool = False,
):
    """An endless ``tf.data.Dataset`` of random training crops from a corpus.

    Args:
        corpus: trimmed clips (:func:`load_audio_folder` or :func:`corpus_from_arrays`).
        receptive_field: the model's receptive field.
        target_length: predicted samples per crop.
        batch_size: crops per batch.
        seed: shuffling and crop-position seed (the same seed gives the same batches).
        with_labels: yield ``(classes, labels)`` inputs for a conditioned model.
        quantization_channels: mu-law classes.
        with_starts: yield ``(classes, labels, starts [batch])`` for word-over-time
            conditioning (``model.WaveNet``): the clip position predicted at each crop's
            first step. Its corpus should keep the clips' silence (``silence_threshold
            = 0``), or positions count from the trimmed start.

    Returns:
        Batches ``(x, y)``: x = classes ``[batch, rf + target_length - 1]`` int32 (or
        ``(classes, labels [batch])``), y = classes ``[batch, target_length]``.
    """
    import tensorflow as tf

    lengths = np.asarray([clip.shape[0] for clip in corpus.clips], np.int64)
    flat = np.concatenate(corpus.clips).astype(np.float32)
    ragged = tf.RaggedTensor.from_row_lengths(flat, lengths)  # [clips, (samples)]
    clips = (
        tf.data.Dataset.from_tensor_slices((ragged, corpus.labels))
        .repeat()
        .shuffle(min(len(corpus.clips), 4096), seed=seed)
    )
    return _crops_to_batches(
        clips,
        receptive_field,
        target_length,
        batch_size,
        seed,
        with_labels,
        quantization_channels,
        with_starts,
    )


def crop_dataset_from_records(
    folder: str | Path,
    receptive_field: int,
    target_length: int,
    batch_size: int,
    split: str = "train",
    seed: int = 0,
    with_labels: bool = False,
    silence_threshold: float = 0.01,
    quantization_channels: int = 256,
    word_onset: int | None = None,
):
    """Like :func:`crop_dataset`, streaming a converted TFRecord dataset.

    Clips come from ``course_lib.data.load_split`` (``[b, n, 1]`` audio and labels),
    are trimmed of silence, and silent clips are dropped. With ``word_onset``, for
    word-over-time conditioning, clips keep their length and silence instead: each one's
    word is moved to start at that clip position (:func:`align_onset`), and the batches
    carry the crops' clip positions, ``((classes, labels, starts), targets)``.

    Args:
        folder: the converted dataset (shards and ``manifest.json``).
        split: which split to read.
        word_onset: the clip position (samples) to align every word's start to; None
            trims silence instead.
        Others: as in :func:`crop_dataset`.
    """
    import tensorflow as tf

    from course_lib import data

    if word_onset is not None:
        rate = data.read_manifest(folder).sample_rate

        def prepare(samples):
            return align_onset(samples, word_onset, frame_length=max(1, rate // 100))
    else:

        def prepare(samples):
            return trim_silence(samples, silence_threshold)

    def prepared(samples, label):
        kept = tf.numpy_function(prepare, [samples[:, 0]], tf.float32)  # [n, 1] -> [m]
        kept.set_shape([None])
        return kept, label

    clips = (
        data.load_split(folder, split, batch_size=256, shuffle=True, seed=seed, repeat=True)
        .unbatch()
        .map(prepared, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .filter(lambda samples, label: tf.size(samples) > 0)
    )
    return _crops_to_batches(
        clips,
        receptive_field,
        target_length,
        batch_size,
        seed,
        with_labels or word_onset is not None,
        quantization_channels,
        with_starts=word_onset is not None,
    )
