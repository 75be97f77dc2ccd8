"""course_lib.wavenet against numpy references: mu-law, causal convolution, no time shift,
receptive field, fast vs naive generation (L3), learning a mixture of sines (L3),
saving, distribution and XLA."""

import keras
import numpy as np
import pytest

from course_lib import audio, data
from course_lib.wavenet import (
    CausalConv1D,
    FastGenerator,
    NaiveGenerator,
    WaveNet,
    WaveNetConfig,
    align_onset,
    build_wavenet,
    corpus_from_arrays,
    crop_dataset,
    crop_dataset_from_records,
    dilation_stack,
    guided_logits,
    load_audio_folder,
    receptive_field,
    start_history,
    trim_silence,
)

MU = 255


def _tiny_wavenet(
    dilations=(1, 2, 4, 8),
    kernel_size=2,
    num_classes=0,
    seed=0,
    label_frames=0,
    clip_samples=0,
    p_uncond=0.0,
):
    keras.utils.set_random_seed(seed)
    return WaveNet(
        dilations,
        kernel_size=kernel_size,
        residual_channels=8,
        dilation_channels=8,
        skip_channels=16,
        num_classes=num_classes,
        label_channels=4,
        label_frames=label_frames,
        clip_samples=clip_samples,
        p_uncond=p_uncond,
    )


def _inputs(model, classes, labels=None, first_position=0):
    if labels is None:
        return classes
    if model.label_frames:  # the clip position predicted at the first step
        return classes, labels, np.full(len(labels), first_position, np.int32)
    return classes, labels


# ----------------------------------------------------------------------------- mu-law


def test_mu_law_matches_the_numpy_formula_and_round_trips_within_half_a_step():
    x = np.linspace(-1.0, 1.0, 20001).astype(np.float32)
    companded = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    reference = np.floor((companded + 1.0) / 2.0 * MU + 0.5).astype(np.int32)
    classes = np.asarray(audio.mu_law_encode(x, 256))
    # Float rounding may move a value that sits exactly on a boundary by one class.
    assert np.abs(classes - reference).max() <= 1
    assert np.mean(classes == reference) > 0.999
    assert classes.min() == 0 and classes.max() == MU

    decoded = np.asarray(audio.mu_law_decode(classes, 256))
    y = 2.0 * classes / MU - 1.0
    np.testing.assert_allclose(
        decoded, np.sign(y) * ((1 + MU) ** np.abs(y) - 1) / MU, rtol=1e-5, atol=1e-7
    )
    # Round trip: within half a quantization step in the companded domain...
    decoded_companded = np.sign(decoded) * np.log1p(MU * np.abs(decoded)) / np.log1p(MU)
    assert np.abs(decoded_companded - companded).max() <= 1.0 / MU + 1e-5
    # ...which in amplitude is about half a step times dx/dy = ln(1 + mu)(1 + mu|x|)/mu:
    # quiet samples are reproduced far more finely than loud ones.
    half_step = np.log1p(MU) * (1 + MU * np.abs(x)) / MU**2
    assert (np.abs(decoded - x) <= 1.05 * half_step + 1e-6).all()
    assert half_step[np.abs(x) < 0.01].max() < 0.02 * half_step.max()
    every_class = np.arange(256)
    np.testing.assert_array_equal(
        audio.mu_law_encode(audio.mu_law_decode(every_class, 256), 256), every_class
    )


# ----------------------------------------------------------------------------- causal conv


def _dilated_reference(signal, kernel, dilation):
    """y[t] = sum_j x[t - d (k - 1 - j)] w[j], as a numpy convolution (flipped kernel)."""
    taps = kernel.shape[0]
    impulse_response = np.zeros(dilation * (taps - 1) + 1)
    impulse_response[::dilation] = kernel[::-1]  # np.convolve flips: conv vs correlation
    return np.convolve(signal, impulse_response)[: signal.shape[0]]


@pytest.mark.parametrize(("kernel_size", "dilation"), [(2, 1), (2, 4), (3, 2)])
def test_causal_conv_matches_np_convolve(kernel_size, dilation):
    rng = np.random.default_rng(kernel_size * 10 + dilation)
    signal = rng.normal(size=(2, 40, 3)).astype(np.float32)
    layer = CausalConv1D(2, kernel_size, dilation)
    outputs = np.asarray(layer(signal))
    kernel, bias = (np.asarray(weight) for weight in layer.get_weights())
    for clip in range(2):
        for out in range(2):
            expected = bias[out] + sum(
                _dilated_reference(signal[clip, :, inp], kernel[:, inp, out], dilation)
                for inp in range(3)
            )
            np.testing.assert_allclose(outputs[clip, :, out], expected, rtol=1e-4, atol=1e-5)
    # One step from its taps equals the sequence output at that time.
    t = 30
    taps = [signal[:, t - dilation * (kernel_size - 1 - j)] for j in range(kernel_size)]
    np.testing.assert_allclose(layer.step(taps), outputs[:, t], rtol=1e-5, atol=1e-6)


