"""course_lib.comparison: rows, speed arithmetic, the table and the plot, with a fake judge."""

import numpy as np
import pytest

from course_lib import comparison, energy, metrics


class FakeJudge:
    """Embedding = the first 4 samples; probabilities from the sign of the first sample."""

    sample_rate = 100

    def conform(self, clips, sample_rate):
        assert sample_rate == 100
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


def test_evaluate_scores_times_and_counts():
    judge = FakeJudge()
    real = np.random.default_rng(0).normal(0, 1, (50, 200))
    reference = judge.embed(real)
    close = comparison.Generator("close", noise_generator(1.0), 100, 1234)
    far = comparison.Generator("far", noise_generator(3.0), 100, 10)
    rows = [
        comparison.evaluate(g, judge, reference, 40, seed=1, measure=False) for g in (close, far)
    ]
    assert rows[0].scores["FID"].value < rows[1].scores["FID"].value
    assert rows[0].scores["FID"] == metrics.fid_from_embeddings(
        judge.embed(rows[0].clips), reference
    )
    assert rows[0].clips.shape == (40, 200) and rows[0].audio_seconds == pytest.approx(80.0)
    assert rows[0].real_time_factor == pytest.approx(rows[0].seconds / 80.0)
    assert rows[0].audio_per_second == pytest.approx(80.0 / rows[0].seconds)
    text = comparison.table([comparison.reference_row("real", real, 100, judge, reference), *rows])
    lines = text.splitlines()
    assert len(lines) == 5 and lines[2].startswith("real") and "1,234" in lines[3]
    assert comparison.plot(rows, rows[0]).axes[0].patches[1].get_height() == pytest.approx(
        rows[1].scores["FID"].value
    )


def test_evaluate_measures_generation_energy_and_checks_the_count():
    judge = FakeJudge()
    reference = judge.embed(np.random.default_rng(0).normal(0, 1, (20, 200)))
    row = comparison.evaluate(
        comparison.Generator("g", noise_generator(1.0), 100, 1), judge, reference, 4
    )
    assert isinstance(row.generation_energy, energy.EnergyReport)
    assert row.generation_energy.seconds > 0
    short = comparison.Generator("short", lambda n, seed: np.zeros((n - 1, 200)), 100, 1)
    with pytest.raises(ValueError, match="short made 3 clips instead of 4"):
        comparison.evaluate(short, judge, reference, 4, measure=False)
