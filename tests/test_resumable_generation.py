"""course_lib.resumable_generation: batches kept on disk, a resumed run equal to an
uninterrupted one bit for bit, no stale or half-written batches, the progress bar, and a
real diffusion model resumed."""

import numpy as np
import pytest

from course_lib import energy, resumable_generation
from course_lib.resumable_generation import GENERATED_FOLDER, generate_in_batches

SAMPLES = 12


class DisconnectedError(Exception):
    """The runtime went away in the middle of a batch."""


class CountingGenerator:
    """Clips that depend only on (count, seed, labels): noise from ``seed`` plus the label;
    records every call. ``fail_after`` calls, it raises (a disconnect)."""

    def __init__(self, fail_after: int | None = None):
        self.calls: list[tuple[int, int]] = []
        self.fail_after = fail_after

    def __call__(self, count, seed, labels=None):
        if self.fail_after is not None and len(self.calls) == self.fail_after:
            raise DisconnectedError
        self.calls.append((count, seed))
        clips = np.random.default_rng(seed).normal(size=(count, SAMPLES, 1)).astype(np.float32)
        if labels is not None:
            clips += np.asarray(labels, np.float32)[:, None, None]
        return clips


REQUEST = {"sampler": "ddim", "steps": 5}


def _generate(generator, folder, n=10, batch_size=3, **options):
    options = {"request": REQUEST, "seed": 7, "progress": False, **options}
    request = options.pop("request")
    return generate_in_batches(generator, n, folder, request, batch_size=batch_size, **options)


def test_one_go_gives_n_clips_from_per_batch_seeds(tmp_path):
    generator = CountingGenerator()
    made = _generate(generator, tmp_path)
    assert made.clips.shape == (10, SAMPLES) and made.clips.dtype == np.float32
    assert [count for count, _ in generator.calls] == [3, 3, 3, 1]
    seeds = [resumable_generation.batch_seed(7, b) for b in range(4)]
    assert [seed for _, seed in generator.calls] == seeds
    assert len(set(seeds)) == 4
    expected = np.concatenate([CountingGenerator()(count, seed) for count, seed in generator.calls])
    np.testing.assert_array_equal(made.clips, expected[..., 0])
    assert (made.batches_made, made.batches_loaded) == (4, 0)
    assert made.folder.parent == tmp_path / GENERATED_FOLDER
    assert sorted(path.name for path in made.folder.glob("batch_*.npz")) == [
        f"batch_{b:05d}.npz" for b in range(4)
    ]
    assert made.seconds > 0 and made.energy is None


@pytest.mark.parametrize("finished", [0, 1, 3])
def test_a_resumed_run_equals_one_go_and_makes_only_the_missing_batches(tmp_path, finished):
    labels = np.arange(10) % 4
    one_go = _generate(CountingGenerator(), tmp_path / "one_go", labels=labels)

    interrupted = CountingGenerator(fail_after=finished)
    with pytest.raises(DisconnectedError):
        _generate(interrupted, tmp_path / "resumed", labels=labels)
    resumed_generator = CountingGenerator()
    resumed = _generate(resumed_generator, tmp_path / "resumed", labels=labels)

    np.testing.assert_array_equal(resumed.clips, one_go.clips)  # bit for bit
    assert len(resumed_generator.calls) == 4 - finished
    assert (resumed.batches_made, resumed.batches_loaded) == (4 - finished, finished)
    again = CountingGenerator()
    assert np.array_equal(_generate(again, tmp_path / "resumed", labels=labels).clips, one_go.clips)
    assert again.calls == []  # a finished request only loads


def test_labels_reach_their_clips(tmp_path):
    labels = np.array([0, 0, 0, 100, 100, 100, 0])
    made = _generate(CountingGenerator(), tmp_path, n=7, labels=labels)
    assert np.all(made.clips[3:6].mean(axis=1) > 50) and np.all(made.clips[:3].mean(axis=1) < 50)


