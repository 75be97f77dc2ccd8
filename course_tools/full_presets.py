"""Every ``full`` preset built at its real shapes, with one synthetic training batch.

Used by the full-size rehearsal (``tests/test_rehearsal.py``: one training step and a
short generation per preset, with a memory budget) and by the T4 time table
(``benchmarks/t4_times.py``: the FLOPs of one training step). Each builder takes
``Config.full()`` as it is, builds the model the way its notebook does (same build
function and compile, inside ``config.strategy().scope()``, with ``jit_compile=True``:
what "auto" picks on a GPU) and makes one batch of the real input shape (sample rate,
clip length, image size) from synthetic audio. Only the batch size is the caller's.

The five presets of :data:`BUILDERS`:

- ``judge``: ``judge.build_judge_model`` on 1 s of 16 kHz, 10 classes (SC09's digits),
  compiled as ``judge.train_judge`` compiles it; batch ``(audio [b, n, 1], labels [b])``.
- ``diffusion``: ``diffusion.build_diffusion_model`` (the 1-D U-Net of 32 to 256
  channels, 1 s at 16 kHz), conditioned on 10 words over time as in notebook 03; batch
  ``(audio [b, n, 1], labels)``.
- ``vae``: ``vae.build_vae`` (spectrogram VAE on 1 s SC09 clips, or the waveform VAE
  with ``waveform=True``); batch ``(audio [b, n, 1], labels)`` (the labels are ignored).
- ``vq_vae``: ``vq.build_vq_vae`` on the spectrogram images of 4 s NSynth notes made by
  ``vq.spectrogram_images`` (or MNIST-sized digits with ``digits=True``); batch: images.
- ``wavenet``: ``wavenet.build_wavenet`` (10 labels told over time in 1 s clips, as in
  notebook 06) on mu-law crops of receptive field + ``target_length`` samples, split as
  ``training_data`` splits them; batch ``((classes [b, t], labels [b], starts [b]),
  targets [b, target_length])``, ``starts`` being the crops' clip positions.

Import it from the repository's root (``course_tools`` is not installed). Importing it
does not load TensorFlow; building a preset does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

NUM_CLASSES = 10  # SC09's ten digits: the judge, diffusion and WaveNet notebooks use them
SC09_SECONDS = 1.0  # the judge's and the VAE's clips: 1 s SC09 clips (their manifest)


@dataclasses.dataclass(frozen=True)
class Built:
    """A compiled full-size model, its config and one training batch of the real shape.

    Attributes:
        model: the compiled Keras model.
        cfg: the full config it was built from.
        batch: what ``fit`` takes per step: ``x``, or ``(x, y)``.
        input_shape: the shape of the batch's main input (audio, images or classes).
    """

    model: Any
    cfg: Any
    batch: Any
    input_shape: tuple[int, ...]


def synthetic_audio(n: int, samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """``[n, samples]`` float32: a few harmonics with a decaying envelope plus noise,
    speech-like in level (peaks ~0.5), so spectrograms and mu-law codes are not trivial."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    pitch = rng.uniform(100.0, 400.0, (n, 1))
    tone = sum(np.sin(2 * np.pi * k * pitch * t) / k for k in (1, 2, 3))
    envelope = np.exp(-3.0 * t / max(t[-1], 1e-9))
    return (0.3 * tone * envelope + 0.02 * rng.standard_normal((n, samples))).astype(np.float32)


def _labels(batch_size: int) -> np.ndarray:
    return np.arange(batch_size, dtype=np.int32) % NUM_CLASSES


