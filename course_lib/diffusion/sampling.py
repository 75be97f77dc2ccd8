"""Noising and denoising steps of a diffusion, and the DDPM and DDIM sampling loops.

Nothing here knows the network: a step takes the network's noise prediction as a
tensor, and :func:`sample` takes any ``denoise_fn(x_t, t_batch) -> eps``. Tensors are
``[batch, ...]`` (``[batch, samples, 1]`` for audio); a step ``t`` is either a Python
int (the same step for the whole batch; coefficients are then computed in float64) or
an int tensor ``[batch]`` (one step per example, as in training).

- :func:`add_noise`: x_t from x_0 in one jump (Ho et al. 2020, eq. 4);
- :func:`predict_x0`: the clean audio implied by a noise prediction;
- :func:`ddpm_step`: one step of ancestral sampling (Ho eq. 11, Algorithm 2);
- :func:`ddim_step`: one step of DDIM (Song et al. 2021, eq. 12), deterministic for
  eta = 0, which can skip steps;
- :func:`ddim_timesteps`, :func:`sample`: the loops.

Used in: 03_diffusion.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from keras import ops
from tqdm.auto import tqdm

from course_lib.diffusion.schedules import NoiseSchedule

SAMPLERS: tuple[str, ...] = ("ddim", "ddpm")
DenoiseFn = Callable[[Any, Any], Any]


def _is_step_index(t) -> bool:
    return isinstance(t, (int, np.integer)) and not isinstance(t, bool)


def _at_step(values: np.ndarray, t, like, offset: int = 0):
    """``values[t + offset]`` shaped to broadcast against ``like`` ``[batch, ...]``.

    A Python int ``t`` gives a Python float (float64 arithmetic); a tensor ``[batch]``
    gives a float32 tensor ``[batch, 1, ..., 1]``.
    """
    if _is_step_index(t):
        index = int(t) + offset
        if not 0 <= index < len(values):
            raise ValueError(
                f"step {int(t)} is outside 0..{len(values) - 1 - offset} for this schedule."
            )
        return float(values[index])
    table = ops.convert_to_tensor(values.astype(np.float32))
    picked = ops.take(table, ops.cast(t, "int32") + offset)  # [batch]
    return ops.reshape(picked, (-1,) + (1,) * (len(like.shape) - 1))  # [batch, 1, ..., 1]


def add_noise(x0, noise, t, schedule: NoiseSchedule):
    """Noisy audio at step t, straight from the clean audio (Ho et al. 2020, eq. 4):

        x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

    Args:
        x0: clean audio ``[batch, samples, 1]`` (any ``[batch, ...]`` shape).
        noise: eps ~ N(0, I), same shape as ``x0``.
        t: step index (int) or ``[batch]`` int tensor, in ``0 .. T - 1``.
        schedule: the noise schedule.

    Returns:
        x_t, same shape as ``x0``.
    """
    x0 = ops.convert_to_tensor(x0, "float32")
    signal_rate = _at_step(schedule.signal_rates, t, x0)
    noise_rate = _at_step(schedule.noise_rates, t, x0)
    return signal_rate * x0 + noise_rate * ops.convert_to_tensor(noise, "float32")


def predict_x0(x_t, eps, t, schedule: NoiseSchedule):
    """The clean audio implied by a noise prediction, eq. 4 solved for x_0:

        x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t).

    Args:
        x_t: noisy audio ``[batch, ...]``.
        eps: predicted noise, same shape.
        t: step index (int) or ``[batch]`` int tensor.
        schedule: the noise schedule.
    """
    x_t = ops.convert_to_tensor(x_t, "float32")
    signal_rate = _at_step(schedule.signal_rates, t, x_t)
    noise_rate = _at_step(schedule.noise_rates, t, x_t)
    return (x_t - noise_rate * ops.convert_to_tensor(eps, "float32")) / signal_rate


def velocity(x0, noise, t, schedule: NoiseSchedule):
    """The velocity target of v-prediction (Salimans & Ho 2022, sec. 4):

        v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0.

    A network that predicts v instead of eps must still get x_0 right at high noise,
    where eps-prediction's loss barely weighs it: the word's shape over the whole clip
    is learned early.

    Args:
        x0: clean audio ``[batch, ...]``.
        noise: eps, same shape.
        t: step index (int) or ``[batch]`` int tensor.
        schedule: the noise schedule.
    """
    x0 = ops.convert_to_tensor(x0, "float32")
    signal_rate = _at_step(schedule.signal_rates, t, x0)
    noise_rate = _at_step(schedule.noise_rates, t, x0)
    return signal_rate * ops.convert_to_tensor(noise, "float32") - noise_rate * x0


def noise_from_velocity(x_t, v, t, schedule: NoiseSchedule):
    """eps from a predicted velocity: ``sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v``
    (since alpha_bar_t + (1 - alpha_bar_t) = 1), so every sampler works on eps.

    Args:
        x_t: noisy audio ``[batch, ...]``.
        v: predicted velocity, same shape.
        t: step index (int) or ``[batch]`` int tensor.
        schedule: the noise schedule.
    """
    x_t = ops.convert_to_tensor(x_t, "float32")
    signal_rate = _at_step(schedule.signal_rates, t, x_t)
    noise_rate = _at_step(schedule.noise_rates, t, x_t)
    return noise_rate * x_t + signal_rate * ops.convert_to_tensor(v, "float32")


def ddpm_step(x_t, eps_pred, t, schedule: NoiseSchedule, noise=None):
    """One step of ancestral sampling, x_t -> x_{t-1} (Ho et al. 2020, eq. 11, Algorithm 2):

        x_{t-1} = 1 / sqrt(alpha_t) * (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps)
                  + sigma_t z,      sigma_t^2 = beta_t,   z ~ N(0, I),

    with no noise at the last step (t = 0), which returns the mean.

    Args:
        x_t: noisy audio ``[batch, ...]``.
        eps_pred: the network's noise prediction, same shape.
        t: step index (int) or ``[batch]`` int tensor.
        schedule: the noise schedule.
        noise: z, same shape as ``x_t``; may be None only when t = 0 (an int).

    Returns:
        x_{t-1}, same shape as ``x_t``.
    """
    x_t = ops.convert_to_tensor(x_t, "float32")
    eps_pred = ops.convert_to_tensor(eps_pred, "float32")
    sigmas = np.sqrt(schedule.betas)
    sigmas[0] = 0.0  # no noise is added on the way to x_0
    inverse_sqrt_alpha = _at_step(1.0 / np.sqrt(schedule.alphas), t, x_t)
    eps_weight = _at_step(schedule.betas / schedule.noise_rates, t, x_t)
    sigma = _at_step(sigmas, t, x_t)
    mean = inverse_sqrt_alpha * (x_t - eps_weight * eps_pred)
    if noise is None:
        if _is_step_index(t) and sigma == 0.0:
            return mean
        raise ValueError("ddpm_step needs noise (z ~ N(0, I)) at every step but t = 0.")
    return mean + sigma * ops.convert_to_tensor(noise, "float32")


def ddim_step(x_t, eps_pred, t, t_prev, schedule: NoiseSchedule, eta: float = 0.0, noise=None):
    """One DDIM step, x_t -> x_{t_prev} (Song et al. 2021, eq. 12):

        x_prev = sqrt(alpha_bar_prev) * x0_hat                      "predicted x_0"
                 + sqrt(1 - alpha_bar_prev - sigma^2) * eps          "direction to x_t"
                 + sigma z,
        sigma  = eta * sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t))
                     * sqrt(1 - alpha_bar_t / alpha_bar_prev)        (eq. 16),

    with x0_hat from :func:`predict_x0`. eta = 0 is deterministic; eta = 1 has the
    variance of DDPM's posterior. ``t_prev`` may be any earlier step, so a few steps
    can cross the whole diffusion; ``t_prev = -1`` means the clean audio
    (alpha_bar = 1), where the step returns x0_hat.

    Args:
        x_t: noisy audio ``[batch, ...]``.
        eps_pred: the network's noise prediction, same shape.
        t: step index (int) or ``[batch]`` int tensor.
        t_prev: the step to jump to, ``-1 <= t_prev < t`` (int or ``[batch]`` tensor).
        schedule: the noise schedule.
        eta: 0 for deterministic DDIM, 1 for DDPM-like noise.
        noise: z, same shape as ``x_t``; may be None when sigma = 0 (eta = 0 or t_prev = -1).

    Returns:
        x_{t_prev}, same shape as ``x_t``.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0 = deterministic DDIM), got {eta}.")
    if _is_step_index(t) and _is_step_index(t_prev) and not -1 <= t_prev < t:
        raise ValueError(f"t_prev must satisfy -1 <= t_prev < t, got t={t}, t_prev={t_prev}.")
    x_t = ops.convert_to_tensor(x_t, "float32")
    eps_pred = ops.convert_to_tensor(eps_pred, "float32")
    alpha_bars_from_start = np.concatenate([[1.0], schedule.alpha_bars])  # index t + 1
    alpha_bar = _at_step(alpha_bars_from_start, t, x_t, offset=1)
    alpha_bar_prev = _at_step(alpha_bars_from_start, t_prev, x_t, offset=1)
    x0_hat = (x_t - (1.0 - alpha_bar) ** 0.5 * eps_pred) / alpha_bar**0.5
    sigma = (
        eta
        * ((1.0 - alpha_bar_prev) / (1.0 - alpha_bar)) ** 0.5
        * (1.0 - alpha_bar / alpha_bar_prev) ** 0.5
    )
    if isinstance(sigma, float):  # one step for the whole batch: float64 coefficients
        direction_weight = math.sqrt(max(1.0 - alpha_bar_prev - sigma**2, 0.0))
    else:
        direction_weight = ops.sqrt(ops.maximum(1.0 - alpha_bar_prev - sigma**2, 0.0))
    x_prev = alpha_bar_prev**0.5 * x0_hat + direction_weight * eps_pred
    if eta == 0 or (isinstance(sigma, float) and sigma == 0.0):
        return x_prev
    if noise is None:
        raise ValueError("ddim_step needs noise (z ~ N(0, I)) when eta > 0 and t_prev >= 0.")
    return x_prev + sigma * ops.convert_to_tensor(noise, "float32")