@pytest.mark.parametrize(
    "change",
    [
        {"request": {"sampler": "ddpm", "steps": 5}},
        {"request": {**REQUEST, "guidance": 2.0}},
        {"seed": 8},
        {"n": 11, "labels": np.arange(11) % 2},
        {"batch_size": 4},
        {"labels": np.arange(10) % 3},
    ],
    ids=["sampler", "guidance", "seed", "n", "batch_size", "labels"],
)
def test_a_changed_request_makes_new_clips(tmp_path, change):
    _generate(CountingGenerator(), tmp_path, labels=np.arange(10) % 2)
    generator = CountingGenerator()
    made = _generate(generator, tmp_path, **{"labels": np.arange(10) % 2, **change})
    assert made.batches_loaded == 0 and generator.calls
    assert len(list((tmp_path / GENERATED_FOLDER).iterdir())) == 2


def test_another_model_folder_makes_new_clips(tmp_path):
    _generate(CountingGenerator(), tmp_path / "tag_a")
    generator = CountingGenerator()
    assert _generate(generator, tmp_path / "tag_b").batches_loaded == 0


def test_a_config_dataclass_keys_the_folder(tmp_path):
    from course_lib.diffusion import DiffusionConfig

    cfg = DiffusionConfig.quick()
    first = _generate(CountingGenerator(), tmp_path, request={"config": cfg}).folder
    same = _generate(CountingGenerator(), tmp_path, request={"config": cfg}).folder
    other = _generate(
        CountingGenerator(), tmp_path, request={"config": cfg.replace(guidance=cfg.guidance + 1)}
    ).folder
    assert first == same != other
    assert "guidance" in (first / resumable_generation.REQUEST_NAME).read_text()


def test_partial_and_corrupt_batch_files_are_made_again(tmp_path):
    one_go = _generate(CountingGenerator(), tmp_path)
    files = sorted(one_go.folder.glob("batch_*.npz"))
    files[0].write_bytes(files[0].read_bytes()[:40])  # cut off mid-write
    files[1].write_bytes(b"not a batch")
    np.savez(files[2], clips=np.zeros((2, SAMPLES), np.float32), seconds=0.0)  # wrong count
    (one_go.folder / ".batch_00003.npz.123.tmp").write_bytes(b"left by a killed run")
    generator = CountingGenerator()
    again = _generate(generator, tmp_path)
    assert [seed for _, seed in generator.calls] == [
        resumable_generation.batch_seed(7, b) for b in range(3)
    ]
    np.testing.assert_array_equal(again.clips, one_go.clips)


def test_the_progress_bar_counts_all_clips_loaded_ones_included(tmp_path, monkeypatch):
    bars = []

    class RecordingBar:
        def __init__(self, total, initial, **options):
            self.total, self.position, self.options = total, initial, options
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *error):
            return False

        def update(self, count):
            self.position += count

    monkeypatch.setattr(resumable_generation, "tqdm", RecordingBar)
    with pytest.raises(DisconnectedError):
        _generate(CountingGenerator(fail_after=2), tmp_path, n=10, progress=True)
    _generate(CountingGenerator(), tmp_path, n=10, progress=True, name="DDIM")
    assert [bar.total for bar in bars] == [10, 10]
    assert bars[0].position == 6  # two batches of 3 made before the disconnect
    assert bars[1].position == 10 and bars[1].options["desc"] == "DDIM"
    assert bars[1].options["unit"] == "clip" and bars[1].options["disable"] is False


def test_time_and_energy_cover_every_batch_after_a_resume(tmp_path, monkeypatch):
    import contextlib

    @contextlib.contextmanager
    def fake_measure(phase):
        report = energy.EnergyReport(phase)
        yield report
        report.seconds, report.energy_kwh, report.co2_kg = 2.0, 1e-3, 1e-4
        report.method, report.measured = "fake", True

    monkeypatch.setattr(energy, "measure_energy", fake_measure)
    with pytest.raises(DisconnectedError):
        _generate(CountingGenerator(fail_after=1), tmp_path, measure=True)
    made = _generate(CountingGenerator(), tmp_path, measure=True)
    assert made.batches_loaded == 1
    assert made.seconds == pytest.approx(8.0)
    assert made.energy.measured and made.energy.energy_kwh == pytest.approx(4e-3)
    assert made.energy.co2_kg == pytest.approx(4e-4) and made.energy.seconds == pytest.approx(8.0)