def judge(batch_size: int) -> Built:
    """The judge of notebook 02 (``JudgeConfig.full()``), 1 s clips at its rate."""
    import keras

    from course_lib import config
    from course_lib import judge as judging

    cfg = judging.JudgeConfig.full()
    samples = round(cfg.sample_rate * SC09_SECONDS)
    with config.strategy().scope():
        model = judging.build_judge_model(samples, NUM_CLASSES, cfg)
        model.compile(  # as judging.train_judge compiles it
            optimizer=keras.optimizers.Adam(cfg.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile=True,
        )
    audio = synthetic_audio(batch_size, samples, cfg.sample_rate)[..., None]
    return Built(model, cfg, (audio, _labels(batch_size)), audio.shape)


def diffusion(batch_size: int) -> Built:
    """The word-conditioned U-Net denoiser of notebook 03 (``DiffusionConfig.full()``)."""
    from course_lib import config
    from course_lib import diffusion as diffusion_lib

    cfg = diffusion_lib.DiffusionConfig.full()
    with config.strategy().scope():
        model = diffusion_lib.build_diffusion_model(cfg, num_classes=NUM_CLASSES, jit_compile=True)
    audio = synthetic_audio(batch_size, cfg.clip_samples, cfg.sample_rate)[..., None]
    return Built(model, cfg, (audio, _labels(batch_size)), audio.shape)


def vae(batch_size: int, waveform: bool = False, **changes: Any) -> Built:
    """The spectrogram VAE of notebook 04 (``VAEConfig.full()``; ``changes`` as in
    ``vae.build_vae``, e.g. the sweep's ``latent_dim``), or its waveform VAE."""
    from course_lib import config
    from course_lib import vae as vae_lib

    cfg = vae_lib.VAEConfig.full().replace(**changes)
    samples = round(cfg.sample_rate * SC09_SECONDS)
    with config.strategy().scope():
        model = vae_lib.build_vae(samples, cfg, jit_compile=True, waveform=waveform)
    audio = synthetic_audio(batch_size, samples, cfg.sample_rate)[..., None]
    labels = np.zeros(batch_size, np.int32)  # load_split's (audio, labels); ignored
    return Built(model, cfg, (audio, labels), audio.shape)


def vq_vae(batch_size: int, digits: bool = False, **changes: Any) -> Built:
    """The VQ-VAE of notebook 05 (``VQConfig.full()``; ``changes`` e.g. notebook 07's
    ``dataset="speech", clip_seconds=1.0``) on spectrogram images, or its digits
    prototype on 32 x 32 images."""
    from course_lib import config, vq

    cfg = vq.VQConfig.full().replace(**changes)
    if digits:
        images = np.random.default_rng(0).uniform(size=(batch_size, 32, 32, 1))
        images = images.astype(np.float32)
    else:
        audio = synthetic_audio(batch_size, cfg.clip_samples, cfg.sample_rate)
        images = vq.spectrogram_images(audio, cfg.spec)  # [b, frames, bins, 1]
    with config.strategy().scope():
        model = vq.build_vq_vae(cfg, images.shape[1:3], digits=digits, jit_compile=True)
    return Built(model, cfg, images, images.shape)


def wavenet(batch_size: int) -> Built:
    """The label-conditioned WaveNet of notebook 06 (``WaveNetConfig.full()``)."""
    from course_lib import audio as audio_lib
    from course_lib import config
    from course_lib import wavenet as wavenet_lib

    cfg = wavenet_lib.WaveNetConfig.full()
    length = cfg.receptive_field + cfg.target_length  # training_data.crop_length
    clip_samples = round(cfg.sample_rate * SC09_SECONDS)
    with config.strategy().scope():
        model = wavenet_lib.build_wavenet(
            cfg, num_classes=NUM_CLASSES, jit_compile=True, clip_samples=clip_samples
        )
    audio = synthetic_audio(batch_size, length, cfg.sample_rate)
    crops = np.asarray(audio_lib.mu_law_encode(audio, cfg.quantization_channels), np.int32)
    # As training_data._crops_to_batches splits a crop: inputs and next-sample targets.
    classes, targets = crops[:, :-1], crops[:, cfg.receptive_field :]
    inputs = (classes, _labels(batch_size))
    if cfg.label_frames:  # and the clip position predicted at each crop's first step
        starts = np.random.default_rng(0).integers(
            1 - cfg.receptive_field, clip_samples, batch_size
        )
        inputs = (*inputs, starts.astype(np.int32))
    return Built(model, cfg, (inputs, targets), classes.shape)


BUILDERS: dict[str, Callable[[int], Built]] = {
    "judge": judge,
    "diffusion": diffusion,
    "vae": vae,
    "vq_vae": vq_vae,
    "wavenet": wavenet,
}
