"""course_lib.training: resume after a disconnect (R3), NaN stop (R4), epoch-end samples,
the energy of training sessions, and train_or_restore."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import audio, energy, training


def _regression_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, x @ np.array([[1.0], [-2.0], [0.5]], np.float32)


class _Disconnect(keras.callbacks.Callback):
    """Simulates a Colab disconnect: raises at the end of a given epoch."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise ConnectionAbortedError("runtime disconnected")


def test_training_resumes_at_the_epoch_reached_with_its_weights(tmp_path):
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = _regression_model()
    with pytest.raises(ConnectionAbortedError):
        model.fit(
            x,
            y,
            epochs=6,
            verbose=0,
            shuffle=False,
            callbacks=[training.resume_callback(tmp_path), _Disconnect(at_epoch=2)],
        )
    weights_at_disconnect = [w.copy() for w in model.get_weights()]

    keras.utils.set_random_seed(1)  # a fresh runtime: different initial weights
    restarted = _regression_model()
    seen = []
    epochs_seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))
    # Checks the restored weights before any further training step.
    restored = []
    first_batch = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: (
            restored.append([w.copy() for w in restarted.get_weights()]) if not restored else None
        )
    )
    restarted.fit(
        x,
        y,
        epochs=6,
        verbose=0,
        shuffle=False,
        callbacks=[training.resume_callback(tmp_path), first_batch, epochs_seen],
    )
    assert seen == [3, 4, 5]
    for before, after in zip(weights_at_disconnect, restored[0], strict=True):
        np.testing.assert_allclose(before, after)


def test_stop_on_nan_stops_with_a_clear_message(capsys):
    x, y = _data()
    y[5] = np.nan
    model = _regression_model()
    stopper = training.StopOnNaN()
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0, shuffle=False, callbacks=[stopper])
    assert stopper.stopped_at == (0, 0)
    assert len(history.history["loss"]) == 1
    assert "Lower the learning rate" in capsys.readouterr().out
    with pytest.raises(FloatingPointError, match="became nan"):
        model.fit(
            x,
            y,
            epochs=1,
            batch_size=8,
            verbose=0,
            callbacks=[training.StopOnNaN(raise_error=True)],
        )


def test_stop_after_ends_training_when_the_time_budget_is_spent():
    x, y = _data()
    now = [0.0]

    def clock():  # every call is one more second: step k ends at k + 1 seconds
        now[0] += 1.0
        return now[0]

    budget = training.StopAfter(5, clock=clock)
    history = _regression_model().fit(
        x, y, epochs=100, batch_size=8, verbose=0, shuffle=False, callbacks=[budget]
    )
    # 8 steps per epoch: the 5th step spends the budget, in the first epoch
    assert (budget.steps, budget.elapsed, len(history.history["loss"])) == (5, 5.0, 1)
    budget = training.StopAfter(12, clock=clock)
    _regression_model().fit(x, y, epochs=100, batch_size=8, verbose=0, callbacks=[budget])
    assert (budget.steps, budget.elapsed) == (12, 12.0)  # counted afresh per fit
    with pytest.raises(ValueError, match="budget must be > 0 seconds"):
        training.StopAfter(0)


def test_time_budget_counts_across_sessions_and_a_spent_budget_only_restores(tmp_path):
    x, y = _data()
    now = [0.0]

    def clock():  # every call is three more seconds: each epoch takes 3 s
        now[0] += 3.0
        return now[0]

    def session(model, minutes, extra=()):
        epochs = training.epochs_to_fit(tmp_path, 100, minutes)
        callbacks = training.resumable_callbacks(tmp_path, minutes)
        callbacks[-1].clock = clock
        model.fit(x, y, epochs=epochs, verbose=0, shuffle=False, callbacks=[*callbacks, *extra])
        return epochs

    keras.utils.set_random_seed(0)
    with pytest.raises(ConnectionAbortedError):  # disconnected after epoch 2: 3 epochs, 9 s
        session(_regression_model(), 0.25, [_Disconnect(at_epoch=2)])
    assert (training.epochs_done(tmp_path), training.training_seconds(tmp_path)) == (3, 9.0)
    resumed = _regression_model()
    assert session(resumed, 0.25) == 100  # the budget, 15 s, is not spent yet
    # it resumed and stopped at the end of the epoch that spent the budget: 5 epochs
    assert (training.epochs_done(tmp_path), training.training_seconds(tmp_path)) == (5, 15.0)
    finished, seen = _regression_model(), []
    epochs_seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))
    assert session(finished, 0.25, [epochs_seen]) == 5  # spent: fit only restores
    assert seen == [] and training.epochs_done(tmp_path) == 5
    for trained, restored in zip(resumed.get_weights(), finished.get_weights(), strict=True):
        np.testing.assert_allclose(trained, restored)
    assert training.epochs_to_fit(tmp_path, 100) == 100  # no budget: all epochs
    assert training.epochs_to_fit(tmp_path, 4, 0.25) == 4
    with pytest.raises(ValueError, match="budget must be > 0 minutes"):
        training.TimeBudget(tmp_path, 0)


