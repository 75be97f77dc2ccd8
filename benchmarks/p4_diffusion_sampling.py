"""P4: DDIM with 50 steps vs DDPM with 1,000 steps, same model, measured in one run.

Target: generating a batch of clips with DDIM (Song et al. 2021) in 50
network evaluations is >= 15x faster than ancestral DDPM sampling (Ho et al. 2020,
Algorithm 2) over all 1,000 diffusion steps, on the same model and batch.

The model has the quick preset's DiffWave network (16 residual channels, 6 layers,
dilation cycle 3, 4 kHz, 1 s clips) unless ``--preset full`` is given, with a linear
schedule of ``--diffusion-steps`` steps (Ho et al.'s 1,000 by default). Its weights are
random: the speed does not depend on them. Both samplers are compiled (traced) by a
short warm-up run that is not timed; the progress bar is off.

Usage: python benchmarks/p4_diffusion_sampling.py [--preset quick|full] [--clips 8]
    [--diffusion-steps 1000] [--ddim-steps 50]
"""

from __future__ import annotations

import argparse
import time

import keras

from course_lib.diffusion import DiffusionConfig, build_diffusion_model


def seconds_for(model, clips: int, sampler: str, steps: int) -> float:
    """Wall-clock seconds of one ``generate`` call (no progress bar)."""
    started = time.perf_counter()
    model.generate(clips, steps=steps, sampler=sampler, seed=0, batch_size=clips, progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=("quick", "full"), default="quick")
    parser.add_argument("--clips", type=int, default=8, help="clips generated in one batch")
    parser.add_argument("--diffusion-steps", type=int, default=1000)
    parser.add_argument("--ddim-steps", type=int, default=50)
    args = parser.parse_args()

    config = DiffusionConfig.for_mode(args.preset).replace(
        schedule="linear", diffusion_steps=args.diffusion_steps, beta_start=1e-4, beta_end=0.02
    )
    keras.utils.set_random_seed(0)
    model = build_diffusion_model(config)
    print(
        f"{args.preset} network: {config.residual_channels} channels, "
        f"{config.residual_layers} layers, cycle {config.dilation_cycle}; "
        f"{args.clips} clips of {model.clip_samples} samples; T = {args.diffusion_steps}"
    )
    for sampler in ("ddim", "ddpm"):  # trace the compiled denoiser for this batch shape
        seconds_for(model, args.clips, sampler, 2)

    ddim = seconds_for(model, args.clips, "ddim", args.ddim_steps)
    ddpm = seconds_for(model, args.clips, "ddpm", args.diffusion_steps)
    print(
        f"DDIM, {args.ddim_steps} steps: {ddim:.2f} s ({1000 * ddim / args.ddim_steps:.1f} ms/step)"
    )
    print(
        f"DDPM, {args.diffusion_steps} steps: {ddpm:.2f} s "
        f"({1000 * ddpm / args.diffusion_steps:.1f} ms/step)"
    )
    print(
        f"P4 speed-up (DDPM {args.diffusion_steps} / DDIM {args.ddim_steps}): {ddpm / ddim:.1f}x "
        f"(target >= 15x; the step-count ratio is {args.diffusion_steps / args.ddim_steps:.0f}x)"
    )


if __name__ == "__main__":
    main()
