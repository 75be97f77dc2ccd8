"""WaveNet's settings: the receptive-field arithmetic and the config with its presets.

Plain numbers, no TensorFlow: the command line reads them (and checks its data folder)
before it imports Keras.

Used in: 06_wavenet.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from course_lib.config import Presets, check_training_minutes, not_training


def receptive_field(dilations: Sequence[int], kernel_size: int = 2) -> int:
    """How many input samples one output of the model depends on (including its own).

    The input causal convolution (dilation 1) and each dilated layer add
    ``(kernel_size - 1) * dilation`` past samples:

        receptive_field = (kernel_size - 1) * (1 + sum(dilations)) + 1.

    Example: dilations 1, 2, ..., 512 repeated 4 times with kernel 2 give 4,094 samples.
    """
    if kernel_size < 1 or any(dilation < 1 for dilation in dilations):
        raise ValueError(
            f"kernel_size and dilations must be positive, got {kernel_size} and {list(dilations)}."
        )
    return (kernel_size - 1) * (1 + sum(dilations)) + 1


def dilation_stack(max_dilation: int, repeats: int) -> tuple[int, ...]:
    """Dilations 1, 2, 4, ..., ``max_dilation``, the whole run repeated ``repeats`` times."""
    if max_dilation < 1 or max_dilation & (max_dilation - 1):
        raise ValueError(f"max_dilation must be a power of two, got {max_dilation}.")
    run = tuple(2**power for power in range(max_dilation.bit_length()))
    return run * repeats


@dataclasses.dataclass(frozen=True)
class WaveNetConfig(Presets):
    """Settings of the WaveNet notebook and command line (``WaveNetConfig.for_mode()``).

    The full preset keeps ibab/tensorflow-wavenet's architecture (filter width 2,
    dilations 1..512, 32 residual and dilation channels, 512 skip channels, 256 mu-law
    classes, 16 kHz) with the dilation run repeated 3 times instead of 5 (receptive
    field 3,071 samples, 0.19 s) to fit a Colab T4. Training time is an estimate, not a
    measurement: a step on 4 crops of 3,071 + 8,000 samples is ~0.3 TFLOP (forward and
    backward), about 0.1-0.3 s on a T4, so 20,000 steps take 0.5-1.5 hours; speech
    stops sounding like static only after ~100,000 steps (the reference implementation's
    experience), i.e. 3-8 hours. The word is told over time (40 frames per clip) with
    every training clip's word moved to start at 0.2 s, and classifier-free guidance (10% of
    the crops without their word, sampling with w = 3): the conditioning and sampling that
    made the laptop preset learn its words (:meth:`laptop`); at this size they are
    unmeasured.

    The quick preset (CPU, CI) is tiny: 4 kHz, dilations 1..32 once, 16 channels, one
    label vector per clip; it guides as the others do.
    """

    # data
    sample_rate: int = 16000
    silence_threshold: float = 0.01  # frame RMS below this counts as silence
    # model
    dilations: tuple[int, ...] = dilation_stack(512, 3)
    kernel_size: int = 2
    residual_channels: int = 32
    dilation_channels: int = 32
    skip_channels: int = 512
    quantization_channels: int = 256
    label_channels: int = 32  # size of the label embedding (global conditioning)
    label_frames: int = 40  # > 0: word over time, this many frames per clip (0: one vector)
    word_onset_seconds: float = 0.2  # word over time: where each training clip's word starts
    use_bias: bool = True
    p_uncond: float = 0.1  # label dropout: "no word" crops, for classifier-free guidance
    # training
    batch_size: int = 4
    target_length: int = 8000  # predicted samples per crop (plus the receptive field)
    learning_rate: float = 1e-3
    steps: int = 20000
    checkpoint_every: int = 500
    training_minutes: float = 0.0  # > 0: also stop once training took this long (all sessions)
    # sampling (not part of tag(): changing them reuses the trained model)
    temperature: float = not_training(1.0)
    guidance: float = not_training(3.0)  # w of classifier-free guidance (1: plain conditional)
    generate_seconds: float = not_training(1.0)
    score_clips: int = not_training(100)  # generated clips scored by the judge (notebook)

    # The rehearsal (COURSE_MODE=rehearsal): the full network, two steps, 2 ms of audio
    # (32 samples: every generation path runs, naive generation included, in seconds).
    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(
        steps=2, checkpoint_every=1, generate_seconds=0.002, score_clips=2
    )

    def __post_init__(self):
        if self.label_frames < 0:
            raise ValueError(
                f"label_frames must be >= 0 (0 = one label vector per clip), got "
                f"{self.label_frames}."
            )
        if self.word_onset_seconds < 0:
            raise ValueError(f"word_onset_seconds must be >= 0, got {self.word_onset_seconds}.")
        check_training_minutes(self.training_minutes)
        if not 0 <= self.p_uncond < 1:
            raise ValueError(f"p_uncond must be in [0, 1), got {self.p_uncond}.")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}.")
        if self.guidance != 1 and not self.p_uncond:
            raise ValueError(
                f"guidance={self.guidance} needs a model trained with label dropout: set "
                "p_uncond > 0 (e.g. 0.1), or guidance=1."
            )

    @classmethod
    def quick(cls) -> Self:
        return cls(
            sample_rate=4000,
            dilations=dilation_stack(32, 1),
            residual_channels=16,
            dilation_channels=16,
            skip_channels=32,
            label_channels=8,
            label_frames=0,
            batch_size=4,
            target_length=500,
            learning_rate=3e-3,
            steps=300,
            checkpoint_every=100,
            generate_seconds=0.25,
            score_clips=10,
        )

    @classmethod
    def laptop(cls) -> Self:
        """Quick mode's 4 kHz digits, with a WaveNet that can learn a word on a 2-core CPU in
        20 minutes of training (``steps`` is only a ceiling).

        - The word over time (40 frames, one per 25 ms, of 8 numbers each), told about
          clips whose words all start at 0.2 s (``word_onset_seconds``), so that a frame
          says *where in the word* the sample is.
        - 64 mu-law classes instead of 256: a smaller softmax to learn, at the cost of
          coarser quantization.
        - Dilations 1 to 256 once (receptive field 512 samples, 0.13 s), 32 residual and
          dilation channels, 64 skip channels, batches of 8 crops of 1,000 predicted
          samples.
        - Learning rate 1e-3 rather than quick mode's 3e-3: over 20 minutes on one core,
          100 clips scored, the judge heard the requested word in 38% of clips at 1e-3 and
          31% at 3e-3 (sampling at temperature 1; 0.9 to 0.7 scored lower at both).
        - Classifier-free guidance, as every preset: labels dropped from 10% of the crops
          (``p_uncond``), samples drawn from the guided logits with w = 3 (``guidance``),
          whose words the judge hears more often than plain sampling's. Two trainings of
          20 minutes, one core each, 100 clips per weight from each model: the judge heard
          the requested word in 28% and 20% of clips at w = 1 (no guidance), 39% and 32%
          at 1.5, 42% and 46% at 2, 44% and 48% at 3, and 40% and 46% at 4 (FID 7.5 and
          7.3 at w = 1, 5.3 and 5.3 at w = 3). Without guidance the same preset's runs
          ranged from 17% to 40%.

        Measured with ``benchmarks/speaks.py --minutes 20 --model wavenet`` (see the README).
        """
        return cls.quick().replace(
            dilations=dilation_stack(256, 1),
            residual_channels=32,
            dilation_channels=32,
            skip_channels=64,
            quantization_channels=64,
            label_frames=40,
            batch_size=8,
            target_length=1000,
            learning_rate=1e-3,
            steps=100_000,
            checkpoint_every=500,
            training_minutes=20.0,
            generate_seconds=1.0,
            score_clips=40,
        )

    @property
    def word_onset(self) -> int:
        """``word_onset_seconds`` in samples."""
        return round(self.word_onset_seconds * self.sample_rate)

    @property
    def receptive_field(self) -> int:
        """Samples one prediction depends on; see :func:`receptive_field`."""
        return receptive_field(self.dilations, self.kernel_size)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        values = dataclasses.asdict(self)
        values["dilations"] = list(self.dilations)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        kept = {key: value for key, value in values.items() if key in known}
        if "dilations" in kept:
            kept["dilations"] = tuple(int(d) for d in kept["dilations"])
        return cls(**kept)
