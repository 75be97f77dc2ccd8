"""P5: the inpainting round trip on a 4 s note is interactive on a CPU.

Target: encode a 4 s note with the VQ-VAE, resample a time-frequency region
of its code map with Naive Bayes, decode, and invert the spectrogram with Griffin-Lim,
with a median of at most 0.3 s on CPU.

The note is a keyboard note of the offline notes fixture (16 kHz). Each model gets one
training step on a few fixture notes, so that its codebook is initialised on the data
(k-means++) and its code maps are varied; speed does not depend on the weights otherwise.
The Naive Bayes model is fitted on those notes' code maps. The region is 1.0-2.0 s by
200-2000 Hz, resampled with the preset's sweeps and Griffin-Lim iterations. After one
untimed warm-up, the round trip (``course_lib.inpainting.inpaint_audio``) runs ``--runs``
times; the script prints the median and spread, and the median of each stage.

Usage: python benchmarks/p5_inpainting.py [--runs 20] [--presets quick,full]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import keras
import numpy as np

from course_lib import audio, inpainting, spectrogram
from course_lib.vq import VQConfig, build_vq_vae, spectrogram_images
from data_prep.fixtures import make_fixtures

TARGET_SECONDS = 0.3
TIME_RANGE = (1.0, 2.0)
FREQ_RANGE = (200.0, 2000.0)


def fixture_notes(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """A few 4 s fixture notes ``[n, samples]`` and one keyboard note ``[samples]``."""
    with tempfile.TemporaryDirectory() as folder:
        root = make_fixtures(folder, kind="notes", per_class=2).nsynth
        paths = sorted((root / "nsynth-valid" / "audio").glob("*.wav"))
        notes = np.stack([audio.load_audio(path, sample_rate)[0] for path in paths])
    keyboard = next(i for i, path in enumerate(paths) if path.name.startswith("keyboard"))
    return notes, notes[keyboard]


def timed(function, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float]) -> str:
    quartiles = statistics.quantiles(seconds, n=4)
    return (
        f"median {statistics.median(seconds):.3f} s, quartiles {quartiles[0]:.3f}-"
        f"{quartiles[2]:.3f} s, range {min(seconds):.3f}-{max(seconds):.3f} s"
    )


def benchmark(preset: str, runs: int) -> float:
    cfg = VQConfig.for_mode(preset)
    spec = cfg.spec
    notes, note = fixture_notes(cfg.sample_rate)
    images = spectrogram_images(notes, spec)
    keras.utils.set_random_seed(0)
    model = build_vq_vae(cfg=cfg)
    model.fit(images, epochs=1, batch_size=len(images), verbose=0)  # codebook on the data
    naive_bayes = inpainting.CodeNaiveBayes(cfg.codebook_size, cfg.radius)
    naive_bayes.fit(model.encode_codes(images))
    frames, bins = spec.shape(note.size)
    print(
        f"\n{preset} preset: a {note.size / cfg.sample_rate:.0f} s note at {cfg.sample_rate} Hz, "
        f"{frames} x {bins} spectrogram, widths {cfg.widths}, "
        f"code map {frames // model.downsampling_factor} x {bins // model.downsampling_factor}, "
        f"{cfg.codebook_size} codes, {model.count_params():,} weights, radius {cfg.radius}, "
        f"{cfg.sweeps} sweeps, {cfg.griffin_lim_iterations} Griffin-Lim iterations"
    )

    def round_trip():
        return inpainting.inpaint_audio(
            note,
            model,
            naive_bayes,
            spec,
            TIME_RANGE,
            FREQ_RANGE,
            sweeps=cfg.sweeps,
            temperature=cfg.temperature,
            seed=0,
            iterations=cfg.griffin_lim_iterations,
        )

    result = round_trip()  # warm-up: traces Griffin-Lim, builds the conv kernels
    image = result.before_image[None]
    codes = result.before_codes[None]
    box = (result.time_slice, result.freq_slice)
    stages = {
        "spectrogram": lambda: spectrogram.to_spectrogram(note[None], spec),
        "encode": lambda: model.encode_codes(image),  # 4 s: frames divide by the factor
        "resample": lambda: naive_bayes.resample_region(codes, *box, sweeps=cfg.sweeps),
        "decode (whole map)": lambda: model.decode_codes(codes),
        "griffin-lim": lambda: spectrogram.to_audio(
            image, note.size, spec, cfg.griffin_lim_iterations
        ),
    }
    for function in stages.values():
        function()
    total = timed(round_trip, runs)
    print(f"  round trip over {runs} runs: {summary(total)}")
    print(
        "  stages (median of 5): "
        + ", ".join(
            f"{name} {1000 * statistics.median(timed(function, 5)):.0f} ms"
            for name, function in stages.items()
        )
    )
    median = statistics.median(total)
    verdict = "meets" if median <= TARGET_SECONDS else "misses"
    changed = result.changed_fraction
    print(f"  {verdict} P5 (median <= {TARGET_SECONDS} s); {changed:.0%} of the box changed")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--presets", default="quick,full", help="comma-separated presets")
    args = parser.parse_args()
    print("P5: inpainting round trip (encode, resample, decode, Griffin-Lim), CPU")
    for preset in args.presets.split(","):
        benchmark(preset.strip(), args.runs)


if __name__ == "__main__":
    main()