def test_causal_conv_has_no_time_shift():
    layer = CausalConv1D(1, 2, 3, use_bias=False)
    layer.build((None, None, 1))
    layer.set_weights([np.array([[[0.5]], [[2.0]]], np.float32)])  # w[0] old tap, w[1] now
    impulse = np.zeros((1, 20, 1), np.float32)
    impulse[0, 7, 0] = 1.0
    response = np.asarray(layer(impulse))[0, :, 0]
    expected = np.zeros(20)
    expected[7] = 2.0  # the current tap answers at once...
    expected[10] = 0.5  # ...the old tap one dilation later; nothing before the impulse
    np.testing.assert_allclose(response, expected, atol=1e-7)


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("num_classes", [0, 3])
def test_changing_future_inputs_never_changes_past_outputs(num_classes):
    model = _tiny_wavenet(num_classes=num_classes)
    rng = np.random.default_rng(1)
    classes = rng.integers(0, 256, size=(2, 64))
    labels = np.array([0, 2]) if num_classes else None
    changed = classes.copy()
    changed[:, 40:] = rng.integers(0, 256, size=(2, 24))
    before = np.asarray(model(_inputs(model, classes, labels)))
    after = np.asarray(model(_inputs(model, changed, labels)))
    np.testing.assert_allclose(after[:, :40], before[:, :40], rtol=1e-5, atol=1e-5)
    assert np.abs(after[:, 40] - before[:, 40]).max() > 1e-3  # the present does change


def _numpy_causal_conv(x, kernel, bias, dilation):
    """y[t] = sum_j x[t - dilation * (k - 1 - j)] @ kernel[j] + bias, zeros before t = 0."""
    k = kernel.shape[0]
    padded = np.pad(x, ((0, 0), (dilation * (k - 1), 0), (0, 0)))
    length = x.shape[1]
    return sum(padded[:, j * dilation : j * dilation + length] @ kernel[j] for j in range(k)) + bias


def test_the_model_computes_eq_2_and_3_with_every_blocks_skip_summed():
    """A numpy WaveNet, block by block (eq. 2 and 3: z_l = tanh(W_f * x + V_f h) ⊙
    sigmoid(W_g * x + V_g h), x_{l+1} = x_l + W_r z_l, skip = sum_l W_s^l z_l), with the
    model's weights: V^l and W_s^l are the l-th column and row blocks of its one condition
    and one skip projection."""
    model = _tiny_wavenet(dilations=(1, 2, 4), num_classes=3)
    rng = np.random.default_rng(7)
    classes, labels = rng.integers(0, 256, size=(2, 20)), np.array([2, 0])
    expected_logits = np.asarray(model((classes, labels)))

    def weights(layer):
        return [np.asarray(w) for w in layer.weights]

    d = model.dilation_channels
    h = weights(model.label_embedding)[0][labels]  # [b, e]
    [condition_kernel] = weights(model.condition_projection)  # [e, L * 2d]
    skip_kernel, skip_bias = weights(model.skip_projection)  # [L * d, s], [s]
    x = _numpy_causal_conv(np.eye(256)[classes], *weights(model.input_conv), 1)
    skip = skip_bias
    for index, block in enumerate(model.blocks):
        kernel, bias = weights(block.dilated_conv)
        condition = h @ condition_kernel[:, index * 2 * d : (index + 1) * 2 * d]  # V h
        pre = _numpy_causal_conv(x, kernel, bias, block.dilation_rate) + condition[:, None]
        z = np.tanh(pre[..., :d]) / (1 + np.exp(-pre[..., d:]))  # eq. 2
        skip = skip + z @ skip_kernel[index * d : (index + 1) * d]
        if block.residual_projection is not None:
            residual_kernel, residual_bias = weights(block.residual_projection)
            x = x + z @ residual_kernel + residual_bias
    hidden_kernel, hidden_bias = weights(model.head_hidden)
    logits_kernel, logits_bias = weights(model.head_logits)
    hidden = np.maximum(np.maximum(skip, 0) @ hidden_kernel + hidden_bias, 0)
    np.testing.assert_allclose(
        expected_logits, hidden @ logits_kernel + logits_bias, rtol=1e-4, atol=1e-4
    )
    # Two weights for all blocks' V and W_s: per block, only the dilated convolution's
    # kernel and bias, and the residual 1x1's (none on the last block).
    per_block = 2 * len(model.blocks) + 2 * (len(model.blocks) - 1)
    assert len(model.trainable_weights) == 2 + 1 + 1 + per_block + 2 + 4


