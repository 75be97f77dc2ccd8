"""Noise schedules of a variance-preserving diffusion: how much noise each step adds.

The forward process (Ho et al. 2020, "Denoising Diffusion Probabilistic Models") adds
Gaussian noise in T small steps,

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)          (Ho eq. 2),

so that any step can be reached from the clean audio in one jump,

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),
    alpha_t = 1 - beta_t,   alpha_bar_t = alpha_1 * ... * alpha_t      (Ho eq. 4).

``signal_rates = sqrt(alpha_bar)`` and ``noise_rates = sqrt(1 - alpha_bar)`` are the
weights of the clean audio and of the noise in x_t; their squares sum to 1, so a signal
of unit variance keeps unit variance ("variance preserving").

Steps are indexed from 0 here: ``betas[0]`` is the paper's beta_1 and ``betas[T - 1]``
its beta_T. Everything is float64 numpy, so the schedule can be inspected and plotted
before TensorFlow is imported.

Used in: 03_diffusion.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal, Self

import numpy as np

ScheduleName = Literal["linear", "cosine"]
SCHEDULE_NAMES: tuple[str, ...] = ("linear", "cosine")


def _read_only(values) -> np.ndarray:
    array = np.array(values, dtype=np.float64)  # a private copy, then frozen
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """The betas of a diffusion and the quantities derived from them (float64, length T).

    Build one with :meth:`linear`, :meth:`cosine` or :meth:`from_betas`; the three arrays
    are read-only and must agree (``alphas = 1 - betas``, ``alpha_bars = cumprod(alphas)``).

    Attributes:
        betas: ``[T]`` variance added at each step, in (0, 1).
        alphas: ``[T]`` ``1 - betas``.
        alpha_bars: ``[T]`` cumulative products of ``alphas`` (Ho eq. 4).
    """

    betas: np.ndarray
    alphas: np.ndarray
    alpha_bars: np.ndarray

    def __post_init__(self):
        betas, alphas, alpha_bars = (
            _read_only(self.betas),
            _read_only(self.alphas),
            _read_only(self.alpha_bars),
        )
        if betas.ndim != 1 or betas.size == 0:
            raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}.")
        if not (np.all(betas > 0) and np.all(betas < 1)):
            raise ValueError(
                f"every beta must lie in (0, 1); got values from {betas.min()} to {betas.max()}."
            )
        if alphas.shape != betas.shape or alpha_bars.shape != betas.shape:
            raise ValueError("betas, alphas and alpha_bars must have the same length.")
        if not np.allclose(alphas, 1.0 - betas, rtol=0, atol=1e-12) or not np.allclose(
            alpha_bars, np.cumprod(alphas), rtol=1e-9, atol=0
        ):
            raise ValueError(
                "alphas must equal 1 - betas and alpha_bars their cumulative product; "
                "build the schedule with NoiseSchedule.from_betas(betas)."
            )
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "alpha_bars", alpha_bars)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_betas(cls, betas: Sequence[float] | np.ndarray) -> Self:
        """A schedule from its betas ``[T]``; alphas and alpha_bars are derived."""
        betas = np.asarray(betas, dtype=np.float64)
        alphas = 1.0 - betas
        return cls(betas=betas, alphas=alphas, alpha_bars=np.cumprod(alphas))

    @classmethod
    def linear(cls, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Self:
        """Betas evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020, sec. 4).

        Ho et al. use T = 1000, beta from 1e-4 to 0.02 (alpha_bar_T ~ 4e-5: x_T is almost
        pure noise). DiffWave's unconditional model uses the same range with T = 200.
        """
        _check_steps(steps)
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(
                f"need 0 < beta_start <= beta_end < 1, got {beta_start} and {beta_end}."
            )
        return cls.from_betas(np.linspace(beta_start, beta_end, steps))

    @classmethod
    def cosine(cls, steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Self:
        """The cosine schedule of Nichol & Dhariwal 2021 ("Improved DDPM", eq. 17).

            alpha_bar(t) = f(t) / f(0),   f(t) = cos(((t / T + s) / (1 + s)) * pi / 2)^2,
            beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1), clipped at ``max_beta``.

        Noise is added more slowly at the start than with :meth:`linear`, so fewer steps
        are wasted on audio that is already pure noise.
        """
        _check_steps(steps)
        if s < 0 or not 0 < max_beta < 1:
            raise ValueError(f"need s >= 0 and 0 < max_beta < 1, got {s} and {max_beta}.")
        times = np.arange(steps + 1, dtype=np.float64) / steps  # t / T for t = 0 .. T
        f = np.cos((times + s) / (1 + s) * math.pi / 2) ** 2
        betas = 1.0 - f[1:] / f[:-1]
        return cls.from_betas(np.clip(betas, 1e-12, max_beta))

    @classmethod
    def named(
        cls,
        name: str,
        steps: int,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> Self:
        """``"linear"`` (with ``beta_start``, ``beta_end``) or ``"cosine"``, with T = ``steps``."""
        if name == "linear":
            return cls.linear(steps, beta_start, beta_end)
        if name == "cosine":
            return cls.cosine(steps)
        raise ValueError(f"schedule must be one of {SCHEDULE_NAMES}, not {name!r}.")

    # ------------------------------------------------------------------ derived values

    def __len__(self) -> int:
        return int(self.betas.shape[0])

    @property
    def steps(self) -> int:
        """T, the number of diffusion steps."""
        return len(self)

    @property
    def snr(self) -> np.ndarray:
        """``[T]`` the signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) of x_t."""
        return self.alpha_bars / (1.0 - self.alpha_bars)

    def min_snr_weights(self, gamma: float, prediction: str = "eps") -> np.ndarray:
        """``[T]`` the Min-SNR-gamma loss weights of each step (Hang et al. 2023, eq. 9):
        ``min(SNR_t, gamma) / SNR_t`` for a network predicting eps, ``min(SNR_t, gamma) /
        (SNR_t + 1)`` for one predicting v; both weigh every step as an x0-loss clipped
        at gamma, so the nearly clean steps, whose fine detail a short training cannot
        learn, stop dominating the gradient."""
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}.")
        clipped = np.minimum(self.snr, gamma)
        return clipped / (self.snr if prediction == "eps" else self.snr + 1.0)

    @property
    def signal_rates(self) -> np.ndarray:
        """``[T]`` sqrt(alpha_bar_t): the weight of x_0 in x_t."""
        return np.sqrt(self.alpha_bars)

    @property
    def noise_rates(self) -> np.ndarray:
        """``[T]`` sqrt(1 - alpha_bar_t): the weight of the noise in x_t."""
        return np.sqrt(1.0 - self.alpha_bars)

    def respaced(self, timesteps: Sequence[int] | np.ndarray) -> NoiseSchedule:
        """The schedule of a shorter diffusion that visits only ``timesteps``.

        Nichol & Dhariwal 2021, sec. 4: keep alpha_bar at the chosen steps
        tau_1 < ... < tau_S and set beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_(i-1)}.
        Step i of the new schedule has the noise level of step ``timesteps[i]`` of this
        one, so a network trained on this schedule can be run on it (DDPM with fewer
        steps). Respacing with all steps gives this schedule back.

        Args:
            timesteps: strictly increasing step indices in ``0 .. T - 1`` (any order is
                accepted; they are sorted).
        """
        chosen = np.unique(np.asarray(timesteps, dtype=np.int64))
        if chosen.size == 0 or chosen[0] < 0 or chosen[-1] >= len(self):
            raise ValueError(f"timesteps must be indices in 0..{len(self) - 1}, got {timesteps}.")
        kept = self.alpha_bars[chosen]
        previous = np.concatenate([[1.0], kept[:-1]])
        return NoiseSchedule.from_betas(1.0 - kept / previous)


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}.")
