"""How fast an input pipeline delivers clips, and the per-file WAV pipeline we compare with.

The baseline is the TensorFlow audio tutorial's pipeline: ``list_files``, ``read_file``
and ``decode_wav`` per clip, with ``AUTOTUNE``. The kit's TFRecord pipeline
(:func:`course_lib.data.load_split`) reads large shards and parses whole batches at
once, which is why it is faster (``benchmarks/p2_pipeline.py`` measures by how much).

Used in: 01_speech_commands_tfrecords.ipynb and benchmarks/p2_pipeline.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path


def labelled_wav_files(folder: str | Path) -> tuple[list[Path], list[int], list[str]]:
    """WAV files in one subfolder per class (the Speech Commands layout).

    Folders starting with ``_`` (such as ``_background_noise_``) are not classes.

    Returns:
        ``(files, labels, class_names)``, classes sorted by name.
    """
    folder = Path(folder)
    class_names = sorted(
        child.name
        for child in folder.iterdir()
        if child.is_dir() and not child.name.startswith("_")
    )
    files, labels = [], []
    for index, name in enumerate(class_names):
        for path in sorted((folder / name).glob("*.wav")):
            files.append(path)
            labels.append(index)
    if not files:
        raise ValueError(f"no WAV files in class subfolders of {folder}.")
    return files, labels, class_names


def wav_file_dataset(
    files: Sequence[str | Path],
    labels: Sequence[int],
    clip_samples: int,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
):
    """The per-file baseline: one ``read_file`` + ``decode_wav`` per clip.

    Args:
        files: 16-bit WAV files at the target rate.
        labels: an int label per file.
        clip_samples: clips are zero-padded or cut to this length.
        batch_size: clips per batch.

    Returns:
        Batches ``(audio [batch, clip_samples, 1] float32, labels [batch] int32)``.
    """
    import tensorflow as tf

    if len(files) != len(labels):
        raise ValueError(f"got {len(files)} files but {len(labels)} labels.")
    if not files:
        raise ValueError("wav_file_dataset needs at least one file.")

    def load(path, label):
        waveform, _ = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1)
        waveform = waveform[:clip_samples]  # [n, 1] -> [<= clip_samples, 1]
        padding = clip_samples - tf.shape(waveform)[0]
        return tf.pad(waveform, [[0, padding], [0, 0]]), label

    dataset = tf.data.Dataset.from_tensor_slices(
        ([str(path) for path in files], tf.constant(labels, tf.int32))
    )
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def clips_per_second(dataset, max_batches: int | None = None, warmup_batches: int = 1) -> float:
    """Iterate over ``dataset`` once and return clips delivered per second.

    The first ``warmup_batches`` batches (graph tracing, file opening) are not timed.
    """
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator, None)
    clips = 0
    start = time.perf_counter()
    for batches, (audio, _) in enumerate(iterator, start=1):
        clips += int(audio.shape[0])
        if max_batches is not None and batches >= max_batches:
            break
    elapsed = time.perf_counter() - start
    if clips == 0:
        raise ValueError("the dataset gave no batches after the warm-up; use more data.")
    return clips / elapsed