@pytest.mark.parametrize(("dilations", "kernel_size"), [((1, 2, 4, 8, 1, 2), 2), ((1, 3, 2), 3)])
def test_receptive_field_matches_an_impulse_measurement(dilations, kernel_size):
    model = _tiny_wavenet(dilations, kernel_size)
    field = receptive_field(dilations, kernel_size)
    length = field + 12
    base = np.full(length, 100)
    # Row p changes only input p; the last output moves iff p is within its field.
    probes = np.tile(base, (length, 1))
    probes[np.arange(length), np.arange(length)] = 200
    last = np.asarray(model(np.vstack([base, probes])))[:, -1]  # [1 + length, classes]
    moved = np.abs(last[1:] - last[0]).max(axis=1) > 1e-6
    assert moved.sum() == field
    assert moved[-field:].all() and not moved[:-field].any()
    assert model.receptive_field == field


def test_receptive_field_formula_and_presets():
    assert receptive_field(dilation_stack(512, 4), 2) == 4094
    assert receptive_field((1, 2, 4), 3) == 2 * (1 + 7) + 1
    full, quick = WaveNetConfig.full(), WaveNetConfig.quick()
    assert full.dilations == tuple(2**i for i in range(10)) * 3
    assert (full.residual_channels, full.dilation_channels, full.skip_channels) == (32, 32, 512)
    assert full.quantization_channels == 256 and full.sample_rate in (8000, 16000)
    assert quick.receptive_field < full.receptive_field / 10
    assert WaveNetConfig.from_dict(full.to_dict()) == full
    with pytest.raises(ValueError, match="power of two"):
        dilation_stack(100, 2)


def test_keras_file_reload_reproduces_outputs(tmp_path):
    model = _tiny_wavenet(num_classes=3)
    classes = np.random.default_rng(2).integers(0, 256, size=(2, 30))
    labels = np.array([1, 2])
    model.save(tmp_path / "wavenet.keras")
    reloaded = keras.saving.load_model(tmp_path / "wavenet.keras")
    assert reloaded.receptive_field == model.receptive_field
    np.testing.assert_allclose(reloaded((classes, labels)), model((classes, labels)), atol=1e-6)
    with pytest.raises(ValueError, match="conditioned on 3 labels"):
        reloaded(classes)

    guidable = _tiny_wavenet(num_classes=3, p_uncond=0.2)
    guidable.save(tmp_path / "guidable.keras")
    reloaded = keras.saving.load_model(tmp_path / "guidable.keras")
    assert (reloaded.p_uncond, reloaded.no_label) == (0.2, 3)
    no_word = np.array([3, 3])
    expected = guidable((classes, no_word))
    np.testing.assert_allclose(reloaded((classes, no_word)), expected, atol=1e-6)


# ----------------------------------------------------------------------------- generation


def _softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def _reference_logits(model, generated, labels=None, seed_audio=None):
    """One forward pass over history + ``generated`` classes ``[b, n]``: the logits
    ``[b, n, q]`` that predicted each generated sample."""
    history = np.asarray(start_history(model, len(generated), seed_audio))
    sequence = np.concatenate([history, generated[:, :-1]], axis=1)
    # The history's last input predicts clip position 0: its first input predicts 1 - len.
    first = 1 - history.shape[1]
    return np.asarray(model(_inputs(model, sequence, labels, first)))[:, history.shape[1] - 1 :]


def _generate_both(model, **options):
    fast = FastGenerator(model, options.pop("num_clips"), steps_per_call=7).generate(
        keep_probabilities=True, progress=False, **options
    )
    naive = NaiveGenerator(model).generate(
        num_clips=fast.classes.shape[0], keep_probabilities=True, progress=False, **options
    )
    return fast, naive


