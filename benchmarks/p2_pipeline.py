"""P2: the kit's TFRecord pipeline vs a per-file WAV pipeline, clips/s measured in one run.

Target: ``course_lib.data.load_split`` delivers >= 3x the clips per second
of the TensorFlow tutorial's per-file pipeline (``list_files``, ``read_file``,
``decode_wav``, AUTOTUNE) on the same 16 kHz one-second clips, batch 64.

Usage: python benchmarks/p2_pipeline.py [--clips 3000] [--batches 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from course_lib import audio, data, throughput
from data_prep.speech_commands import convert_speech_commands

RATE = 16000
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def make_wav_folder(folder: Path, clips: int, seed: int = 0) -> None:
    """``clips`` one-second 16-bit WAVs of noisy tones in the Speech Commands layout."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    for index in range(clips):
        word = WORDS[index % len(WORDS)]
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)
        samples = tone + 0.05 * rng.normal(size=RATE)
        speaker = f"{rng.integers(1 << 32):08x}"
        audio.write_wav(folder / word / f"{speaker}_nohash_0.wav", samples, RATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        source, out = Path(temporary) / "wavs", Path(temporary) / "tfrecords"
        make_wav_folder(source, args.clips)
        convert_speech_commands(source, out, sample_rate=RATE, progress=False)
        files, labels, _ = throughput.labelled_wav_files(source)
        per_file = throughput.wav_file_dataset(files, labels, RATE, batch_size=64).repeat()
        ours = data.load_split(out, "train", batch_size=64, repeat=True)
        speeds: dict[str, list[float]] = {"per-file WAV": [], "TFRecord shards": []}
        for _ in range(args.rounds):  # alternate, so machine noise hits both alike
            speeds["per-file WAV"].append(
                throughput.clips_per_second(per_file, max_batches=args.batches)
            )
            speeds["TFRecord shards"].append(
                throughput.clips_per_second(ours, max_batches=args.batches)
            )
    for name, values in speeds.items():
        print(f"{name:>16}: median {np.median(values):8.0f} clips/s  ({np.round(values)})")
    ratio = np.median(speeds["TFRecord shards"]) / np.median(speeds["per-file WAV"])
    print(f"P2 ratio (ours / per-file): {ratio:.1f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
