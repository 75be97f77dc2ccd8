"""Diffusion on waveforms: DDPM training and DDPM/DDIM sampling of a DiffWave or a 1-D
U-Net denoiser.

- ``schedules``: :class:`NoiseSchedule` (linear, Ho et al. 2020; cosine, Nichol &
  Dhariwal 2021), plain numpy;
- ``sampling``: :func:`add_noise`, :func:`predict_x0`, :func:`ddpm_step`,
  :func:`ddim_step`, :func:`ddim_timesteps` and the loop :func:`sample`; they know
  nothing about the network;
- ``denoiser``: :class:`DiffWaveDenoiser` (Kong et al. 2021) and its layers;
- ``unet``: :class:`UNetDenoiser`, a 1-D U-Net whose pyramid spans the whole clip;
- ``model``: :class:`DiffusionModel` (``fit``, EMA weights, classifier-free guidance,
  ``generate``) and :func:`build_diffusion_model`;
- ``settings``: :class:`DiffusionConfig` (full, quick and laptop presets).

Exports: imported here eagerly and listed in ``__all__``, so Keras knows them on import.

Used in: 03_diffusion.ipynb.
"""

from course_lib.diffusion.denoiser import (
    DiffusionStepEmbedding,
    DiffWaveDenoiser,
    DiffWaveResidualLayer,
    sinusoidal_step_encoding,
    spread_over_samples,
)
from course_lib.diffusion.model import DiffusionModel, build_diffusion_model
from course_lib.diffusion.sampling import (
    SAMPLERS,
    add_noise,
    check_sampler,
    ddim_step,
    ddim_timesteps,
    ddpm_step,
    noise_from_velocity,
    predict_x0,
    sample,
    velocity,
)
from course_lib.diffusion.schedules import SCHEDULE_NAMES, NoiseSchedule
from course_lib.diffusion.settings import (
    DENOISERS,
    PREDICTIONS,
    DiffusionConfig,
    unet_receptive_field,
)
from course_lib.diffusion.unet import ConditionedResidualBlock, UNetDenoiser

__all__ = [
    "DENOISERS",
    "PREDICTIONS",
    "SAMPLERS",
    "SCHEDULE_NAMES",
    "ConditionedResidualBlock",
    "DiffWaveDenoiser",
    "DiffWaveResidualLayer",
    "DiffusionConfig",
    "DiffusionModel",
    "DiffusionStepEmbedding",
    "NoiseSchedule",
    "UNetDenoiser",
    "add_noise",
    "build_diffusion_model",
    "check_sampler",
    "ddim_step",
    "ddim_timesteps",
    "ddpm_step",
    "noise_from_velocity",
    "predict_x0",
    "sample",
    "sinusoidal_step_encoding",
    "spread_over_samples",
    "unet_receptive_field",
    "velocity",
]