@pytest.mark.parametrize(
    ("kernel_size", "num_classes", "temperature", "seeded", "label_frames"),
    [(2, 0, 1.0, False, 0), (3, 3, 0.8, True, 0), (2, 3, 0.0, True, 0), (2, 3, 1.0, False, 4)],
)
def test_fast_and_naive_generation_give_the_same_probabilities(
    kernel_size, num_classes, temperature, seeded, label_frames
):
    model = _tiny_wavenet((1, 2, 4, 1, 2), kernel_size, num_classes, 0, label_frames, 40)
    if label_frames:  # frames that differ a lot, so a wrong frame shows
        table = 3.0 * np.random.default_rng(4).standard_normal((3, label_frames * 4))
        model.label_embedding.embeddings.assign(table.astype(np.float32))
    options = {"num_samples": 45, "num_clips": 2, "temperature": temperature, "seed": 5}
    if num_classes:
        options["labels"] = [0, 2]
    if seeded:
        options["seed_audio"] = 0.5 * np.sin(np.arange(2 * 50).reshape(2, 50) / 3.0)
    fast, naive = _generate_both(model, **options)
    np.testing.assert_array_equal(fast.classes, naive.classes)
    np.testing.assert_allclose(fast.probabilities, naive.probabilities, atol=1e-5)
    assert fast.probabilities.shape == (2, 45, 256)
    np.testing.assert_allclose(fast.audio, audio.mu_law_decode(fast.classes, 256), atol=1e-7)

    # A third reference: one forward pass over history + generated samples.
    labels = np.array(options["labels"]) if num_classes else None
    logits = _reference_logits(model, fast.classes, labels, options.get("seed_audio"))
    expected = _softmax(logits / (temperature or 1.0))
    np.testing.assert_allclose(fast.probabilities, expected, atol=1e-5)
    if temperature == 0:
        np.testing.assert_array_equal(fast.classes, logits.argmax(-1))


def test_word_over_time_conditions_each_position_on_its_frame():
    model = _tiny_wavenet((1, 2), num_classes=2, label_frames=4, clip_samples=40)
    assert model.receptive_field == 5
    np.testing.assert_array_equal(
        np.asarray(model.frame_at(np.array([-3, 0, 9, 10, 39, 40, 99]))), [0, 0, 0, 1, 3, 3, 3]
    )
    # The two words agree but for frame 2: clip positions 20..29.
    table = np.zeros((2, 4 * 4), np.float32)
    table[1, 8:12] = 1.0
    model.label_embedding.embeddings.assign(table)
    classes = np.random.default_rng(3).integers(0, 256, size=(1, 50))
    start = -5  # the first step predicts clip position -5 (silence before the clip)
    word_0 = np.asarray(model(_inputs(model, classes, np.array([0]), start)))
    word_1 = np.asarray(model(_inputs(model, classes, np.array([1]), start)))
    changed = np.flatnonzero(np.abs(word_1 - word_0).max(axis=-1)[0] > 1e-6) + start
    # From the frame's first position to its last plus what the causal stack carries on.
    assert changed.min() == 20 and 29 <= changed.max() <= 29 + model.receptive_field - 1
    with pytest.raises(ValueError, match="pass \\(classes, labels, starts\\)"):
        model((classes, np.array([0])))
    with pytest.raises(ValueError, match="needs num_classes >= 1 and clip_samples >= 1"):
        _tiny_wavenet(num_classes=2, label_frames=4)


def test_generation_is_reproducible_with_a_seed_and_checks_its_arguments():
    model = _tiny_wavenet(num_classes=2)
    generator = FastGenerator(model, num_clips=3)
    first = generator.generate(30, labels=1, seed=11, progress=False)
    again = generator.generate(30, labels=1, seed=11, progress=False)
    other = generator.generate(30, labels=1, seed=12, progress=False)
    np.testing.assert_array_equal(first.classes, again.classes)
    assert (first.classes != other.classes).any()
    assert first.audio.shape == (3, 30) and np.abs(first.audio).max() <= 1.0
    with pytest.raises(ValueError, match="conditioned on 2 labels"):
        generator.generate(5, progress=False)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1"):
        generator.generate(5, labels=2, progress=False)
    with pytest.raises(ValueError, match="makes 3 clips"):
        generator.generate(5, num_clips=2, labels=0, progress=False)
    with pytest.raises(ValueError, match="temperature"):
        generator.generate(5, labels=0, temperature=-1.0, progress=False)
    with pytest.raises(ValueError, match="trained with label dropout"):
        generator.generate(5, labels=0, guidance=2.0, progress=False)


# ----------------------------------------------------------------------------- guidance


def test_guided_logits_match_the_numpy_formula():
    rng = np.random.default_rng(8)
    conditional, unconditional = rng.standard_normal((2, 3, 5)).astype(np.float32)
    mixed = guided_logits(np.concatenate([conditional, unconditional]), 2.5)
    expected = unconditional + 2.5 * (conditional - unconditional)
    np.testing.assert_allclose(np.asarray(mixed), expected, rtol=1e-5, atol=1e-6)


