"""P3: WaveNet fast (cached) generation vs naive, and batching, measured in one run.

Targets: with a receptive field of at least 4,000 samples, generating 4,000
samples with per-layer caches (Paine et al. 2016) is >= 20x faster than recomputing the
receptive field for every sample, with the same output distribution; and 16 clips in one
batch cost <= 3x one clip.

The model is the full preset's architecture (32 residual/dilation channels, 512 skip
channels, kernel 2) with dilations 1..512 repeated 4 times: receptive field 4,094. Its
weights are random: the speed does not depend on them. The naive generator costs the
same for every sample (one pass over a fixed window), so it is timed on ``--naive-steps``
samples and extrapolated linearly to ``--samples``; the output says so. Compilation
(tracing) is excluded from every timing; priming the caches is included.

Usage: python benchmarks/p3_wavenet_generation.py [--samples 4000] [--naive-steps 200]
    [--clips 16] [--repeats 4]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from course_lib.wavenet import FastGenerator, NaiveGenerator, WaveNet, dilation_stack


def seconds_for(generator, samples: int, clips: int) -> float:
    """Wall-clock seconds of one ``generate`` call (without a progress bar)."""
    started = time.perf_counter()
    generator.generate(samples, num_clips=clips, seed=0, progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument(
        "--naive-steps",
        type=int,
        default=200,
        help="naive samples actually timed, then extrapolated",
    )
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument(
        "--repeats", type=int, default=4, help="alternating fast measurements (median reported)"
    )
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = WaveNet(
        dilation_stack(512, 4),
        kernel_size=2,
        residual_channels=32,
        dilation_channels=32,
        skip_channels=512,
    )
    print(
        f"receptive field {model.receptive_field} samples, {len(model.blocks)} layers, "
        f"generating {args.samples} samples"
    )

    # Same distribution: both generators from the same history with the same draws.
    fast_one, naive = FastGenerator(model, 1), NaiveGenerator(model)
    check = {"num_samples": 100, "seed": 1, "progress": False, "keep_probabilities": True}
    fast_run, naive_run = fast_one.generate(**check), naive.generate(**check)
    same_samples = bool((fast_run.classes == naive_run.classes).all())
    difference = float(np.abs(fast_run.probabilities - naive_run.probabilities).max())
    print(
        f"same output distribution: max |p_fast - p_naive| = {difference:.2e} over 100 "
        f"steps, identical samples: {same_samples}"
    )

    naive_seconds = seconds_for(naive, args.naive_steps, 1)
    naive_total = naive_seconds * args.samples / args.naive_steps
    print(
        f"naive, 1 clip: {naive_seconds:.1f} s for {args.naive_steps} samples "
        f"({1000 * naive_seconds / args.naive_steps:.1f} ms/sample) -> "
        f"{naive_total:.0f} s for {args.samples} (extrapolated linearly)"
    )

    fast_batch = FastGenerator(model, args.clips)
    for generator in (fast_one, fast_batch):  # compile the loops that are timed
        generator.generate(generator.steps_per_call, seed=0, progress=False)
    one_clip, batch = [], []
    for _ in range(args.repeats):  # alternate, so machine noise hits both alike
        one_clip.append(seconds_for(fast_one, args.samples, 1))
        batch.append(seconds_for(fast_batch, args.samples, args.clips))
    fast_seconds, batch_seconds = float(np.median(one_clip)), float(np.median(batch))
    print(
        f"fast, 1 clip: {fast_seconds:.2f} s (median of {np.round(one_clip, 2).tolist()}), "
        f"{1000 * fast_seconds / args.samples:.2f} ms/sample"
    )
    print(
        f"fast, {args.clips} clips in one batch: {batch_seconds:.2f} s "
        f"(median of {np.round(batch, 2).tolist()})"
    )
    print(f"P3 speed-up (naive / fast, 1 clip): {naive_total / fast_seconds:.0f}x (target >= 20x)")
    print(
        f"P3 batch cost ({args.clips} clips / 1 clip): {batch_seconds / fast_seconds:.2f}x "
        f"(target <= 3x; one at a time would be {args.clips}x)"
    )


if __name__ == "__main__":
    main()
