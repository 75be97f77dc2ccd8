"""course_lib.comparison: scores against real clips at the model's rate, the word accuracy,
speed arithmetic, the table and the plot, with a fake judge whose predictions are known."""

import dataclasses

import numpy as np
import pytest

from course_lib import audio, comparison, data, energy, metrics

RATE = 100


class FakeJudge:
    """Embedding = the first 4 samples; the word heard is 0 when the first sample is
    positive, else 1."""

    sample_rate = RATE

    def __init__(self):
        self.labels = ["yes", "no"]

    def conform(self, clips, sample_rate):
        assert sample_rate == RATE
        return np.asarray(clips, np.float32)

    def embed(self, clips):
        return np.asarray(clips, np.float64)[:, :4]

    def features(self, clips):
        return self.embed(clips), self.predict_proba(clips)

    def predict_proba(self, clips):
        first = np.asarray(clips)[:, :1]
        return np.hstack([first > 0, first <= 0]).astype(np.float64) * 0.98 + 0.01


def noise_generator(scale):
    def generate(n, seed):
        return np.random.default_rng(seed).normal(0, scale, (n, 200, 1))

    return generate


def _reference(judge, train_size=50):
    rng = np.random.default_rng(0)
    return comparison.reference_from_clips(
        judge,
        rng.normal(0, 1, (train_size, 200)),
        rng.normal(0, 1, (40, 200)),
        rng.integers(0, 2, 40),
        RATE,
    )


def test_heard_among_chooses_the_likeliest_of_the_candidate_words():
    class ThreeWords(FakeJudge):
        def predict_proba(self, clips):  # [n, 3]: the clip's first three samples, softmaxed
            first = np.asarray(clips, np.float64)[:, :3]
            return np.exp(first) / np.exp(first).sum(axis=1, keepdims=True)

    clips = np.array([[0.9, 0.5, 0.1, 0], [0.1, 0.2, 0.3, 0], [0.2, 0.1, 0.05, 0]])
    np.testing.assert_array_equal(
        comparison.heard_among(ThreeWords(), clips, RATE, [0, 2]), [0, 2, 0]
    )
    np.testing.assert_array_equal(
        comparison.heard_among(ThreeWords(), clips, RATE, [2, 1]), [1, 2, 1]
    )
    with pytest.raises(ValueError, match="at least two different words"):
        comparison.heard_among(ThreeWords(), clips, RATE, [1, 1])
    with pytest.raises(ValueError, match=r"words \[0, 3\] are not all among the judge's 3"):
        comparison.heard_among(ThreeWords(), clips, RATE, [0, 3])


def test_evaluate_scores_times_and_counts():
    judge = FakeJudge()
    reference = _reference(judge)
    close = comparison.Generator("close", noise_generator(1.0), RATE, 1234)
    far = comparison.Generator("far", noise_generator(3.0), RATE, 10)
    rows = [
        comparison.evaluate(g, judge, reference, 40, seed=1, measure=False) for g in (close, far)
    ]
    assert rows[0].scores["FID"].value < rows[1].scores["FID"].value
    assert rows[0].scores["FID"] == metrics.fid_from_embeddings(
        judge.embed(rows[0].clips), reference.embeddings
    )
    assert rows[0].word_accuracy is None  # an unconditioned model is asked for no word
    assert rows[0].clips.shape == (40, 200) and rows[0].audio_seconds == pytest.approx(80.0)
    assert rows[0].real_time_factor == pytest.approx(rows[0].seconds / 80.0)
    assert rows[0].audio_per_second == pytest.approx(80.0 / rows[0].seconds)
    text = comparison.table([reference.row, *rows])
    lines = text.splitlines()
    assert len(lines) == 6 and lines[2].startswith("real test clips") and "1,234" in lines[3]
    assert lines[3].split()[4] == "n/a" and "chance 1/2 = 0.50" in lines[5]
    figure = comparison.plot(rows, reference.row)
    assert figure.axes[0].patches[1].get_height() == pytest.approx(rows[1].scores["FID"].value)