def test_training_drops_labels_at_p_uncond_and_inference_never_does():
    model = _tiny_wavenet(num_classes=3, p_uncond=0.25)
    assert model.no_label == 3 and model.label_embedding.input_dim == 4
    assert _tiny_wavenet(num_classes=3).no_label is None
    dropped = np.asarray(model.drop_labels(np.full(20_000, 2, np.int32)))
    assert set(np.unique(dropped).tolist()) == {2, 3}
    assert abs((dropped == 3).mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 20_000)

    classes = np.random.default_rng(1).integers(0, 256, size=(64, 20))
    word, no_word = np.full(64, 1), np.full(64, 3)
    with_word, without = np.asarray(model((classes, word))), np.asarray(model((classes, no_word)))
    assert np.abs(with_word - without).max() > 1e-3  # the rows below can be told apart
    trained = np.asarray(model((classes, word), training=True))
    as_word = np.isclose(trained, with_word, atol=1e-6).all(axis=(1, 2))
    as_no_word = np.isclose(trained, without, atol=1e-6).all(axis=(1, 2))
    assert (as_word | as_no_word).all() and as_word.any() and as_no_word.any()
    np.testing.assert_allclose(model((classes, word)), with_word, atol=1e-6)  # no dropout
    with pytest.raises(ValueError, match="unconditional"):
        _tiny_wavenet(num_classes=0, p_uncond=0.1)
    with pytest.raises(ValueError, match="p_uncond must be in"):
        _tiny_wavenet(num_classes=2, p_uncond=1.0)


@pytest.mark.parametrize("label_frames", [0, 4])
def test_guided_generation_draws_from_the_guided_distribution(label_frames):
    model = _tiny_wavenet((1, 2, 4, 1, 2), 2, 3, 0, label_frames, 40, p_uncond=0.1)
    table = 3.0 * np.random.default_rng(4).standard_normal((4, max(label_frames, 1) * 4))
    model.label_embedding.embeddings.assign(table.astype(np.float32))  # words that differ
    labels = np.array([0, 2])
    options = {"num_samples": 45, "num_clips": 2, "labels": labels, "seed": 5, "guidance": 3.0}
    fast, naive = _generate_both(model, **options)
    np.testing.assert_array_equal(fast.classes, naive.classes)
    np.testing.assert_allclose(fast.probabilities, naive.probabilities, atol=1e-5)

    # The reference: the model over history + drawn samples, with and without the word.
    conditional = _reference_logits(model, fast.classes, labels)
    unconditional = _reference_logits(model, fast.classes, np.full(2, model.no_label))
    expected = _softmax(unconditional + 3.0 * (conditional - unconditional))
    np.testing.assert_allclose(fast.probabilities, expected, atol=1e-5)
    assert np.abs(np.log(_softmax(conditional) / expected)).max() > 0.1  # guidance mattered

    # One FastGenerator serves guided and plain calls, in any order.
    generator = FastGenerator(model, 2)
    plain = generator.generate(30, labels=labels, seed=7, progress=False)
    generator.generate(30, labels=labels, seed=7, guidance=3.0, progress=False)
    again = generator.generate(30, labels=labels, seed=7, progress=False)
    np.testing.assert_array_equal(plain.classes, again.classes)
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        generator.generate(5, labels=0, guidance=-1.0, progress=False)


def test_every_preset_guides_and_the_config_asks_for_label_dropout_first():
    for preset in (WaveNetConfig.full(), WaveNetConfig.quick(), WaveNetConfig.laptop()):
        assert (preset.p_uncond, preset.guidance) == (0.1, 3.0)
    with pytest.raises(ValueError, match="set p_uncond > 0"):
        WaveNetConfig.quick().replace(p_uncond=0.0)
    WaveNetConfig.quick().replace(p_uncond=0.0, guidance=1.0)  # a plain conditional model
    with pytest.raises(ValueError, match="p_uncond must be in"):
        WaveNetConfig.quick().replace(p_uncond=-0.1)
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        WaveNetConfig.quick().replace(guidance=-1.0)
    assert build_wavenet(WaveNetConfig.quick(), num_classes=2).no_label == 2
    assert build_wavenet(WaveNetConfig.quick()).no_label is None  # unconditional: no dropout


# ----------------------------------------------------------------------------- training data


def test_trim_silence_keeps_the_loud_frames():
    rate = 4000
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(rate) / rate)
    clip = np.concatenate([np.zeros(1024), 0.001 * np.ones(512), tone, np.zeros(2048)])
    trimmed = trim_silence(clip, threshold=0.01, frame_length=512)
    assert trimmed.shape[0] == pytest.approx(tone.shape[0], abs=512)
    assert np.abs(trimmed).max() == pytest.approx(0.5, abs=1e-3)
    assert trim_silence(np.zeros(5000), 0.01).size == 0
    assert trim_silence(clip, threshold=0).shape == clip.shape


def _is_window_of(crop, padded_classes):
    length = crop.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(padded_classes, length)
    return bool((windows == crop).all(axis=1).any())