def test_audio_samples_written_every_n_epochs_and_at_the_end(tmp_path):
    x, y = _data()
    rate = 4000

    def generate(model):
        t = np.arange(rate // 10) / rate
        return np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)])[..., None]

    callback = training.AudioSamplesAtEpochEnd(generate, rate, folder=tmp_path, every=2, show=False)
    _regression_model().fit(x, y, epochs=5, verbose=0, callbacks=[callback])
    assert [epoch for epoch, _ in callback.history] == [1, 3, 4]
    assert sorted(p.name for p in tmp_path.glob("*.wav"))[:2] == [
        "epoch_002_0.wav",
        "epoch_002_1.wav",
    ]
    samples, read_rate = audio.load_audio(tmp_path / "epoch_005_1.wav")
    assert read_rate == rate and np.argmax(np.abs(np.fft.rfft(samples))) == 88
    with pytest.raises(ValueError, match="every"):
        training.AudioSamplesAtEpochEnd(generate, rate, every=0)


def test_audio_samples_follow_the_clock_and_a_stop_on_a_budget():
    x, y = _data()
    now = [0.0]

    def tick(epoch, logs):
        now[0] += 40.0  # every epoch takes 40 s of the fake clock
        if epoch == 6:
            model.stop_training = True  # as TimeBudget does, before the samples callback

    def generate(_):
        now[0] += 1000.0  # generating is not training: it must not count
        return np.zeros((1, 8))

    model = _regression_model()
    callback = training.AudioSamplesAtEpochEnd(
        generate, 8000, every=100, every_minutes=1.5, show=False, clock=lambda: now[0]
    )
    model.fit(
        x,
        y,
        epochs=50,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=tick), callback],
    )
    # 40, 80 s: not yet; 120 s at epoch 3 (index 2); then 120 s again at index 5; the
    # stop at index 6 samples the last epoch trained.
    assert [epoch for epoch, _ in callback.history] == [2, 5, 6]
    with pytest.raises(ValueError, match="every_minutes >= 0"):
        training.AudioSamplesAtEpochEnd(generate, 8000, every_minutes=-1)


def test_resumable_fit_returns_every_epoch_and_finishes_at_once_when_done(tmp_path):
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(0)
    model = _regression_model()
    with pytest.raises(ConnectionAbortedError):
        training.resumable_fit(model, dataset, tmp_path, 5, [_Disconnect(at_epoch=1)], verbose=0)
    assert len(training.read_history(tmp_path)["loss"]) == 2  # epochs 0 and 1 were logged

    restarted = _regression_model()
    history = training.resumable_fit(restarted, dataset, tmp_path, 5, verbose=0)
    assert len(history["loss"]) == 5
    assert history["loss"][-1] < history["loss"][0]
    trained = [w.copy() for w in restarted.get_weights()]

    again = _regression_model()  # a new session after training finished
    ran = []
    counter = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: ran.append(e))
    assert training.resumable_fit(again, dataset, tmp_path, 5, [counter], verbose=0) == history
    assert ran == []
    for expected, restored in zip(trained, again.get_weights(), strict=True):
        np.testing.assert_allclose(restored, expected)