def test_word_accuracy_is_the_fraction_heard_as_the_word_asked_for():
    judge = FakeJudge()
    reference = _reference(judge)

    def speak(n, seed, words):
        # clips 0-4 start positive (heard as word 0), clips 5-7 negative (word 1)
        clips = np.full((n, 200), 0.5)
        clips[5:, 0] = -0.5
        speak.asked = words
        return clips

    row = comparison.evaluate(
        comparison.Generator("speaker", speak, RATE, 1, conditioned=True),
        judge,
        reference,
        8,
        measure=False,
    )
    np.testing.assert_array_equal(speak.asked, [0, 1, 0, 1, 0, 1, 0, 1])  # words in turn
    # asked 0 1 0 1 0 1 0 1, heard 0 0 0 0 0 1 1 1: right at clips 0, 2, 4, 5 and 7
    assert row.word_accuracy == pytest.approx(5 / 8)
    assert row.scores["word accuracy"].samples == 8 and row.chance == 0.5
    assert comparison.word_accuracy([0, 0, 1, 1], [0, 1, 1, 0]).value == 0.5
    with pytest.raises(ValueError, match="one asked word per clip"):
        comparison.word_accuracy([0, 1], [0])

    # The real row: the judge's accuracy on real test clips and their own words.
    real = comparison.reference_from_clips(
        judge,
        np.random.default_rng(1).normal(0, 1, (10, 200)),
        np.array([[1.0] * 200, [1.0] * 200, [-1.0] * 200, [-1.0] * 200]),
        np.array([0, 1, 1, 0]),
        RATE,
    )
    assert real.row.word_accuracy == 0.5 and real.n == 4 and real.num_words == 2
    assert real.row.scores["FID"] == metrics.fid_from_embeddings(
        judge.embed(real.row.clips), real.embeddings
    )
    header, _, *lines = comparison.table([real.row, row]).splitlines()
    end = header.index("word acc") + len("word acc")
    assert [line[end - 8 : end] for line in lines[:2]] == ["    0.50", "    0.62"]


def test_score_wants_real_clips_at_the_model_rate():
    judge = FakeJudge()
    reference = _reference(judge)
    clips = np.random.default_rng(2).normal(0, 1, (6, 200))
    row = comparison.score("six", clips, RATE, judge, reference, asked=np.zeros(6, int))
    assert row.scores["IS"].samples == 6 and row.word_accuracy is not None
    assert "audio s/s" not in comparison.table([row])  # scored only: no speed columns
    with pytest.raises(ValueError, match="clips at 200 Hz scored against real clips at 100 Hz"):
        comparison.score("fast", clips, 200, judge, reference)


def test_real_reference_reads_the_dataset_at_its_own_rate(tmp_path):
    rng = np.random.default_rng(3)
    for split, count in (("train", 6), ("test", 5)):
        examples = [
            data.serialize_example(
                audio.to_pcm16(rng.uniform(-0.5, 0.5, 200)), RATE, i % 2, ["yes", "no"][i % 2]
            )
            for i in range(count)
        ]
        data.write_shard(tmp_path / data.shard_name(split, 0, 1), examples)
    splits = {"train": {"examples": 6, "shards": 1}, "test": {"examples": 5, "shards": 1}}
    data.write_manifest(tmp_path, data.Manifest(RATE, 200, ["yes", "no"], splits))
    judge = FakeJudge()
    reference = comparison.real_reference(judge, tmp_path, 4)
    test_clips, test_labels = data.read_arrays(tmp_path, "test", limit=4)
    assert reference.sample_rate == RATE and reference.n == 4
    np.testing.assert_allclose(reference.row.clips, test_clips)
    heard = np.argmax(judge.predict_proba(test_clips), axis=1)
    assert reference.row.word_accuracy == pytest.approx(np.mean(heard == test_labels))
    np.testing.assert_allclose(
        reference.embeddings, judge.embed(data.read_arrays(tmp_path, "train", limit=4)[0])
    )
    judge.labels = ["no", "yes"]
    with pytest.raises(ValueError, match="the judge knows"):
        comparison.real_reference(judge, tmp_path, 4)


def test_evaluate_measures_generation_energy_and_checks_the_count():
    judge = FakeJudge()
    reference = _reference(judge, train_size=20)
    row = comparison.evaluate(
        comparison.Generator("g", noise_generator(1.0), RATE, 1), judge, reference, 4
    )
    assert isinstance(row.generation_energy, energy.EnergyReport)
    assert row.generation_energy.seconds > 0
    short = comparison.Generator("short", lambda n, seed: np.zeros((n - 1, 200)), RATE, 1)
    with pytest.raises(ValueError, match="short made 3 clips instead of 4"):
        comparison.evaluate(short, judge, reference, 4, measure=False)