def test_crops_are_receptive_field_plus_target_windows_with_next_sample_targets():
    rate, field, target = 4000, 17, 40
    ramp = np.linspace(-0.9, 0.9, 300)
    corpus = corpus_from_arrays([ramp, -ramp[:100]], rate, labels=[0, 1])
    dataset = crop_dataset(corpus, field, target, batch_size=4, seed=3, with_labels=True)
    (inputs, labels), targets = next(iter(dataset))
    inputs, labels, targets = inputs.numpy(), labels.numpy(), targets.numpy()
    assert inputs.shape == (4, field + target - 1) and targets.shape == (4, target)
    np.testing.assert_array_equal(inputs[:, field:], targets[:, :-1])  # next-sample targets
    silence = int(audio.mu_law_encode(0.0))
    for crop, target_row, label in zip(inputs, targets, labels, strict=True):
        clip = ramp if label == 0 else -ramp[:100]
        tail = max(0, field + target - clip.shape[0] - field)
        padded = np.concatenate(
            [np.full(field, silence), audio.mu_law_encode(clip), np.full(tail, silence)]
        )
        assert _is_window_of(np.append(crop, target_row[-1]), padded)
    again = next(iter(crop_dataset(corpus, field, target, batch_size=4, seed=3, with_labels=True)))
    np.testing.assert_array_equal(again[0][0], inputs)  # same seed, same crops


def test_crops_with_starts_give_the_clip_position_of_their_first_prediction():
    rate, field, target = 4000, 9, 30
    ramp = np.linspace(-0.9, 0.9, 200)  # each sample's class tells its clip position
    corpus = corpus_from_arrays([ramp], rate, labels=[0], silence_threshold=0)
    dataset = crop_dataset(corpus, field, target, batch_size=8, seed=1, with_starts=True)
    (inputs, labels, starts), targets = next(iter(dataset))
    np.testing.assert_array_equal(inputs.numpy()[:, field:], targets.numpy()[:, :-1])
    assert labels.numpy().tolist() == [0] * 8
    ramp_classes = np.asarray(audio.mu_law_encode(ramp))
    for start, target_row in zip(starts.numpy(), targets.numpy(), strict=True):
        # The first target (predicted at step field - 1) is clip sample start + field - 1.
        first_target = start + field - 1
        assert first_target >= 0 and first_target + target <= len(ramp)
        np.testing.assert_array_equal(
            target_row, ramp_classes[first_target : first_target + target]
        )
    assert len(set(starts.numpy().tolist())) > 1


def _shifted(clip, shift):
    """numpy's reference: ``clip`` moved by ``shift`` samples, zeros shifted in."""
    moved = np.roll(clip, shift)
    if shift > 0:
        moved[:shift] = 0
    elif shift < 0:
        moved[shift:] = 0
    return moved


def test_align_onset_moves_the_word_to_the_onset_and_never_cuts_it():
    length, frame = 1000, 10
    rng = np.random.default_rng(0)
    quiet = 0.001 * rng.standard_normal(length)  # below a tenth of the word's loudness
    word = np.zeros(length)
    word[300:500] = 0.5 * np.sin(np.arange(200) / 3)  # frames 30 to 49
    clip = (quiet + word).astype(np.float32)
    aligned = align_onset(clip, 100, frame)
    assert aligned.shape == (length,) and aligned.dtype == np.float32
    np.testing.assert_array_equal(aligned, _shifted(clip, -200))  # moved earlier
    np.testing.assert_array_equal(align_onset(clip, 650, frame), _shifted(clip, 350))  # later
    np.testing.assert_array_equal(align_onset(clip, 300, frame), clip)  # already there
    # A word too long to start at the onset starts as late as the clip allows, whole.
    long_word = np.zeros(length, np.float32)
    long_word[200:900] = 0.5
    kept = align_onset(long_word, 600, frame)
    np.testing.assert_array_equal(kept, _shifted(long_word, 100))
    assert np.sum(kept**2) == np.sum(long_word**2)
    # The threshold is relative: a quiet voice is aligned like a loud one.
    np.testing.assert_array_equal(align_onset(0.01 * clip, 100, frame), 0.01 * aligned)
    assert align_onset(np.zeros(length), 100, frame).size == 0  # nothing to align: dropped
    with pytest.raises(ValueError, match="0 <= onset < clip length \\(1000\\)"):
        align_onset(clip, length, frame)
    with pytest.raises(ValueError, match="fraction"):
        align_onset(clip, 100, frame, fraction=0.0)


