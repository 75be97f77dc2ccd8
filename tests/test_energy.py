"""course_lib.energy: measured or honestly not measured, never a crash, never a file
unless asked, no network; the table's per-second ratio and the plot."""

import os
import sys
import time
import types

import matplotlib
import pytest

from course_lib import energy

matplotlib.use("Agg")


def busy(seconds: float) -> int:
    count, until = 0, time.perf_counter() + seconds
    while time.perf_counter() < until:
        count += 1
    return count


def test_measures_a_block_offline_without_writing_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # codecarbon's default would write emissions.csv here
    with energy.measure_energy("busy loop") as report:
        busy(0.3)
    assert report.phase == "busy loop"
    assert report.seconds >= 0.3
    if report.measured:  # a busy CPU draws power: 0.3 s of real work costs something
        assert report.energy_kwh > 0 and report.co2_kg > 0
        # CO2 = energy x the grid's intensity; France's (the default) is some tens of g/kWh
        assert 0.005 < report.co2_kg / report.energy_kwh < 0.2
        assert 0.1 < report.mean_watts < 5000  # a plausible draw for one computer
        assert report.method not in ("", "unknown", "not measured")
        assert report.reason == ""
        assert report.joules == pytest.approx(report.energy_kwh * 3.6e6)
    else:  # an environment where codecarbon cannot run must still give a reason
        assert report.reason
    assert os.listdir(tmp_path) == []


def test_writes_codecarbon_csv_only_when_asked(tmp_path):
    with energy.measure_energy("asked", output_dir=tmp_path) as report:
        busy(0.05)
    if not report.measured:
        pytest.skip(f"codecarbon cannot measure here: {report.reason}")
    assert (tmp_path / "emissions.csv").is_file()


def test_missing_codecarbon_gives_a_clear_not_measured_report(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # import codecarbon -> ImportError
    with energy.measure_energy("inference") as report:
        busy(0.05)
    assert report.measured is False
    assert report.seconds >= 0.05
    assert report.energy_kwh is None and report.co2_kg is None
    assert "codecarbon is not installed" in report.reason
    assert "not measured" in str(report)


def test_a_failing_tracker_is_reported_and_the_block_still_runs(monkeypatch):
    import codecarbon

    class BrokenTracker:
        def __init__(self, **settings):
            raise RuntimeError("no power sensors")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", BrokenTracker)
    ran = []
    with energy.measure_energy("training") as report:
        ran.append(True)
    assert ran == [True] and report.measured is False
    assert "could not start: RuntimeError: no power sensors" in report.reason


class FakeTracker:
    """codecarbon's tracker with its numbers chosen by the test."""

    energy_kwh = co2_kg = 0.0

    def __init__(self, **settings):
        self.settings = settings
        self._conf = {"hardware": ["CPU(Intel Rapl)", "RAM()"]}
        self.final_emissions_data = None

    def start(self):
        pass

    def stop(self):
        self.final_emissions_data = types.SimpleNamespace(
            energy_consumed=self.energy_kwh, emissions=self.co2_kg
        )


@pytest.mark.parametrize(
    ("tracked", "reported"),
    [
        ((2e-6, 1e-7), (2e-6, 1e-7)),
        ((-3e-9, -2e-10), (0.0, 0.0)),  # a counter that went backwards: no negative energy
        ((4e-6, -1e-10), (4e-6, 0.0)),
    ],
)
def test_the_trackers_numbers_are_reported_and_negative_ones_clamped(
    monkeypatch, tracked, reported
):
    import codecarbon

    monkeypatch.setattr(FakeTracker, "energy_kwh", tracked[0])
    monkeypatch.setattr(FakeTracker, "co2_kg", tracked[1])
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", FakeTracker)
    with energy.measure_energy("fake") as report:
        busy(0.01)
    assert report.measured is True and report.reason == ""
    assert (report.energy_kwh, report.co2_kg) == pytest.approx(reported)
    assert report.method == "RAPL + RAM estimate"
    assert report.joules == pytest.approx(reported[0] * 3.6e6)


def test_errors_inside_the_block_propagate_after_the_report_is_filled(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    with pytest.raises(ZeroDivisionError), energy.measure_energy("crash") as report:
        busy(0.02)
        _ = 1 / 0
    assert report.seconds >= 0.02


@pytest.mark.parametrize(
    ("hardware", "expected"),
    [
        (["RAM()", "CPU(Intel Rapl)"], "RAM estimate + RAPL"),
        (["CPU(Cpu Load)", "GPU(Tesla T4)"], "CPU estimate (TDP x load) + NVML GPU"),
        (["CPU(Intel Xeon > 85W [generic])"], "CPU estimate (TDP)"),
        ([], "unknown"),
    ],
)
def test_method_names_follow_codecarbons_hardware(hardware, expected):
    assert energy.describe_method(hardware) == expected


def test_table_gives_joules_per_generated_second_and_skips_unmeasured_phases():
    training = energy.EnergyReport("training", 60.0, 0.01, 0.0005, "RAPL", True)
    inference = energy.EnergyReport("inference", 2.0, 1e-5, 5e-7, "RAPL", True)
    missing = energy.EnergyReport("other", 1.0, reason="codecarbon is not installed")
    table = energy.energy_table(
        [training, inference, missing], generated_seconds={"inference": 8.0, "other": 4.0}
    )
    rows = {row["phase"]: row for row in table.rows}
    assert rows["inference"]["joules"] == pytest.approx(36.0)
    assert rows["inference"]["joules_per_generated_second"] == pytest.approx(4.5)
    assert rows["inference"]["co2_g"] == pytest.approx(5e-4)
    assert rows["training"]["joules_per_generated_second"] is None  # made no audio
    assert rows["other"]["joules"] is None and rows["other"]["joules_per_generated_second"] is None
    assert "not measured: codecarbon is not installed" in str(table)
    assert "<table>" in table._repr_html_()
    with pytest.raises(ValueError, match="must be > 0"):
        energy.energy_table([inference], generated_seconds=0.0)


def test_plot_has_one_bar_per_phase_with_its_energy():
    reports = [
        energy.EnergyReport("training", 60.0, 0.01, 0.0005, "RAPL", True),
        energy.EnergyReport("inference", 2.0, reason="no codecarbon"),
    ]
    ax = energy.plot_energy(reports)
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([36000.0, 0.0])
    labels = [text.get_text() for text in ax.texts]
    assert labels == ["36000.0 J", "not measured"]