def test_resumable_fit_stops_on_its_budget_and_a_rerun_only_restores(tmp_path):
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = _regression_model()
    # a budget far shorter than one epoch: the first epoch spends it, training stops there
    history = training.resumable_fit(model, dataset, tmp_path, 50, minutes=1e-6, verbose=0)
    assert len(history["loss"]) == 1 and training.training_seconds(tmp_path) > 0
    ran = []
    counter = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: ran.append(e))
    again = _regression_model()
    assert training.resumable_fit(again, dataset, tmp_path, 50, [counter], minutes=1e-6) == history
    assert ran == []  # spent: nothing trains
    for expected, restored in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_allclose(restored, expected)


def test_read_history_keeps_the_last_record_of_a_redone_epoch(tmp_path):
    lines = [
        '{"epoch": 0, "loss": 3.0}',
        '{"epoch": 1, "loss": 2.5}',
        '{"epoch": 1, "loss": 2.0, "val_loss": 2.2}',
    ]
    (tmp_path / training.HISTORY_NAME).write_text("\n".join(lines) + "\n")
    history = training.read_history(tmp_path)
    assert history["loss"] == [3.0, 2.0]
    assert np.isnan(history["val_loss"][0]) and history["val_loss"][1] == 2.2
    assert training.read_history(tmp_path / "nothing") == {}


@pytest.fixture
def sessions(monkeypatch):
    """codecarbon replaced by a fake that measures 1 s and 1e-6 kWh per session."""
    started = []

    @contextlib.contextmanager
    def fake_measure_energy(phase, **options):
        report = energy.EnergyReport(phase)
        started.append(report)
        try:
            yield report
        finally:
            report.seconds, report.energy_kwh, report.co2_kg = 1.0, 1e-6, 1e-7
            report.method, report.measured = "fake", True

    monkeypatch.setattr(energy, "measure_energy", fake_measure_energy)
    return started


def _epochs_seen():
    seen = []
    return seen, keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))


