"""How much energy, and how much CO2, a phase of work costs: training, or making sound.

:func:`measure_energy` wraps a block of code in codecarbon's ``OfflineEmissionsTracker``
(Lacoste et al. 2019, "Quantifying the Carbon Emissions of Machine Learning";
Courty et al., codecarbon), which never uses the network: the carbon intensity comes from
its bundled table for ``country_iso_code`` (France, ``"FRA"``, by default: a low-carbon,
mostly nuclear grid). Energy is

    E = sum over hardware of  P(t) dt      (kWh),        CO2 = E x intensity (kg/kWh),

with ``P`` read from the best source codecarbon finds: Intel RAPL counters for the CPU,
NVML for NVIDIA GPUs, or else an estimate from the CPU's thermal design power (TDP) and
its load; RAM is estimated from its size. The report says which, because an estimate is
not a measurement.

Measurement must never cost a student their notebook: if codecarbon is missing or fails,
the block still runs and the report says ``measured=False`` with the reason.

Used in: 05_vq_vae_inpainting.ipynb, 07_compare_models.ipynb.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

JOULES_PER_KWH = 3.6e6


@dataclasses.dataclass
class EnergyReport:
    """The cost of one phase of work; filled in when the ``with`` block ends.

    Attributes:
        phase: a name such as ``"training"`` or ``"inference"``.
        seconds: wall-clock duration of the block.
        energy_kwh: energy used, in kWh (None when not measured).
        co2_kg: emissions in kg CO2-equivalent (None when not measured).
        method: how the power was obtained, e.g. ``"RAPL"``, ``"NVML GPU"``,
            ``"CPU estimate (TDP x load)"``, joined with ``" + "``; ``"not measured"``
            otherwise.
        measured: True when codecarbon produced the numbers.
        reason: why nothing was measured (empty when ``measured``).
    """

    phase: str
    seconds: float = 0.0
    energy_kwh: float | None = None
    co2_kg: float | None = None
    method: str = "not measured"
    measured: bool = False
    reason: str = ""

    @property
    def joules(self) -> float | None:
        """Energy in joules (watt-seconds)."""
        return None if self.energy_kwh is None else self.energy_kwh * JOULES_PER_KWH

    @property
    def mean_watts(self) -> float | None:
        """Average power over the block."""
        if self.joules is None or self.seconds <= 0:
            return None
        return self.joules / self.seconds

    def __str__(self) -> str:
        if not self.measured:
            return f"{self.phase}: {self.seconds:.2f} s, energy not measured ({self.reason})"
        return (
            f"{self.phase}: {self.seconds:.2f} s, {self.joules:.1f} J "
            f"({self.energy_kwh:.3g} kWh, {1000 * self.co2_kg:.3g} g CO2e), {self.method}"
        )


def describe_method(hardware: Sequence[str]) -> str:
    """Name the power source from codecarbon's hardware descriptions.

    Args:
        hardware: strings such as ``"CPU(Intel Rapl)"``, ``"CPU(Cpu Load)"``,
            ``"CPU(Intel Xeon > 85W)"``, ``"GPU(Tesla T4)"``, ``"RAM()"``.
    """
    names = []
    for item in hardware:
        if item.startswith("GPU"):
            names.append("NVML GPU")
        elif item.startswith("CPU(Intel Rapl") or item.startswith("CPU(Windows Emi"):
            names.append("RAPL")
        elif item.startswith("CPU(Cpu Load"):
            names.append("CPU estimate (TDP x load)")
        elif item.startswith("CPU(Intel Power Gadget"):
            names.append("Intel Power Gadget")
        elif item.startswith("CPU"):
            names.append("CPU estimate (TDP)")
        elif item.startswith("Apple") or "Silicon" in item:
            names.append("powermetrics")
        elif item.startswith("RAM"):
            names.append("RAM estimate")
    return " + ".join(dict.fromkeys(names)) or "unknown"


@contextlib.contextmanager
def measure_energy(
    phase: str,
    country_iso_code: str = "FRA",
    output_dir: str | Path | None = None,
    measure_power_secs: float = 5.0,
) -> Iterator[EnergyReport]:
    """Measure the energy and emissions of the code inside the ``with`` block.

    Example:
        >>> with energy.measure_energy("training") as report:
        ...     model.fit(...)
        >>> print(report)        # complete once the block has ended

    Args:
        phase: the name shown in tables and plots.
        country_iso_code: three-letter code of the electricity grid (``"FRA"``, ``"USA"``).
        output_dir: when given, codecarbon also writes its ``emissions.csv`` there;
            otherwise no file is written (a temporary folder is used and removed).
        measure_power_secs: how often codecarbon samples power during the block (it also
            samples once at the end).

    Yields:
        An :class:`EnergyReport`, filled in when the block ends, measured or not.
        Exceptions raised inside the block propagate after the tracker is stopped.
    """
    report = EnergyReport(phase)
    with tempfile.TemporaryDirectory(prefix="codecarbon_") as scratch:
        tracker, reason = _start_tracker(country_iso_code, output_dir, scratch, measure_power_secs)
        started = time.perf_counter()
        try:
            yield report
        finally:
            report.seconds = time.perf_counter() - started
            if tracker is None:
                report.reason = reason
            else:
                _stop_tracker(tracker, report)


def _start_tracker(country_iso_code, output_dir, scratch, measure_power_secs):
    """A started tracker and ``""``, or None and the reason it could not start."""
    try:
        with warnings.catch_warnings():  # codecarbon 2.x warns that pynvml is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            from codecarbon import OfflineEmissionsTracker
    except ImportError as error:
        return None, f"codecarbon is not installed ({error}); pip install codecarbon"
    except Exception as error:  # a broken install must not stop the notebook
        return None, f"codecarbon failed to load: {type(error).__name__}: {error}"
    # Quiet before construction: codecarbon logs at INFO while it initialises.
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    try:
        tracker = OfflineEmissionsTracker(
            country_iso_code=country_iso_code,
            output_dir=str(output_dir if output_dir is not None else scratch),
            **_csv_output(output_dir is not None),
            log_level="error",
            measure_power_secs=measure_power_secs,
            project_name="generative_audio_course",
        )
        tracker.start()
    except Exception as error:
        return None, f"codecarbon could not start: {type(error).__name__}: {error}"
    return tracker, ""


def _csv_output(write_csv: bool) -> dict:
    """The tracker's argument for writing ``emissions.csv`` or not: ``output_methods`` in
    codecarbon 3, ``save_to_file`` in 2.x (the release that installs beside Colab's
    psutil 5)."""
    try:
        from codecarbon import OutputMethod
    except ImportError:
        return {"save_to_file": write_csv}
    return {"output_methods": [OutputMethod.CSV] if write_csv else []}


def _stop_tracker(tracker, report: EnergyReport) -> None:
    try:
        tracker.stop()
        emissions = tracker.final_emissions_data
        hardware = getattr(tracker, "_conf", {}).get("hardware", [])
        if emissions is None:
            raise RuntimeError("the tracker returned no data")
        report.energy_kwh = max(float(emissions.energy_consumed), 0.0)
        report.co2_kg = max(float(emissions.emissions), 0.0)
        report.method = describe_method([str(item) for item in hardware])
        report.measured = True
        report.reason = ""
    except Exception as error:
        report.reason = f"codecarbon failed while measuring: {type(error).__name__}: {error}"


# ----------------------------------------------------------------------------- reporting


@dataclasses.dataclass(frozen=True)
class EnergyTable:
    """Rows of :func:`energy_table`; prints as text and shows as HTML in a notebook."""

    rows: tuple[dict, ...]

    COLUMNS = (
        ("phase", "phase", "{}"),
        ("seconds", "seconds", "{:.2f}"),
        ("joules", "energy (J)", "{:.1f}"),
        ("co2_g", "CO2e (g)", "{:.3g}"),
        ("generated_seconds", "audio made (s)", "{:g}"),
        ("joules_per_generated_second", "J per s of audio", "{:.2f}"),
        ("method", "method", "{}"),
    )

    def _cells(self) -> list[list[str]]:
        return [
            [
                "-" if row.get(key) is None else template.format(row[key])
                for key, _, template in self.COLUMNS
            ]
            for row in self.rows
        ]

    def __str__(self) -> str:
        header = [title for _, title, _ in self.COLUMNS]
        cells = self._cells()
        widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
        lines = [
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
            for line in [header, *cells]
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        header = "".join(f"<th>{title}</th>" for _, title, _ in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in line) + "</tr>"
            for line in self._cells()
        )
        return f"<table><tr>{header}</tr>{body}</table>"


def energy_table(
    reports: Sequence[EnergyReport],
    generated_seconds: float | Mapping[str, float] | None = None,
) -> EnergyTable:
    """One row per report, with the energy per second of generated audio.

    Args:
        reports: the phases.
        generated_seconds: seconds of audio each phase produced: one number for every
            phase, or a mapping from phase name (phases missing from it get no ratio).
            Training produces none, so give it only to the phases that generate.

    Returns:
        An :class:`EnergyTable`; ``table.rows`` are dicts with ``phase``, ``seconds``,
        ``joules``, ``co2_g``, ``generated_seconds``, ``joules_per_generated_second``,
        ``method``, ``measured`` and ``reason``.
    """
    rows = []
    for report in reports:
        if isinstance(generated_seconds, Mapping):
            made = generated_seconds.get(report.phase)
        else:
            made = generated_seconds
        if made is not None and made <= 0:
            raise ValueError(f"generated_seconds for {report.phase!r} must be > 0, got {made}.")
        joules = report.joules
        rows.append(
            {
                "phase": report.phase,
                "seconds": report.seconds,
                "joules": joules,
                "co2_g": None if report.co2_kg is None else 1000 * report.co2_kg,
                "generated_seconds": made,
                "joules_per_generated_second": (
                    None if joules is None or made is None else joules / made
                ),
                "method": report.method if report.measured else f"not measured: {report.reason}",
                "measured": report.measured,
                "reason": report.reason,
            }
        )
    return EnergyTable(tuple(rows))


def plot_energy(reports: Sequence[EnergyReport], ax=None, title: str = "Energy per phase"):
    """Bar plot of the energy (J) of each phase, labelled with its method; phases that were
    not measured get an empty bar marked "not measured".

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * max(len(reports), 2) + 2, 3))
    names = [report.phase for report in reports]
    values = [report.joules or 0.0 for report in reports]
    bars = ax.bar(names, values, color="tab:green")
    for bar, report in zip(bars, reports, strict=True):
        label = f"{report.joules:.1f} J" if report.measured else "not measured"
        ax.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    methods = sorted({report.method for report in reports if report.measured})
    ax.set_ylabel("energy (J)")
    ax.set_title(title + (f"\n({'; '.join(methods)})" if methods else ""), fontsize=10)
    return ax