def test_crops_of_aligned_words_carry_their_clip_positions(tmp_path):
    rate, clip_samples, field, target, onset = 4000, 800, 33, 100, 120
    ramp = np.linspace(0.1, 0.9, 200).astype(np.float32)  # each sample's class is its place
    examples = []
    for index, place in enumerate((40, 280, 520, 600)):  # the word at four places, on frames
        clip = np.zeros(clip_samples, np.float32)
        clip[place : place + 200] = ramp
        examples.append(
            data.serialize_example(audio.to_pcm16(clip), rate, index % 2, "ab"[index % 2])
        )
    examples.append(data.serialize_example(audio.to_pcm16(np.zeros(clip_samples)), rate, 0, "a"))
    data.write_shard(tmp_path / data.shard_name("train", 0, 1), examples)
    data.write_manifest(
        tmp_path,
        data.Manifest(rate, clip_samples, ["a", "b"], {"train": {"examples": 5, "shards": 1}}),
    )
    dataset = crop_dataset_from_records(tmp_path, field, target, batch_size=16, word_onset=onset)
    (inputs, labels, starts), targets = next(iter(dataset))
    assert inputs.shape == (16, field + target - 1) and targets.shape == (16, target)
    assert set(labels.numpy().tolist()) <= {0, 1}
    # Every clip, aligned, is the same: the ramp from clip position `onset` (PCM rounding
    # aside); the silent clip is dropped. Targets are that clip's classes from the crop's
    # first prediction on, silence outside it.
    aligned = np.zeros(clip_samples, np.float32)
    aligned[onset : onset + 200] = ramp
    silence = int(audio.mu_law_encode(0.0))
    padded = np.concatenate(
        [np.full(field, silence), audio.mu_law_encode(aligned), np.full(field + target, silence)]
    )
    for start, row in zip(starts.numpy(), targets.numpy(), strict=True):
        first = start + field - 1  # the clip position of the first target
        assert 0 <= first <= clip_samples - target
        np.testing.assert_allclose(row, padded[field + first : field + first + target], atol=1)
    assert len(set(starts.numpy().tolist())) > 1


def test_crops_from_a_converted_dataset(tmp_path):
    rate, clip_samples = 4000, 800
    tone = (0.5 * np.sin(2 * np.pi * 250 * np.arange(clip_samples) / rate)).astype(np.float32)
    examples = [
        data.serialize_example(
            audio.to_pcm16(tone * (index + 1) / 4), rate, index % 2, "ab"[index % 2]
        )
        for index in range(4)
    ]
    examples.append(data.serialize_example(audio.to_pcm16(np.zeros(clip_samples)), rate, 0, "a"))
    data.write_shard(tmp_path / data.shard_name("train", 0, 1), examples)
    data.write_manifest(
        tmp_path,
        data.Manifest(rate, clip_samples, ["a", "b"], {"train": {"examples": 5, "shards": 1}}),
    )
    dataset = crop_dataset_from_records(tmp_path, 33, 200, batch_size=8, with_labels=True)
    (inputs, labels), targets = next(iter(dataset))
    assert inputs.shape == (8, 33 + 200 - 1) and targets.shape == (8, 200)
    assert set(labels.numpy().tolist()) <= {0, 1}
    np.testing.assert_array_equal(inputs[:, 33:], targets[:, :-1])
    silence = int(audio.mu_law_encode(0.0))
    # Targets always lie in the audio, never in the front padding: an all-silent row
    # could only come from the silent example, which trimming drops.
    assert (targets.numpy() != silence).any(axis=1).all()


def test_audio_folder_labels_resampling_and_skipped_files(tmp_path):
    import soundfile

    def tone(rate, seconds=0.5):
        return 0.4 * np.sin(2 * np.pi * 200 * np.arange(int(rate * seconds)) / rate)

    (tmp_path / "yes").mkdir()
    (tmp_path / "no").mkdir()
    (tmp_path / "_background_noise_").mkdir()
    soundfile.write(tmp_path / "yes" / "a.wav", tone(16000), 16000)
    soundfile.write(tmp_path / "no" / "b.WAV", tone(8000), 8000)
    soundfile.write(tmp_path / "no" / "quiet.wav", np.zeros(4000), 8000)
    soundfile.write(tmp_path / "_background_noise_" / "n.wav", tone(8000), 8000)
    (tmp_path / "yes" / "broken.wav").write_bytes(b"RIFF1234WAVEjunk")
    corpus = load_audio_folder(tmp_path, 4000)
    assert corpus.label_names == ["no", "yes"]
    assert sorted(clip.shape[0] for clip in corpus.clips) == [2000, 2000]  # 0.5 s at 4 kHz
    assert sorted(name for name, _ in corpus.skipped) == ["no/quiet.wav", "yes/broken.wav"]
    assert "silent" in dict(corpus.skipped)["no/quiet.wav"]
    with pytest.raises(ValueError, match="no usable audio"):
        load_audio_folder(tmp_path / "no", 4000, silence_threshold=0.9)


# ----------------------------------------------------------------------------- learning (L3)