def test_train_or_restore_resumes_a_cut_training_then_restores_it(tmp_path, sessions):
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(0)
    with pytest.raises(ConnectionAbortedError):
        training.train_or_restore(
            _regression_model(), dataset, tmp_path, 5, [_Disconnect(at_epoch=1)], verbose=0
        )
    assert training.epochs_done(tmp_path) == 2
    assert training.read_energy(tmp_path).seconds == 1.0  # the cut session counts too

    keras.utils.set_random_seed(1)  # a new session: other initial weights
    seen, counter = _epochs_seen()
    resumed = training.train_or_restore(
        _regression_model(), dataset, tmp_path, 5, [counter], verbose=0
    )
    assert seen == [2, 3, 4]  # resumed at the epoch reached
    assert len(resumed.history["loss"]) == 5 and resumed.folder == tmp_path
    assert resumed.history["loss"][-1] < resumed.history["loss"][0]
    assert resumed.training_energy.seconds == 2.0 and len(sessions) == 2
    assert resumed.training_energy.energy_kwh == pytest.approx(2e-6)

    seen, counter = _epochs_seen()
    restored = training.train_or_restore(
        _regression_model(), dataset, tmp_path, 5, [counter], verbose=0
    )
    assert seen == [] and len(sessions) == 2  # nothing trained, nothing measured
    assert restored.history == resumed.history
    assert restored.training_energy == resumed.training_energy
    for expected, weight in zip(
        resumed.model.get_weights(), restored.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(weight, expected)

    seen, counter = _epochs_seen()
    longer = training.train_or_restore(
        _regression_model(), dataset, tmp_path, 6, [counter], verbose=0
    )
    assert seen == [5] and len(longer.history["loss"]) == 6 and len(sessions) == 3


def test_train_or_restore_with_the_model_own_checkpoints(tmp_path, sessions):
    """backup=False (WaveNet's step checkpoints): epochs counts what is left."""
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = _regression_model()
    seen, counter = _epochs_seen()
    trained = training.train_or_restore(
        model, dataset, tmp_path, 2, [counter], backup=False, verbose=0
    )
    assert seen == [0, 1] and len(sessions) == 1 and trained.model is model
    assert not (tmp_path / "backup").exists() and trained.history == {}
    weights = [w.copy() for w in model.get_weights()]
    restored = training.train_or_restore(
        model, dataset, tmp_path, 0, [counter], backup=False, verbose=0
    )
    assert seen == [0, 1] and len(sessions) == 1
    assert restored.training_energy == trained.training_energy
    for expected, weight in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(weight, expected)


def test_energy_of_training_sessions_adds_up(tmp_path):
    first = energy.EnergyReport("training", 2.0, 1e-6, 2e-7, "RAPL", True)
    second = energy.EnergyReport("training", 3.0, 2e-6, 1e-7, "RAPL", True)
    training.add_energy(tmp_path, first)
    total = training.add_energy(tmp_path, second)
    assert total.seconds == 5.0 and total.measured and total.method == "RAPL"
    assert total.energy_kwh == pytest.approx(3e-6) and total.co2_kg == pytest.approx(3e-7)
    assert training.read_energy(tmp_path) == total
    unmeasured = training.read_energy(tmp_path / "other")
    assert not unmeasured.measured and "no training session" in unmeasured.reason
    with training.log_energy(tmp_path / "other", measure=False) as report:
        assert report is None
    assert not (tmp_path / "other" / training.ENERGY_NAME).exists()


# ------------------------------------------------- the first fit traces its step once


def _count_traces(model: keras.Model, data, **fit_options) -> int:
    """How many times the first ``fit`` of ``model`` traced its ``train_step``."""
    traces = []
    step = model.train_step

    def counted(batch):
        traces.append(batch)
        return step(batch)

    model.train_step = counted
    model.fit(data, epochs=1, verbose=0, **fit_options)
    return len(traces)


def _tiny_course_model(name: str) -> tuple[keras.Model, object]:
    """A tiny model from each ``build_*`` function of the kit, and one batch for it."""
    rng = np.random.default_rng(0)
    audio_clips = rng.uniform(-0.3, 0.3, (4, 256, 1)).astype(np.float32)
    labels = np.arange(4, dtype=np.int32) % 2
    if name == "diffusion":
        from course_lib.diffusion import DiffusionConfig, build_diffusion_model

        cfg = DiffusionConfig.quick().replace(
            residual_channels=8, residual_layers=2, dilation_cycle=2, label_dim=8
        )
        model = build_diffusion_model(cfg, num_classes=2, clip_samples=256)
        return model, tf.data.Dataset.from_tensor_slices((audio_clips, labels)).batch(4)
    if name == "vae":
        from course_lib.vae import VAEConfig, build_vae

        model = build_vae(256, VAEConfig.quick(), waveform=True)
        return model, tf.data.Dataset.from_tensor_slices((audio_clips, labels)).batch(4)
    if name == "vq_vae":
        from course_lib.vq import VQConfig, build_vq_vae

        images = rng.uniform(0, 1, (4, 32, 32, 1)).astype(np.float32)
        return build_vq_vae(VQConfig.quick(), digits=True), tf.data.Dataset.from_tensors(images)
    from course_lib.wavenet import WaveNetConfig, build_wavenet

    cfg = WaveNetConfig.quick().replace(
        dilations=(1, 2), residual_channels=4, dilation_channels=4, skip_channels=8
    )
    model = build_wavenet(cfg, num_classes=2)
    classes = rng.integers(0, 256, (4, 16)).astype(np.int32)
    return model, tf.data.Dataset.from_tensors(((classes, labels), classes[:, -8:]))


@pytest.mark.parametrize("name", ["diffusion", "vae", "vq_vae", "wavenet"])
def test_the_kits_models_trace_their_first_training_step_once(name):
    """Each ``build_*`` function compiles with ``training.compile_model``: the optimizer's
    variables exist before ``fit``, which then builds the training graph once, not twice
    (the full WaveNet's first ``fit`` took 36 s of CPU, not 76)."""
    model, data = _tiny_course_model(name)
    assert model.optimizer.built
    assert _count_traces(model, data) == 1


def test_compile_model_saves_the_second_trace_that_compile_alone_costs():
    x, y = _data(8)
    plain = _regression_model()
    plain.compile(optimizer=keras.optimizers.Adam(), loss="mse", metrics=["mean_absolute_error"])
    assert _count_traces(plain, x, y=y, batch_size=8) == 2  # variables made in the step
    built = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    training.compile_model(
        built,
        keras.optimizers.Adam(),
        loss="mse",
        metrics=[keras.metrics.MeanAbsoluteError(name="mean_absolute_error")],
    )
    assert _count_traces(built, x, y=y, batch_size=8) == 1
    assert set(built.history.history) == {"loss", "mean_absolute_error"}