def test_energy_is_unmeasured_when_a_batch_was_not_measured(tmp_path):
    with pytest.raises(DisconnectedError):
        _generate(CountingGenerator(fail_after=1), tmp_path)  # measure=False
    made = _generate(CountingGenerator(), tmp_path, measure=True)
    assert not made.energy.measured and "of 4 batches" in made.energy.reason


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": 0}, "n must be a whole number >= 1, got 0"),
        ({"n": 2.5}, "n must be a whole number >= 1, got 2.5"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
        ({"labels": np.arange(3)}, r"one value per clip, \[10\], got \(3,\)"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_message(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        _generate(CountingGenerator(), tmp_path, **options)


def test_a_generator_that_makes_the_wrong_number_of_clips_is_refused(tmp_path):
    def too_few(count, seed):
        return np.zeros((count - 1, SAMPLES))

    with pytest.raises(ValueError, match="made 2 clips instead of 3"):
        _generate(too_few, tmp_path)
    assert not list(tmp_path.rglob("batch_*.npz"))  # nothing wrong was kept


def test_batch_seeds_are_fixed_and_distinct():
    seeds = {(s, b): resumable_generation.batch_seed(s, b) for s in range(5) for b in range(50)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= value < 2**31 for value in seeds.values())
    assert resumable_generation.batch_seed(3, 4) == resumable_generation.batch_seed(3, 4)


def test_a_real_diffusion_model_resumed_equals_one_go(tmp_path):
    from course_lib import diffusion

    cfg = diffusion.DiffusionConfig.quick()
    model = diffusion.build_diffusion_model(cfg, num_classes=3, clip_samples=256)

    def ddim(count, seed, words):
        return model.generate(count, steps=2, label=words, guidance=2.0, seed=seed, progress=False)

    labels = np.arange(5) % 3
    request = {"sampler": "ddim", "steps": 2, "guidance": 2.0}

    def run(folder, generate):
        return generate_in_batches(
            generate, 5, folder, request, labels=labels, seed=1, batch_size=2, progress=False
        )

    one_go = run(tmp_path / "one_go", ddim)
    calls = []

    def disconnects_after_one_batch(count, seed, words):
        if calls:
            raise DisconnectedError
        calls.append(seed)
        return ddim(count, seed, words)

    with pytest.raises(DisconnectedError):
        run(tmp_path / "resumed", disconnects_after_one_batch)
    resumed = run(tmp_path / "resumed", ddim)
    assert resumed.clips.shape == (5, 256)
    assert (resumed.batches_loaded, resumed.batches_made) == (1, 2)
    np.testing.assert_array_equal(resumed.clips, one_go.clips)


def test_kept_batches_take_the_drive_space_the_footprint_counts(tmp_path, monkeypatch):
    """benchmarks/drive_footprint.py counts kept clips as float32 samples; the batch files
    are that plus a few hundred bytes of headers each."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "drive_footprint.py"
    spec = importlib.util.spec_from_file_location("drive_footprint", path)
    footprint = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, footprint)  # its dataclasses look it up
    spec.loader.exec_module(footprint)

    def second_long(count, seed):
        return np.random.default_rng(seed).uniform(-1, 1, (count, 16000))

    made = generate_in_batches(second_long, 70, tmp_path, REQUEST, batch_size=32, progress=False)
    on_disk = sum(file.stat().st_size for file in made.folder.glob("batch_*.npz"))
    counted = footprint.KeptClips("test", "03", 70, 16000).bytes
    assert counted == 70 * 16000 * 4
    assert counted < on_disk < counted + 3 * 1000  # three batches, under 1 kB of headers each
    kept = footprint.course_kept_clips()
    assert [clips.notebook for clips in kept] == ["03", "04", "06", "07"]
    assert sum(clips.bytes for clips in kept) == pytest.approx(0.3264e9)
