"""The VAE's settings with their full and quick presets.

Used in: 04_vae_fid.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from course_lib.config import Presets, not_training


@dataclasses.dataclass(frozen=True)
class VAEConfig(Presets):
    """Settings of the VAE notebook (``VAEConfig.for_mode()``).

    Full: the SC09 digits (31,158 training clips), 1 s at 16 kHz as 128 x 256 spectrogram
    images (32 ms windows, 7.8 ms hop; ``course_lib.spectrogram``), four stride-2
    convolution blocks of 32 to 256 channels, a 64-dimensional latent, 40 epochs; about
    20 s per epoch on a T4, so roughly 15 minutes (an estimate). Quick: the spoken-digit
    fixture at 8 kHz as 64 x 128 images (32 ms windows, 16 ms hop), narrow blocks, a
    16-dimensional latent, well under a minute on two CPU cores.

    Attributes:
        beta: weight of the KL term at the end of the warm-up (beta-VAE, Higgins et al.
            2017; 1 is the plain ELBO).
        warmup_steps: training steps over which the KL weight grows linearly from 0 to
            ``beta`` (Bowman et al. 2016), against posterior collapse.
        latent_dim: size of ``z``.
        dropout: dropout rate after every encoder block.
        griffin_lim_iterations: phase-reconstruction iterations when making audio.
        sweep: the ``(beta, latent_dim)`` pairs compared by FID in the notebook.
        waveform_epochs: epochs of the notebook's waveform VAE, the comparison model
            (as many as the spectrogram VAE's in the full preset; fewer in quick mode).
    """

    # data
    words: str = "sc09"
    sample_rate: int = 16000
    frame_length: int = 512
    frame_step: int = 125
    # model
    widths: tuple[int, ...] = (32, 64, 128, 256)
    latent_dim: int = 64
    dropout: float = 0.1
    # loss
    beta: float = 1.0
    warmup_steps: int = 5000
    # training
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    # making audio and scoring it (not part of tag())
    griffin_lim_iterations: int = not_training(32)
    score_clips: int = not_training(1000)
    # the sweep: (beta, latent_dim) settings, each trained for sweep_epochs in the
    # notebook, not in the main model's folder (not part of tag())
    sweep: tuple[tuple[float, int], ...] = not_training(
        ((0.25, 64), (1.0, 64), (4.0, 64), (1.0, 16))
    )
    sweep_epochs: int = not_training(15)
    waveform_epochs: int = not_training(40)  # the comparison in the notebook, not saved

    # The rehearsal (COURSE_MODE=rehearsal): the full networks, one epoch, one sweep point.
    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(
        epochs=1,
        griffin_lim_iterations=2,
        score_clips=4,
        sweep=((0.25, 64),),
        sweep_epochs=1,
        waveform_epochs=1,
    )

    @classmethod
    def quick(cls) -> VAEConfig:
        return cls(
            sample_rate=8000,
            frame_length=256,
            widths=(8, 16, 32, 32),
            latent_dim=16,
            warmup_steps=150,
            epochs=12,  # reconstruction loss 0.044 of its start (0.036 after 20 epochs)
            batch_size=32,
            learning_rate=2e-3,
            griffin_lim_iterations=16,
            score_clips=50,
            sweep=((0.25, 16), (4.0, 16), (1.0, 4)),
            sweep_epochs=1,  # three sweep models, the genre judge (2) and the music VAE
            waveform_epochs=3,  # its minute: a quarter of the spectrogram VAE's 12
        )
