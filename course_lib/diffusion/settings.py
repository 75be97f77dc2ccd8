"""Settings of the diffusion notebook: one frozen config with a full and a quick preset.

Plain numbers, no TensorFlow.

Used in: 03_diffusion.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from course_lib.config import Presets, check_training_minutes, not_training

DENOISERS: tuple[str, ...] = ("diffwave", "unet")
PREDICTIONS: tuple[str, ...] = ("eps", "v")


def unet_receptive_field(strides: Sequence[int], blocks_per_level: int = 1, patch: int = 1) -> int:
    """Input samples one output of a 1-D U-Net (``unet.UNetDenoiser``) can depend on: an
    upper bound, before the clip's own edges cut it.

    At level i one position stands for ``scale = prod(strides[:i])`` samples, and each
    layer there widens the field: a kernel-3 convolution by ``2 scale`` (two per block,
    blocks on the way down and up, one after the upsampling), the downsampler (kernel
    ``2 s``) by ``(2 s - 1) scale``, the nearest-neighbour upsampling by ``(s - 1) scale``.
    With patches of ``patch`` samples (the U-Net's first positions), every position
    counted is ``patch`` samples wide.
    """
    field, scale = 1, 1
    for stride in strides:
        field += 2 * scale * (2 * blocks_per_level * 2 + 1)  # block convs down and up, upsampler
        field += (2 * stride - 1) * scale + (stride - 1) * scale  # down- and upsampling
        scale *= stride
    return patch * (field + 2 * scale * 2 * blocks_per_level)  # the bottom's blocks


@dataclasses.dataclass(frozen=True)
class DiffusionConfig(Presets):
    """Settings of the diffusion notebook (``DiffusionConfig.for_mode()``).

    The full preset (the defaults) trains DiffWave's SC09 recipe (Kong et al. 2021, sec.
    5.2: T = 200 steps with betas linear from 1e-4 to 0.02, Adam at 2e-4) on a denoiser
    that can learn a word, the fixes the laptop preset measured (:meth:`laptop`) at
    Colab's size: a 1-D U-Net (``unet.UNetDenoiser``, 32 to 256 channels, strides 4,
    receptive field 10,917 samples, 0.68 s at 16 kHz, where DiffWave's stack scaled to a
    T4 sees 0.38 s), the word told over time (40 frames) and by FiLM in every block,
    audio scaled by 10, gradients clipped to norm 1, batch 8, 30 epochs (about 117,000
    steps on SC09's 31,158 training clips; a step costs 53 GFLOP, a fifteenth of the
    T4-sized DiffWave stack's), DDIM with 50 steps and guidance 6. Its
    T4 time is estimated from FLOPs by ``benchmarks/t4_times.py``; nothing measured it
    on a GPU yet. DiffWave's dilated stack stays one setting away
    (``denoiser="diffwave"``: 64 channels, 30 layers, cycle 10, 1 + 2 * 3 * 1023 = 6,139
    samples) for the comparison. With T = 200 and that beta range
    alpha_bar_T = 0.13: x_T keeps 36% of the signal, which sampling from pure noise
    ignores, as DiffWave does.

    The quick preset (CPU, CI) is DiffWave's stack at its smallest: 4 kHz, 16 channels,
    6 layers, cycle 3 (a receptive field of 29 samples: it cannot learn a word), batch
    16, 2 epochs (~48 steps on the fixtures' ~380 SC09 training clips, ~0.2 s each on an
    idle machine, twice that beside CI's other jobs), so a notebook trains for well under
    a minute on 2 CPU cores. Its T = 50 betas rise to 0.19 (DiffWave's T = 50 vocoder
    schedule ends at 0.05, for a spectrogram-conditioned model), so alpha_bar_T = 0.006
    and a weakly trained model starts its sampling from what it was trained on; DDPM's 50
    steps and DDIM's 10 keep the notebook's two sampling cells within its minute.
    """

    # data
    words: str = "sc09"
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    # network
    residual_channels: int = 64
    residual_layers: int = 30
    dilation_cycle: int = 10
    label_dim: int = 128  # size of the class embedding (class-conditioned models)
    label_frames: int = 40  # frames of the word-over-time embedding (0: one vector per clip)
    denoiser: str = "unet"  # "unet" (resolution pyramid) or "diffwave" (dilated stack)
    unet_channels: tuple[int, ...] = (32, 64, 64, 128, 128, 256)  # one per level + bottom
    unet_strides: tuple[int, ...] = (4, 4, 4, 4, 4)
    unet_patch: int = 1  # samples per position at the U-Net's top level (1: every sample)
    # diffusion
    schedule: str = "linear"  # "linear" or "cosine"
    diffusion_steps: int = 200
    beta_start: float = 1e-4  # linear schedule only
    beta_end: float = 0.02
    prediction: str = "eps"  # the network predicts "eps" (Ho et al.) or "v" (Salimans & Ho)
    audio_scale: float = 10.0  # the model diffuses audio_scale * audio (see DiffusionModel)
    min_snr_gamma: float = 0.0  # > 0: Min-SNR-gamma loss weights (Hang et al. 2023); 0: off
    # training
    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 2e-4
    ema_decay: float = 0.999
    p_uncond: float = 0.1  # label dropout for classifier-free guidance
    clip_norm: float = 1.0  # > 0: gradients rescaled to at most this global norm
    training_minutes: float = 0.0  # > 0: stop once training took this long (all sessions)
    # sampling (not part of tag(): changing them reuses the trained model)
    sampler: str = not_training("ddim")
    ddim_steps: int = not_training(50)
    eta: float = not_training(0.0)
    guidance: float = not_training(6.0)
    # scoring: generated clips per sampler scored by the judge (and real clips compared)
    score_clips: int = not_training(1000)

    # The rehearsal (COURSE_MODE=rehearsal): the full network, one epoch, 2 noise levels.
    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(
        epochs=1, diffusion_steps=2, ddim_steps=1, score_clips=2
    )

    def __post_init__(self):
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', not {self.schedule!r}.")
        if self.denoiser not in DENOISERS:
            raise ValueError(f"denoiser must be one of {DENOISERS}, not {self.denoiser!r}.")
        if self.unet_patch < 1:
            raise ValueError(f"unet_patch must be >= 1, got {self.unet_patch}.")
        if not self.audio_scale > 0:
            raise ValueError(f"audio_scale must be > 0, got {self.audio_scale}.")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, not {self.prediction!r}.")
        if self.sampler not in ("ddim", "ddpm"):
            raise ValueError(f"sampler must be 'ddim' or 'ddpm', not {self.sampler!r}.")
        if not 1 <= self.ddim_steps <= self.diffusion_steps:
            raise ValueError(
                f"ddim_steps must be between 1 and diffusion_steps ({self.diffusion_steps}), "
                f"got {self.ddim_steps}."
            )
        if not 0 <= self.p_uncond < 1:
            raise ValueError(f"p_uncond must be in [0, 1), got {self.p_uncond}.")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")
        if self.clip_norm < 0:
            raise ValueError(f"clip_norm must be >= 0, got {self.clip_norm}.")
        check_training_minutes(self.training_minutes)

    @classmethod
    def quick(cls) -> Self:
        return cls(
            sample_rate=4000,
            denoiser="diffwave",
            residual_channels=16,
            residual_layers=6,
            dilation_cycle=3,
            label_dim=16,
            label_frames=0,
            schedule="linear",
            diffusion_steps=50,  # with beta_end 0.19: alpha_bar_T 0.006, as with T = 100
            beta_end=0.19,
            epochs=2,
            batch_size=16,
            learning_rate=1e-3,
            ema_decay=0.99,
            audio_scale=1.0,
            clip_norm=0.0,
            ddim_steps=10,
            guidance=2.0,
            score_clips=20,
        )

    @classmethod
    def laptop(cls) -> Self:
        """Quick mode's 4 kHz digits, with a denoiser that can learn a word: a 1-D U-Net
        whose pyramid spans the clip (receptive field 10,917 samples), the word told over
        time (40 frames), audio scaled by 10, and 20 minutes of training on a 2-core CPU
        (``epochs`` is only a ceiling), sampled with DDPM's 200 steps
        and guidance 6, gradients clipped to norm 1 (the U-Net's scaled features
        diverged to NaN within 20 minutes without it). Measured with
        ``benchmarks/speaks.py --minutes 20 --model diffusion --set guidance=6`` (on one
        of the two cores): 62% of 40 clips heard as the word asked for (chance 10%, real
        clips 96%), FID 11.5, IS 2.52, 14,117 steps. The minutes buy fewer steps on a
        slower CPU: on one core of a machine without AVX-512, 3,600 steps in 20 minutes
        gave 35% (FID 8.3, IS 1.92; guidance 6 by default). On both cores of the 2-core
        CI machine (``speaks.py --minutes 20 --model diffusion``, nothing else running):
        62% (real clips 96%), FID 11.5, IS 2.68, 13,382 steps."""
        return cls.quick().replace(
            denoiser="unet",
            unet_channels=(16, 32, 32, 64, 64, 64),
            label_frames=40,
            audio_scale=10.0,
            diffusion_steps=200,
            beta_end=0.05,
            epochs=2000,
            clip_norm=1.0,
            training_minutes=20.0,
            sampler="ddpm",
            ddim_steps=200,
            guidance=6.0,
        )

    @property
    def clip_samples(self) -> int:
        """Samples per clip: ``sample_rate * clip_seconds``."""
        return round(self.sample_rate * self.clip_seconds)

    @property
    def receptive_field(self) -> int:
        """Input samples one output of the denoiser depends on: kernel 3 on both sides of
        each dilated layer for DiffWave, :func:`unet_receptive_field` for the U-Net."""
        if self.denoiser == "unet":
            return unet_receptive_field(self.unet_strides, patch=self.unet_patch)
        dilations = [2 ** (index % self.dilation_cycle) for index in range(self.residual_layers)]
        return 1 + 2 * sum(dilations)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(
            **{
                key: tuple(value) if isinstance(value, list) else value  # JSON has no tuples
                for key, value in values.items()
                if key in known
            }
        )