def _spectrum_share_near(clip, rate, frequencies, width=15.0):
    spectrum = np.abs(np.fft.rfft(clip * np.hanning(clip.shape[0]))) ** 2
    bins = np.fft.rfftfreq(clip.shape[0], 1.0 / rate)
    near = np.zeros_like(bins, dtype=bool)
    for frequency in frequencies:
        near |= np.abs(bins - frequency) <= width
    return spectrum[near].sum() / spectrum.sum(), bins[np.argmax(spectrum)]


@pytest.mark.slow  # learning on fixtures
def test_training_on_a_mixture_of_sines_learns_it_and_generates_its_frequencies():
    rate, frequencies = 4000, (200.0, 500.0)
    t = np.arange(4 * rate) / rate
    mixture = sum(0.4 * np.sin(2 * np.pi * f * t) for f in frequencies)
    corpus = corpus_from_arrays([mixture], rate)
    config = WaveNetConfig.quick().replace(
        dilations=(1, 2, 4, 8, 16),
        residual_channels=16,
        dilation_channels=16,
        skip_channels=32,
        learning_rate=3e-3,
    )
    keras.utils.set_random_seed(0)
    model = build_wavenet(config)
    dataset = crop_dataset(corpus, model.receptive_field, 256, batch_size=8, seed=0)
    first_batch = next(iter(dataset))
    start_loss = float(model.compute_loss(y=first_batch[1], y_pred=model(first_batch[0])))
    assert start_loss == pytest.approx(np.log(256), rel=0.1)  # untrained: about uniform
    model.fit(dataset, epochs=1, steps_per_epoch=90, verbose=0)
    end_loss = float(model.evaluate(dataset, steps=3, verbose=0))
    assert end_loss < 0.05 * start_loss

    generated = FastGenerator(model).generate(2000, seed=0, progress=False).audio[0, 400:]
    # Each training frequency holds a large share of the energy (white noise: ~1.5%).
    for frequency in frequencies:
        assert _spectrum_share_near(generated, rate, [frequency])[0] > 0.25
    strongest = _spectrum_share_near(generated, rate, frequencies)[1]
    assert min(abs(strongest - f) for f in frequencies) <= 15.0
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 1600)
    assert _spectrum_share_near(noise, rate, frequencies)[0] < 0.1  # the check can fail


# ----------------------------------------------------------------------------- distribution


def _one_step_batches(with_labels):
    rate = 4000
    clip = 0.5 * np.sin(2 * np.pi * 300 * np.arange(rate) / rate)
    corpus = corpus_from_arrays([clip, clip[::-1]], rate, labels=[0, 1])
    return crop_dataset(corpus, 17, 64, batch_size=4, seed=0, with_labels=with_labels)


def _small_config():
    return WaveNetConfig.quick().replace(
        dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=8, skip_channels=16
    )


@pytest.mark.slow  # MirroredStrategy: the judge's step stays in every leg
def test_one_training_step_under_a_mirrored_strategy(two_cpu_strategy):
    with two_cpu_strategy.scope():  # with label dropout: its draws run on every replica
        model = build_wavenet(_small_config().replace(p_uncond=0.5), num_classes=2)
    before = [weight.copy() for weight in model.get_weights()]
    history = model.fit(_one_step_batches(True), epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert int(model.optimizer.iterations.numpy()) == 1
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights(), strict=True))


@pytest.mark.parametrize("p_uncond", [0.0, 0.5])
def test_one_training_step_with_jit_compile(p_uncond):
    num_classes = 2 if p_uncond else 0
    config = _small_config().replace(p_uncond=p_uncond, guidance=3.0 if p_uncond else 1.0)
    model = build_wavenet(config, num_classes=num_classes, jit_compile=True)
    before = [weight.copy() for weight in model.get_weights()]
    batches = _one_step_batches(bool(num_classes))
    history = model.fit(batches, epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights(), strict=True))


class _Disconnect(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise ConnectionAbortedError("runtime disconnected")


@pytest.mark.slow  # train-then-resume
def test_fit_with_the_resume_callback_continues_after_a_disconnect(tmp_path):
    from course_lib import training

    with pytest.raises(ConnectionAbortedError):
        build_wavenet(_small_config()).fit(
            _one_step_batches(False),
            epochs=4,
            steps_per_epoch=2,
            verbose=0,
            callbacks=[training.resume_callback(tmp_path), _Disconnect()],
        )
    restarted = build_wavenet(_small_config())
    epochs = []
    restarted.fit(
        _one_step_batches(False),
        epochs=4,
        steps_per_epoch=2,
        verbose=0,
        callbacks=[
            training.resume_callback(tmp_path),
            keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch)),
        ],
    )
    assert epochs == [2, 3]
    assert int(restarted.optimizer.iterations.numpy()) == 8