def test_evaluate_keeps_batches_and_resumes_with_the_same_row(tmp_path):
    judge = FakeJudge()
    reference = _reference(judge)
    calls = []

    def speak(n, seed, words):
        calls.append(n)
        if len(calls) == 3 and disconnect:
            raise ConnectionError("the runtime disconnected")
        clips = np.random.default_rng(seed).normal(0, 1, (n, 200))
        clips[:, 0] = np.where(np.asarray(words) == 0, 0.5, -0.5)  # heard as asked
        return clips

    def generator(settings):
        return comparison.Generator(
            "speaker", speak, RATE, 1, conditioned=True, keep_clips_in=tmp_path, settings=settings
        )

    disconnect = True
    with pytest.raises(ConnectionError):
        comparison.evaluate(
            generator({"steps": 5}), judge, reference, 10, batch_size=4, measure=False
        )
    disconnect = False
    calls.clear()
    resumed = comparison.evaluate(
        generator({"steps": 5}), judge, reference, 10, batch_size=4, measure=False
    )
    assert calls == [2]  # only the last batch of 4 + 4 + 2 was left
    assert resumed.clips.shape == (10, 200) and resumed.word_accuracy == 1.0
    assert resumed.seconds > 0  # the time of all three batches, two from the first session
    calls.clear()
    other = comparison.evaluate(
        generator({"steps": 6}), judge, reference, 10, batch_size=4, measure=False
    )
    assert calls == [4, 4, 2] and other.clips.shape == (10, 200)  # other settings: made anew
    assert len(list((tmp_path / "generated").iterdir())) == 2
    calls.clear()
    again = comparison.evaluate(
        generator({"steps": 5}), judge, reference, 10, batch_size=4, measure=False
    )
    assert calls == [] and again.scores == resumed.scores and again.seconds == resumed.seconds


def test_reconstruction_accuracy_is_the_fraction_of_real_words_that_survive_the_round_trip():
    judge = FakeJudge()
    # real test clips: the first sample's sign is the word the fake judge hears
    signs = np.array([1.0, 1.0, -1.0, -1.0, 1.0, -1.0])
    words = np.array([0, 1, 1, 0, 0, 1])  # the judge hears clips 0, 2, 4, 5 right: 4/6
    reference = comparison.reference_from_clips(
        judge,
        np.random.default_rng(3).normal(0, 1, (10, 200)),
        signs[:, None] * np.ones(200),
        words,
        RATE,
    )
    assert reference.row.word_accuracy == pytest.approx(4 / 6)
    calls = []

    def identity(clips):
        calls.append(len(clips))
        return clips

    # A perfect autoencoder keeps every word the judge heard in the real clips.
    score = comparison.reconstruction_accuracy(judge, identity, reference, batch_size=4)
    assert score.value == pytest.approx(4 / 6) and score.samples == 6
    assert score.name == comparison.RECONSTRUCTION_ACCURACY and calls == [4, 2]
    # One that flips every clip's sign turns every word the judge heard into the other.
    flipped = comparison.reconstruction_accuracy(judge, lambda c: -c, reference)
    assert flipped.value == pytest.approx(2 / 6)
    # One that always returns positive clips is heard saying word 0: right for 3 of 6.
    always_zero = comparison.reconstruction_accuracy(judge, np.abs, reference)
    assert always_zero.value == pytest.approx(np.mean(words == 0))

    row = comparison.score("autoencoder", np.ones((6, 200)), RATE, judge, reference)
    assert row.reconstruction_accuracy is None
    scored = comparison.with_reconstruction(row, judge, identity, reference)
    assert scored.reconstruction_accuracy == pytest.approx(4 / 6)
    assert scored.scores["FID"] == row.scores["FID"] and row.reconstruction_accuracy is None
    header, _, *lines = comparison.table([reference.row, scored]).splitlines()
    end = header.index("recon acc") + len("recon acc")
    assert [line[end - 4 : end] for line in lines[:2]] == ["   -", "0.67"]
    assert lines[-1].startswith("recon acc: real test clips heard as their own word")


def test_reconstruction_accuracy_checks_the_count_and_the_rate():
    judge = FakeJudge()
    reference = _reference(judge)
    with pytest.raises(ValueError, match="reconstruct returned 3 clips for 40"):
        comparison.reconstruction_accuracy(judge, lambda clips: clips[:3], reference)
    row = comparison.score("fast", np.ones((4, 200)), RATE, judge, reference)
    with pytest.raises(ValueError, match="at 200 Hz reconstructs real clips at its own rate"):
        comparison.with_reconstruction(
            dataclasses.replace(row, sample_rate=200), judge, np.abs, reference
        )
