"""The VAE's settings with their full and quick presets.

Used in: 04_vae_fid.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from course_lib.config import Presets, check_training_minutes, not_training


@dataclasses.dataclass(frozen=True)
class VAEConfig(Presets):
    """Settings of the VAE notebook (``VAEConfig.for_mode()``).

    Full: the SC09 digits (31,158 training clips), 1 s at 16 kHz as 128 x 256 spectrogram
    images (32 ms windows, 7.8 ms hop; ``course_lib.spectrogram``), four stride-2
    convolution blocks of 32 to 256 channels, a latent of 8 steps of 16 numbers (one per
    125 ms), 40 epochs; about 20 s per epoch on a T4, so roughly 15 minutes (an
    estimate). Quick: the spoken-digit fixture at 8 kHz as 64 x 128 images (32 ms
    windows, 16 ms hop), narrow blocks, one 16-dimensional latent vector, well under a
    minute on two CPU cores. Laptop: see :meth:`laptop`.

    Attributes:
        beta: weight of the KL term at the end of the warm-up (beta-VAE, Higgins et al.
            2017; 1 is the plain ELBO).
        warmup_steps: training steps over which the KL weight grows linearly from 0 to
            ``beta`` (Bowman et al. 2016), against posterior collapse.
        latent_dim: size of ``z``, or of each of its steps with ``latent_over_time``.
        latent_over_time: ``z`` is a sequence of vectors, one per time step of the
            encoder's last feature map, not one vector (``course_lib.vae.model``).
        dropout: dropout rate after every encoder block.
        training_minutes: > 0: training stops once it took this long over all sessions
            (``training.TimeBudget``; ``epochs`` is then a ceiling); 0: no budget.
        prior_components: Gaussians of the mixture fitted to the training clips' codes
            that new clips are drawn from (``course_lib.vae.latent_prior``).
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
    latent_dim: int = 16
    latent_over_time: bool = True
    dropout: float = 0.1
    # loss (full: the laptop preset's 0.02 times its images' 4x pixels, since the squared
    # error is summed over pixels; not measured on SC09)
    beta: float = 0.1
    warmup_steps: int = 5000
    # training
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    training_minutes: float = 0.0
    # making audio and scoring it (not part of tag())
    griffin_lim_iterations: int = not_training(32)
    prior_components: int = not_training(30)
    score_clips: int = not_training(1000)
    # the sweep: (beta, latent_dim) settings, each trained for sweep_epochs in the
    # notebook, not in the main model's folder (not part of tag())
    sweep: tuple[tuple[float, int], ...] = not_training(
        ((0.02, 16), (0.1, 16), (0.5, 16), (0.1, 4))
    )
    sweep_epochs: int = not_training(15)
    waveform_epochs: int = not_training(40)  # the comparison in the notebook, not saved

    # The rehearsal (COURSE_MODE=rehearsal): the full networks, one epoch, one sweep point.
    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(
        epochs=1,
        griffin_lim_iterations=2,
        score_clips=4,
        sweep=((0.02, 16),),
        sweep_epochs=1,
        waveform_epochs=1,
        prior_components=2,  # the rehearsal's fixture has ten training clips
    )

    def __post_init__(self):
        check_training_minutes(self.training_minutes)
        if self.prior_components < 1:
            raise ValueError(f"prior_components must be at least 1, got {self.prior_components}.")

    @classmethod
    def quick(cls) -> VAEConfig:
        return cls(
            sample_rate=8000,
            frame_length=256,
            widths=(8, 16, 32, 32),
            latent_dim=16,
            latent_over_time=False,
            beta=1.0,
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

    @classmethod
    def laptop(cls) -> VAEConfig:
        """Quick mode's fixture at 8 kHz with a VAE that keeps the word: three stride-2
        blocks (16, 32 and 64 channels), a latent of 8 steps of 16 numbers (one per
        125 ms), a KL weight of 0.02, 20 minutes of training on a 2-core CPU (``epochs``
        is only a ceiling). Measured on one core of the 2-core CI machine
        (``benchmarks/speaks.py --minutes 20 --model vae``, 5,701 steps): the judge heard
        90% of its reconstructions of unseen speakers' test clips as their word (real
        clips 100%), and 40 clips from its fitted prior (45 Gaussians) reached IS 2.14
        (FID 9.7). One code vector per clip reached 58 to 66% and IS 1.8 at best in the
        same time; drawn from N(0, I), this model's clips reach IS 1.3 to 1.6, since the
        codes of real clips do not fill the prior."""
        return cls.quick().replace(
            widths=(16, 32, 64),
            latent_dim=16,
            latent_over_time=True,
            beta=0.02,
            epochs=2000,
            training_minutes=20.0,
            prior_components=45,  # about 8 training clips each
            sweep=((0.1, 16), (0.5, 16), (0.02, 4)),  # around the preset's beta
        )
