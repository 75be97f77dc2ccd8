"""The rehearsal preset (``COURSE_MODE=rehearsal``): every full preset with tiny counts.

It must build the very networks a Colab T4 builds (same weights, same input shapes),
and differ from the full preset only in the counts it declares, each smaller.
"""

from __future__ import annotations

import dataclasses

import pytest

from course_lib.comparison import ComparisonConfig
from course_lib.diffusion import DiffusionConfig
from course_lib.judge import JudgeConfig
from course_lib.vae import VAEConfig
from course_lib.vq import VQConfig
from course_lib.wavenet import WaveNetConfig
from data_prep.prepare import SpeechCommandsConfig

CONFIGS = [
    SpeechCommandsConfig,
    JudgeConfig,
    DiffusionConfig,
    VAEConfig,
    VQConfig,
    WaveNetConfig,
    ComparisonConfig,
]


def _smaller(rehearsal, full) -> bool:
    """A count, or a tuple of counts (the VAE's sweep), that is no larger than full's."""
    if isinstance(full, tuple):
        return len(rehearsal) <= len(full) and all(item in full for item in rehearsal)
    return rehearsal <= full


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_the_rehearsal_changes_only_its_declared_counts_each_downwards(cls):
    full, rehearsal = cls.full(), cls.rehearsal()
    changed = {
        field.name
        for field in dataclasses.fields(cls)
        if getattr(full, field.name) != getattr(rehearsal, field.name)
    }
    assert changed == set(cls.REHEARSAL_COUNTS)
    for name in changed:
        assert _smaller(getattr(rehearsal, name), getattr(full, name)), (cls.__name__, name)
    assert cls.for_mode("rehearsal") == rehearsal


def _weight_shapes(build, cfg) -> list[tuple[str, tuple[int, ...]]]:
    return [(weight.path, tuple(weight.shape)) for weight in build(cfg).weights]


def _builders():
    from course_lib import diffusion, vae, vq, wavenet
    from course_lib import judge as judging

    return {
        "judge": (
            JudgeConfig,
            lambda cfg: judging.build_judge_model(cfg.sample_rate, 10, cfg),
        ),
        "diffusion": (
            DiffusionConfig,
            lambda cfg: diffusion.build_diffusion_model(
                cfg, num_classes=10, clip_samples=cfg.clip_samples
            ),
        ),
        "vae": (VAEConfig, lambda cfg: vae.build_vae(cfg.sample_rate, cfg)),
        "waveform vae": (VAEConfig, lambda cfg: vae.build_vae(cfg.sample_rate, cfg, waveform=True)),
        "vq-vae": (VQConfig, lambda cfg: vq.build_vq_vae(cfg, cfg.image_shape)),
        "vq-vae digits": (VQConfig, lambda cfg: vq.build_vq_vae(cfg, digits=True)),
        "wavenet": (
            WaveNetConfig,
            lambda cfg: wavenet.build_wavenet(cfg, num_classes=10, clip_samples=cfg.sample_rate),
        ),
    }


@pytest.mark.rehearsal  # builds every full network twice: part of the rehearsal's run
@pytest.mark.parametrize("name", list(_builders()))
def test_the_rehearsal_builds_the_full_network(name):
    """The same weights, by name and shape, as the full preset's model."""
    import keras

    cls, build = _builders()[name]
    keras.backend.clear_session()  # layer names numbered from scratch in both builds
    full = _weight_shapes(build, cls.full())
    keras.backend.clear_session()
    rehearsal = _weight_shapes(build, cls.rehearsal())
    assert rehearsal == full and len(full) > 0