def ddim_timesteps(total: int, steps: int) -> np.ndarray:
    """``steps`` step indices evenly spaced over ``0 .. total - 1``, in descending order.

    The first is always ``total - 1`` (start from the noisiest step) and, when
    ``steps > 1``, the last is 0. ``steps == total`` visits every step.

    Example:
        >>> ddim_timesteps(1000, 5)
        array([999, 749, 500, 250,   0])
    """
    if isinstance(total, bool) or total < 1:
        raise ValueError(f"total must be >= 1, got {total}.")
    if isinstance(steps, bool) or not 1 <= steps <= total:
        raise ValueError(
            f"steps must be between 1 and the schedule's {total} diffusion steps, got {steps}."
        )
    # Spacing >= 1, so rounding keeps the indices distinct.
    return np.round(np.linspace(total - 1, 0, steps)).astype(np.int64)


def check_sampler(sampler: str, steps: int, schedule: NoiseSchedule, eta: float = 0.0) -> None:
    """Raise a ValueError that says what to change if the sampling arguments are unusable."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, not {sampler!r}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"steps must be a whole number, got {steps!r}.")
    if not 1 <= steps <= len(schedule):
        raise ValueError(
            f"steps must be between 1 and the model's {len(schedule)} diffusion steps, "
            f"got {steps}; use fewer sampling steps or a schedule with more diffusion steps."
        )
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0 = deterministic DDIM), got {eta}.")


def sample(
    denoise_fn: DenoiseFn,
    shape: Sequence[int],
    schedule: NoiseSchedule,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    seed: int | Sequence[int] = 0,
    progress: bool = True,
) -> np.ndarray:
    """Generate by running the reverse diffusion from pure noise.

    - ``"ddim"``: Song et al. 2021, eq. 12, over ``steps`` steps from
      :func:`ddim_timesteps`, ending with a jump to the clean audio (t_prev = -1).
    - ``"ddpm"``: Ho et al. 2020, Algorithm 2 (eq. 11). With ``steps`` equal to the
      schedule's T it visits every step; with fewer it runs on the respaced schedule
      (:meth:`NoiseSchedule.respaced`, Nichol & Dhariwal 2021) over the same steps as DDIM.

    Randomness comes from ``numpy.random.default_rng(seed)``: first x_T ``[shape]``,
    then one draw of z per step that adds noise (DDPM: every step but the last;
    DDIM: only when eta > 0). The same seed gives the same samples.

    Args:
        denoise_fn: ``denoise_fn(x_t [batch, ...] float32, t [batch] int32) -> eps``,
            the predicted noise, same shape as ``x_t``.
        shape: the shape of the samples, ``(batch, samples, 1)`` for audio.
        schedule: the schedule the network was trained with.
        sampler: ``"ddim"`` or ``"ddpm"``.
        steps: network evaluations, ``1 .. T``.
        eta: DDIM's noise scale (0 = deterministic); ignored by DDPM.
        seed: seed (or sequence of seeds) of the numpy generator.
        progress: show a tqdm progress bar.

    Returns:
        float32 numpy array of ``shape`` (not clipped).
    """
    check_sampler(sampler, steps, schedule, eta)
    shape = tuple(int(size) for size in shape)
    rng = np.random.default_rng(seed)
    x = ops.convert_to_tensor(rng.standard_normal(shape, dtype=np.float32))  # x_T ~ N(0, I)
    timesteps = ddim_timesteps(len(schedule), steps)  # descending, e.g. [999, ..., 0]
    short_schedule = schedule.respaced(timesteps) if sampler == "ddpm" else schedule
    for index, t in enumerate(tqdm(timesteps, desc=f"{sampler} sampling", disable=not progress)):
        t = int(t)
        t_batch = ops.convert_to_tensor(np.full(shape[0], t, np.int32))
        eps = denoise_fn(x, t_batch)  # the network sees the original step index
        if sampler == "ddpm":
            position = steps - 1 - index  # step of the respaced schedule, S - 1 .. 0
            noise = rng.standard_normal(shape, dtype=np.float32) if position > 0 else None
            x = ddpm_step(x, eps, position, short_schedule, noise)
        else:
            t_prev = int(timesteps[index + 1]) if index + 1 < steps else -1
            noise = (
                rng.standard_normal(shape, dtype=np.float32) if eta > 0 and t_prev >= 0 else None
            )
            x = ddim_step(x, eps, t, t_prev, schedule, eta, noise)
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float32)
