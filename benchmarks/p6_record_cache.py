"""P6: what ``load_split(..., cache=True)`` costs in RAM, and what dropping it costs in speed.

``cache=True`` keeps a split's serialized records in memory after the first epoch (int16
PCM: 2 bytes per sample, about 1.0 GB for SC09's 31,158 training clips at 16 kHz).
This script writes ``--clips`` one-second 16 kHz clips as TFRecords on the local disk and,
for each way of reading them (records cached in memory, a cache file on the local disk,
no cache), runs ``--epochs`` epochs in a fresh interpreter and prints the peak resident
memory above the start (``VmHWM`` after ``/proc/self/clear_refs``, as
``tests/test_memory.py``) and the clips per second of the epochs after the first.

Usage: python benchmarks/p6_record_cache.py [--clips 4000] [--epochs 3] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 16000
WAYS = ("memory", "file", "none")


def write_dataset(folder: Path, clips: int, shards: int = 4) -> None:
    from course_lib import audio, data

    rng = np.random.default_rng(0)
    for shard in range(shards):
        examples = [
            data.serialize_example(
                audio.to_pcm16((0.1 * rng.standard_normal(RATE)).astype(np.float32)),
                RATE,
                index % 10,
                str(index % 10),
                source=f"{index}.wav",
            )
            for index in range(shard, clips, shards)
        ]
        data.write_shard(folder / data.shard_name("train", shard, shards), examples)
    splits = {"train": {"examples": clips, "shards": shards}}
    labels = [str(label) for label in range(10)]
    data.write_manifest(folder, data.Manifest(RATE, RATE, labels, splits, [], "p6"))


def _kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


def measure(folder: Path, way: str, epochs: int, batch: int) -> dict[str, float]:
    """One way of reading, in this interpreter: peak MB above start, clips/s after epoch 1."""
    import tensorflow as tf

    records = tf.data.TFRecordDataset([str(p) for p in sorted(folder.glob("train-*"))])
    if way == "memory":
        records = records.cache()
    elif way == "file":
        records = records.cache(str(folder / "cache" / "train"))
        (folder / "cache").mkdir(exist_ok=True)
    from course_lib import data

    clip_samples = data.read_manifest(folder).clip_samples
    dataset = (
        records.shuffle(8 * batch, seed=0)
        .batch(batch)
        .map(lambda s: data.parse_batch(s, clip_samples), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in dataset.take(2):  # warm-up: kernels and thread pools
        pass
    Path("/proc/self/clear_refs").write_text("5")
    start = _kib("VmRSS")
    seconds, clips = [], 0
    for _ in range(epochs):
        began, clips = time.perf_counter(), 0
        for audio, _ in dataset:
            clips += int(audio.shape[0])
        seconds.append(time.perf_counter() - began)
    return {
        "peak_mb": (_kib("VmHWM") - start) / 1024,
        "clips_per_second": clips * (epochs - 1) / sum(seconds[1:]),
        "first_epoch_s": seconds[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        write_dataset(folder, args.clips)
        record_mb = sum(p.stat().st_size for p in folder.glob("train-*")) / 2**20
        print(f"{args.clips} clips, {record_mb:.0f} MB of records")
        for way in WAYS:
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    way,
                    str(folder),
                    str(args.epochs),
                    str(args.batch),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"cache {way:>6}: peak {result['peak_mb']:6.0f} MB above start, "
                f"{result['clips_per_second']:7.0f} clips/s after the first epoch "
                f"(first epoch {result['first_epoch_s']:.1f} s)"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        way, folder, epochs, batch = sys.argv[2:]
        print(json.dumps(measure(Path(folder), way, int(epochs), int(batch))))
    else:
        main()
