"""Diffusion on waveforms: DDPM training and DDPM/DDIM sampling of a DiffWave network.

- ``schedules``: :class:`NoiseSchedule` (linear, Ho et al. 2020; cosine, Nichol &
  Dhariwal 2021), plain numpy;
- ``sampling``: :func:`add_noise`, :func:`predict_x0`, :func:`ddpm_step`,
  :func:`ddim_step`, :func:`ddim_timesteps` and the loop :func:`sample`; they know
  nothing about the network;
- ``denoiser``: :class:`DiffWaveDenoiser` (Kong et al. 2021) and its layers;
- ``model``: :class:`DiffusionModel` (``fit``, EMA weights, classifier-free guidance,
  ``generate``) and :func:`build_diffusion_model`;
- ``settings``: :class:`DiffusionConfig` (full and quick presets).

The names below load on first use, so the schedule and the settings can be used before
TensorFlow is imported. Import ``course_lib.diffusion.model`` (or touch
``diffusion.DiffusionModel``) before ``keras.saving.load_model`` on a saved model.

Used in: 03_diffusion.ipynb.
"""

from course_lib.lazy_exports import lazy_exports

_MODULE_OF = {
    "NoiseSchedule": "schedules",
    "SCHEDULE_NAMES": "schedules",
    "SAMPLERS": "sampling",
    "add_noise": "sampling",
    "check_sampler": "sampling",
    "ddim_step": "sampling",
    "ddim_timesteps": "sampling",
    "ddpm_step": "sampling",
    "predict_x0": "sampling",
    "sample": "sampling",
    "DiffWaveDenoiser": "denoiser",
    "DiffWaveResidualLayer": "denoiser",
    "DiffusionStepEmbedding": "denoiser",
    "sinusoidal_step_encoding": "denoiser",
    "DiffusionModel": "model",
    "build_diffusion_model": "model",
    "DiffusionConfig": "settings",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _MODULE_OF)
