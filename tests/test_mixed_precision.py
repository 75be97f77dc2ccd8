"""Mixed precision (``course_lib.accelerator``): every model trains under ``mixed_float16``
as it does in float32.

Each model is built twice from the same seed, in float32 and under ``mixed_float16``, at
tiny sizes, and both train for ``STEPS`` steps on the same fixed synthetic batch. The mixed
run must have a finite loss at every step that matches the float32 run's, float32 weights
and outputs, some layers that really compute in float16, and a ``LossScaleOptimizer``
that skipped no step. The global policy is float32 again after every test.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import accelerator, vae, vq, wavenet
from course_lib import judge as judging
from course_lib.diffusion import DiffusionConfig, build_diffusion_model
from course_lib.vae.model import initial_loss_scale

STEPS = 4
# How far the mixed run's loss may be from the float32 run's, relative, at every step.
# float16 rounds each operation by up to 2^-11 = 4.9e-4 (relative), and Adam, whose
# first steps move every weight by about the learning rate whatever the gradient's size,
# amplifies that where a gradient is near 0. Largest differences measured on a 2-core
# CPU, over these setups with 4 to 10 data seeds and 4 or 5 steps, and the tolerance:
# - judge 2.2e-2 -> 5e-2: batch norm over 4 clips, a loss falling from 0.9 to 0.3 in 3
#   steps, and small losses make relative differences large;
# - spectrogram VAE 2.9e-3, waveform VAE 7.9e-3 -> 2e-2;
# - VQ-VAE 2.0e-3 -> 1e-2;
# - WaveNet 6e-6 and diffusion 1.4e-6 -> 1e-3: their losses barely depend on the
#   float16 layers yet (a near-uniform softmax; a zero-initialised output layer).
# A skipped step (the loss scale overflowed) is caught apart from this by counting the
# optimizer's iterations.
RTOL = {
    "judge": 5e-2,
    "vae": 2e-2,
    "vq": 1e-2,
    "wavenet": 1e-3,
    "diffusion": 1e-3,
}


@pytest.fixture(autouse=True)
def float32_policy_afterwards():
    """Whatever a test does, the next one starts with the float32 global policy."""
    yield
    keras.config.set_dtype_policy("float32")


def _tones(n: int, samples: int, rate: int) -> np.ndarray:
    """``[n, samples, 1]`` float32 sines of random pitch with a little noise (fixed)."""
    rng = np.random.default_rng(0)
    time = np.arange(samples) / rate
    pitch = rng.uniform(200, 1200, (n, 1))
    clips = 0.5 * np.sin(2 * np.pi * pitch * time) + 0.05 * rng.standard_normal((n, samples))
    return clips.astype(np.float32)[..., None]


def _float16_layers(model: keras.Model) -> int:
    # _flatten_layers walks nested layers, also inside subclassed layers and models.
    return sum(layer.compute_dtype == "float16" for layer in model._flatten_layers())


def _train_in_both_precisions(build, x, y=None) -> dict[str, tuple[keras.Model, list[float]]]:
    """``{policy: (model, losses of STEPS steps)}`` for float32 and mixed_float16.

    The steps run eagerly: tracing a train function takes longer on this CPU than the
    few steps themselves, and they run the same operations either way.
    """
    runs = {}
    for policy in ("float32", "mixed_float16"):
        with accelerator.precision_policy(policy):
            keras.utils.set_random_seed(0)  # the same initial weights and random draws
            model = build()
        model.run_eagerly = True
        losses = []
        for _ in range(STEPS):
            model.reset_metrics()  # each step's own loss, not a running mean
            losses.append(float(model.train_on_batch(x, y, return_dict=True)["loss"]))
        runs[policy] = (model, losses)
    return runs


def _check(runs, outputs_of, rtol: float) -> None:
    """The mixed run matches the float32 run (see the module docstring)."""
    reference, reference_losses = runs["float32"]
    model, losses = runs["mixed_float16"]
    assert keras.config.dtype_policy().name == "float32"  # precision_policy restored it
    assert reference.dtype_policy.name == "float32" and _float16_layers(reference) == 0
    assert not isinstance(reference.optimizer, keras.optimizers.LossScaleOptimizer)

    assert model.dtype_policy.name == "mixed_float16" and _float16_layers(model) > 0
    assert np.all(np.isfinite(losses)), losses
    np.testing.assert_allclose(losses, reference_losses, rtol=rtol)
    assert all(variable.dtype == "float32" for variable in model.trainable_variables)
    assert not [v.path for v in model.variables if v.dtype == "float16"]
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(model.optimizer.iterations.numpy()) == STEPS  # no step skipped on overflow
    outputs = keras.tree.flatten(outputs_of(model))
    floats = [output for output in outputs if "float" in str(output.dtype)]
    assert floats and all(output.dtype == "float32" for output in floats)


def test_judge_trains_in_mixed_precision():
    cfg = judging.JudgeConfig.quick()
    clip_samples = 4000  # 0.25 s at 16 kHz: 23 log-mel frames
    audio, labels = _tones(4, clip_samples, cfg.sample_rate), np.array([0, 1, 2, 0])

    def build():
        model = judging.build_judge_model(clip_samples, 3, cfg)
        model.compile(
            optimizer=keras.optimizers.Adam(cfg.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        return model

    runs = _train_in_both_precisions(build, audio, labels)
    _check(runs, lambda model: model(audio), RTOL["judge"])
    model = runs["mixed_float16"][0]
    for name in ("log_mel", "input_norm", judging.EMBEDDING_LAYER, "logits"):
        assert model.get_layer(name).compute_dtype == "float32"
    judge = judging.Judge(model, ["a", "b", "c"], cfg.sample_rate)
    embeddings, probabilities = judge.features(audio[..., 0])
    assert embeddings.dtype == np.float32 and probabilities.dtype == np.float32


def test_diffusion_trains_in_mixed_precision():
    cfg = DiffusionConfig.quick().replace(
        residual_channels=8, residual_layers=3, dilation_cycle=3, label_dim=8, diffusion_steps=50
    )
    audio, labels = _tones(4, 256, cfg.sample_rate), np.array([0, 1, 0, 1])

    def build():
        return build_diffusion_model(cfg, num_classes=2, clip_samples=256, jit_compile=False)

    steps = np.array([0, 10, 30, 49], np.int32)
    runs = _train_in_both_precisions(build, audio, labels)
    _check(runs, lambda model: model((audio, steps, labels)), RTOL["diffusion"])
    model = runs["mixed_float16"][0]
    assert all(v.dtype == "float32" for v in model.ema_denoiser.weights)
    assert model.ema_denoiser.residual_stack[0].dilated_conv.compute_dtype == "float16"
    clips = model.generate(2, steps=3, label=1, guidance=2.0, progress=False)
    assert clips.dtype == np.float32 and np.all(np.isfinite(clips))


@pytest.mark.slow  # mixed precision: the diffusion and judge tests stay in every leg
@pytest.mark.parametrize("waveform", [False, True], ids=["spectrogram", "waveform"])
def test_vae_trains_in_mixed_precision(waveform):
    # No dropout: float16 dropout masks are drawn from other random numbers than float32
    # ones, so the two runs would train different networks.
    cfg = vae.VAEConfig.quick().replace(dropout=0.0)
    clip_samples = 4000  # 0.5 s at 8 kHz: 32 x 128 spectrogram images
    audio = _tones(4, clip_samples, cfg.sample_rate)

    def build():
        return vae.build_vae(clip_samples, cfg, jit_compile=False, waveform=waveform)

    runs = _train_in_both_precisions(build, audio)
    _check(runs, lambda model: model(audio, training=True), RTOL["vae"])
    model = runs["mixed_float16"][0]
    elements = clip_samples if waveform else 32 * 128
    assert model.optimizer.initial_scale == initial_loss_scale(elements) == 8.0
    assert model.decoder(np.zeros((1, *model.latent_shape)), training=False).dtype == "float32"


def test_initial_loss_scale_is_2_to_the_15_over_the_elements():
    assert initial_loss_scale(1) == 2.0**15
    assert initial_loss_scale(64 * 128) == 4.0  # the quick preset's spectrogram images
    assert initial_loss_scale(8000) == 4.0  # rounded down to a power of two
    assert initial_loss_scale(128 * 256) == 1.0 == initial_loss_scale(10**6)  # at least 1


@pytest.mark.slow  # mixed precision: the diffusion and judge tests stay in every leg
def test_vq_vae_trains_in_mixed_precision(tmp_path):
    cfg = vq.VQConfig.quick()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (4, 32, 32, 1)).astype(np.float32) ** 3  # mostly dark

    def build():
        return vq.build_vq_vae(cfg, (32, 32), jit_compile=False)

    runs = _train_in_both_precisions(build, images)
    _check(runs, lambda model: model(images), RTOL["vq"])
    model = runs["mixed_float16"][0]
    assert model.quantizer.compute_dtype == "float32"
    assert model.encoder.get_layer("to_code_dim").compute_dtype == "float32"
    # (The code indices themselves differ between the runs: k-means++ picks its initial
    # codewords by distance, so float16 encoder outputs can pick other ones.)
    codes = model.encode_codes(images)
    assert codes.shape == (4, 4, 4) and codes.min() >= 0 and codes.max() < cfg.codebook_size
    assert model.decode_codes(codes).dtype == np.float32

    # A saved mixed model loads as one under the float32 global policy: the sublayers
    # follow the model's saved policy, the float32 parts stay float32.
    model.save(tmp_path / "vq.keras")
    loaded = keras.saving.load_model(tmp_path / "vq.keras", compile=False)
    assert loaded.dtype_policy.name == "mixed_float16" and _float16_layers(loaded) > 0
    assert loaded.quantizer.compute_dtype == "float32"
    np.testing.assert_array_equal(loaded.encode_codes(images), codes)


@pytest.mark.slow  # mixed precision: the diffusion and judge tests stay in every leg
def test_wavenet_trains_in_mixed_precision():
    cfg = wavenet.WaveNetConfig.quick().replace(
        dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=8, skip_channels=16
    )
    target_length = 100
    rng = np.random.default_rng(0)
    classes = rng.integers(0, cfg.quantization_channels, (4, 16 + target_length))
    targets = rng.integers(0, cfg.quantization_channels, (4, target_length))

    def build():
        return wavenet.build_wavenet(cfg, jit_compile=False)

    runs = _train_in_both_precisions(build, classes, targets)
    _check(runs, lambda model: model(classes), RTOL["wavenet"])
    model = runs["mixed_float16"][0]
    assert model.head_logits.compute_dtype == "float32"
    fast = wavenet.generate(model, 20, "fast", seed=3, progress=False, keep_probabilities=True)
    naive = wavenet.generate(model, 20, "naive", seed=3, progress=False, keep_probabilities=True)
    assert fast.probabilities.dtype == np.float32
    # The fast generator runs its convolutions on float32 queues: close, not bit-equal.
    np.testing.assert_allclose(fast.probabilities[:, :1], naive.probabilities[:, :1], atol=1e-3)


def test_use_mixed_precision_follows_the_gpu(monkeypatch):
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert accelerator.use_mixed_precision() == ("mixed_float16" if has_gpu else "float32")
    assert accelerator.use_mixed_precision(True) == "mixed_float16"
    assert keras.config.dtype_policy().name == "mixed_float16"
    assert keras.layers.Dense(2).compute_dtype == "float16"
    assert accelerator.use_mixed_precision(False) == "float32"
    assert keras.config.dtype_policy().name == "float32"

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu:0"])
    assert accelerator.use_mixed_precision() == "mixed_float16"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert accelerator.use_mixed_precision() == "float32"


def test_precision_policy_restores_the_previous_policy():
    with accelerator.precision_policy("mixed_float16") as name:
        assert name == "mixed_float16" == keras.config.dtype_policy().name
        with accelerator.precision_policy("float32"):
            assert keras.config.dtype_policy().name == "float32"
        assert keras.config.dtype_policy().name == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError), accelerator.precision_policy("mixed_float16"):
        raise RuntimeError("fails inside")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError):
        accelerator.precision_policy("float12")
