"""The VQ-VAE and inpainting notebook's settings, with their full and quick presets.

Plain numbers: reading them does not load TensorFlow.

Used in: 05_vq_vae_inpainting.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from course_lib.config import Presets, check_training_minutes, not_training

if TYPE_CHECKING:
    from course_lib.spectrogram import SpectrogramSpec

DATASETS = ("nsynth", "speech")


@dataclasses.dataclass(frozen=True)
class VQConfig(Presets):
    """Settings of the VQ-VAE and inpainting notebook (``VQConfig.for_mode()``).

    Full: NSynth notes (the ``nsynth-valid`` archive, 12,678 notes of 4 s at 16 kHz, for
    training; ``nsynth-test`` for testing) as 512 x 256 spectrogram images (32 ms windows,
    7.8 ms hop), three stride-2 blocks of 32 to 128 channels and two residual blocks, so
    each code covers 8 frames x 8 bins (62 ms x 250 Hz) of a 64 x 32 code map; 64 codewords
    of 32 numbers, EMA codebook with restarts and k-means++ initialisation (Jukebox). A
    forward and backward pass is about 30 GFLOP per note, so at a realistic 4 TFLOP/s an
    epoch takes roughly 1.5 minutes on a Colab T4 and 20 epochs about half an hour (an
    estimate, not a measurement). The digits prototype trains on MNIST (60,000 images,
    downloaded by Keras).

    Quick: the synthesized notes fixture (80 training notes of 4 s) at 8 kHz as 256 x 128
    images (32 ms windows, 15.6 ms hop; a code covers 125 ms x 250 Hz), narrow blocks, 32
    codewords of 8 numbers, and scikit-learn's bundled 8 x 8 digits upsampled to 32 x 32
    for the prototype: each trains in well under a minute on two CPU cores.

    Attributes:
        dataset: ``"nsynth"`` (4 s notes) or ``"speech"`` (1 s spoken words; set
            ``clip_seconds=1.0``).
        max_per_family: at most this many notes per instrument family and split (None:
            all of them).
        widths: channels of each stride-2 encoder block. Their number sets the downsampling
            factor ``2 ** len(widths)``, hence the time-frequency size of one code: the
            "scale" of the inpainting effect (fewer blocks: micro; more: macro).
        residual_blocks: 3x3-then-1x1 residual blocks at the bottleneck (van den Oord et
            al. 2017 use two).
        code_dim: size of each codeword.
        codebook_size: number of codewords ``K``.
        commitment_beta: weight of the commitment loss (0.25 in the paper).
        ema_decay: decay of the EMA codebook (0.99 in Jukebox; 0 trains it by gradients).
        restart_threshold: a codeword used fewer times per batch than this (running
            count) is restarted on an encoder output (0: no restarts).
        data_init: ``"kmeans++"``, ``"random"`` or ``"none"``.
        training_minutes: > 0: training stops once it took this long over all sessions
            (``training.TimeBudget``; ``epochs`` is then a ceiling); 0: no budget.
        digit_widths, digit_codebook_size, digit_code_dim, digit_epochs: the MNIST
            prototype's model and training length.
        radius: the Naive Bayes neighbourhood: codes within this many steps in time and in
            frequency (a ``(2 r + 1)^2 - 1`` square).
        sweeps: Gibbs sweeps over the region when resampling.
        prior_radius, prior_sweeps: the neighbourhood of the Naive Bayes prior that makes
            new clips (``course_models.vq_vae_with_prior``), and its Gibbs sweeps over a
            whole map. That model is positional (each code's place in the map is one more
            feature), which the fixed-length clips it makes allow; the inpainting effect
            takes sounds of any length, so its model is not.
        temperature: sampling temperature (0: most likely code; 1: the model's
            distribution; above 1: more random).
    """

    # data
    dataset: str = "nsynth"
    sample_rate: int = 16000
    clip_seconds: float = 4.0
    max_per_family: int | None = None
    # representation
    frame_length: int = 512
    frame_step: int = 125
    min_db: float = -50.0
    max_db: float = 50.0
    griffin_lim_iterations: int = not_training(32)  # making audio only
    # model
    widths: tuple[int, ...] = (32, 64, 128)
    residual_blocks: int = 2
    code_dim: int = 32
    codebook_size: int = 64
    commitment_beta: float = 0.25
    ema_decay: float = 0.99
    restart_threshold: float = 1.0
    data_init: str = "kmeans++"
    # training
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 3e-4
    seed: int = 0
    training_minutes: float = 0.0
    # the digits prototype
    digit_widths: tuple[int, ...] = (32, 64)
    digit_codebook_size: int = 64
    digit_code_dim: int = 16
    digit_epochs: int = 5
    # inpainting: the Naive Bayes prior is fitted after training (not part of tag())
    radius: int = not_training(1)
    sweeps: int = not_training(4)
    prior_radius: int = not_training(2)
    prior_sweeps: int = not_training(8)
    temperature: float = not_training(1.0)

    # The rehearsal (COURSE_MODE=rehearsal): the full networks and images, one epoch each.
    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(
        epochs=1, digit_epochs=1, griffin_lim_iterations=2, sweeps=1
    )

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, not {self.dataset!r}.")
        if not self.widths or not self.digit_widths:
            raise ValueError("widths and digit_widths need at least one stride-2 block.")
        check_training_minutes(self.training_minutes)
        neighbourhoods, sweeps = (self.radius, self.prior_radius), (self.sweeps, self.prior_sweeps)
        if min(neighbourhoods) < 1 or min(sweeps) < 1 or self.temperature < 0:
            raise ValueError(
                "need radius, prior_radius, sweeps and prior_sweeps >= 1 and temperature >= 0, "
                f"got {self.radius}, {self.prior_radius}, {self.sweeps}, {self.prior_sweeps} "
                f"and {self.temperature}."
            )

    @classmethod
    def quick(cls) -> VQConfig:
        return cls(
            max_per_family=None,
            sample_rate=8000,
            frame_length=256,
            frame_step=125,
            griffin_lim_iterations=16,
            widths=(8, 16, 32),
            residual_blocks=1,
            code_dim=8,
            codebook_size=32,
            epochs=8,  # notebook 05 (notes) and 07 (spoken digits) train it: their minute
            batch_size=16,
            learning_rate=2e-3,
            digit_widths=(16, 32),
            digit_codebook_size=32,
            digit_code_dim=8,
            digit_epochs=4,
        )

    @classmethod
    def laptop(cls) -> VQConfig:
        """Quick mode's fixtures at 8 kHz with a VQ-VAE that keeps a word: two stride-2
        blocks (16 and 32 channels, so a code covers 4 frames x 4 bins, 62 ms x 125 Hz),
        two residual blocks, 64 codewords of 16 numbers, 20 minutes of training on a
        2-core CPU (``epochs`` is only a ceiling). Measured on the spoken digits (as
        notebook 07 trains it; ``benchmarks/speaks.py``'s VQ-VAE row, one of the two
        cores, 2,977 steps in 20 minutes): the judge heard 88% of its reconstructions of
        unseen speakers' test clips as their word (real clips 90%); the quick sizes
        reached 76% in the same time. On one core of the 2-core CI machine (11,661 steps):
        96% (real clips 100%), and 40 clips from its positional Naive Bayes prior
        (``prior_radius`` 2, ``prior_sweeps`` 8) reach IS 2.13 (FID 26.0); the
        neighbours-only prior's reached 1.34."""
        return cls.quick().replace(
            widths=(16, 32),
            residual_blocks=2,
            code_dim=16,
            codebook_size=64,
            epochs=2000,
            training_minutes=20.0,
        )

    @property
    def downsampling_blocks(self) -> int:
        """Number of stride-2 blocks: each code covers ``2 ** blocks`` frames and bins."""
        return len(self.widths)

    @property
    def spec(self) -> SpectrogramSpec:
        """The spectrogram settings (``course_lib.spectrogram``, which loads TensorFlow)."""
        from course_lib.spectrogram import SpectrogramSpec

        return SpectrogramSpec(
            self.sample_rate, self.frame_length, self.frame_step, self.min_db, self.max_db
        )

    @property
    def clip_samples(self) -> int:
        """Samples per clip."""
        return round(self.clip_seconds * self.sample_rate)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(frames, bins)`` of one clip's spectrogram image."""
        return self.spec.shape(self.clip_samples)
