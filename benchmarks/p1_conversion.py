"""P1: ``data_prep speech-commands`` vs the course's naive conversion, same files, one run.

The naive conversion is what a first course notebook does: one process, one
``librosa.load`` per file at the target rate, float features, one TFRecord file. The
floor is a bare ``soundfile.read`` loop over the same files (decoding only, nothing
written). Targets: ours >= 10x faster than naive, and >= 0.5x the speed
of the bare read loop.

The files are the spoken-word fixture, each clip copied under ``--copies`` speaker names
so the run has tens of thousands of files like the real dataset (105,829).

Run: ``python benchmarks/p1_conversion.py [--copies 20] [--sample-rate 16000]``

TensorFlow and librosa are imported inside the naive converter: the converter's worker
processes start with "spawn", which re-imports this script, and must stay light.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import soundfile

from data_prep.convert import default_workers
from data_prep.fixtures import make_fixtures
from data_prep.speech_commands import convert_speech_commands


def many_files(root: Path, copies: int) -> tuple[Path, list[Path]]:
    """The fixture with every clip repeated under ``copies`` speaker names."""
    source = make_fixtures(root / "fixture", kind="speech").speech_commands
    big = root / "speech_commands"
    files = []
    for word_folder in sorted(p for p in source.iterdir() if p.is_dir() and p.name[0] != "_"):
        (big / word_folder.name).mkdir(parents=True)
        for wav in sorted(word_folder.glob("*.wav")):
            for copy in range(copies):
                target = big / word_folder.name / f"{copy:02d}{wav.name}"
                shutil.copyfile(wav, target)
                files.append(target)
    return big, files


def naive_conversion(files: list[Path], out: Path, sample_rate: int) -> None:
    """One process, librosa.load per file, float features, a single TFRecord file."""
    import librosa
    import tensorflow as tf

    labels = {name: i for i, name in enumerate(sorted({f.parent.name for f in files}))}
    with tf.io.TFRecordWriter(str(out)) as writer:
        for path in files:
            samples, _ = librosa.load(path, sr=sample_rate)
            samples = librosa.util.fix_length(samples, size=sample_rate)
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "audio": tf.train.Feature(float_list=tf.train.FloatList(value=samples)),
                        "label": tf.train.Feature(
                            int64_list=tf.train.Int64List(value=[labels[path.parent.name]])
                        ),
                    }
                )
            )
            writer.write(example.SerializeToString())


def bare_read_loop(files: list[Path]) -> None:
    for path in files:
        soundfile.read(path, dtype="float32")


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source, files = many_files(root, args.copies)
        bare_read_loop(files)  # warm the page cache for every contender
        bare = timed(bare_read_loop, files)
        import tensorflow  # noqa: F401  (imported once, outside the timings)

        ours = timed(
            lambda: convert_speech_commands(
                source, root / "ours", args.sample_rate, workers=args.workers, progress=False
            )
        )
        naive = timed(naive_conversion, files, root / "naive.tfrecord", args.sample_rate)
        workers = args.workers or default_workers(files[0], args.sample_rate)  # files still exist
    count = len(files)
    print(
        f"{count} files of 1 s at 16000 Hz, target rate {args.sample_rate} Hz, "
        f"{workers} worker process(es), {os.cpu_count()} CPUs"
    )
    for name, seconds in (
        ("bare soundfile.read loop", bare),
        ("data_prep speech-commands", ours),
        ("naive librosa conversion", naive),
    ):
        print(f"  {name:<27} {seconds:7.2f} s  {count / seconds:8.0f} files/s")
    print(f"P1 ours vs naive:     {naive / ours:5.1f}x faster (target >= 10x)")
    print(f"P1 ours vs bare read: {bare / ours:5.2f}x its speed (target >= 0.5x)")


if __name__ == "__main__":
    main()
