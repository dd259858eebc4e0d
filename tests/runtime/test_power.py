"""Power sensors: RAPL and hwmon counters, sampled hwmon power, Jetson INA3221 rails, on a
fake /sys whose counters a thread advances; and the real /sys where it has sensors."""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import pytest

from edgeship_runtime import power
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.measure import MeasurePolicy, profile
from edgeship_runtime.model import load_model
from edgeship_runtime.sysfs import SYSFS_ROOT_ENV
from tests.runtime.fake_sysfs import FakeSys


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSys:
    sys_tree = FakeSys(tmp_path)
    sys_tree.use(monkeypatch)
    return sys_tree


def measure(seconds: float) -> power.EnergyMeter:
    meter = power.EnergyMeter.discover()
    meter.start()
    time.sleep(seconds)
    meter.stop()
    return meter


def test_no_sensor_is_said_never_estimated(fake: FakeSys) -> None:
    report = measure(0.01).report(inferences=10)
    assert report.sensors == [] and report.note == "no power sensor"


def test_rapl_energy_over_the_window(fake: FakeSys) -> None:
    counter = fake.rapl()
    with fake.advancing(counter, uj_per_s=5e6):  # 5 W
        report = measure(0.3).report(inferences=30)
    (reading,) = report.sensors
    assert (reading.sensor, reading.kind) == ("rapl:package-0", "counter")
    assert reading.average_w == pytest.approx(5.0, rel=0.15)
    assert reading.energy_mj == pytest.approx(5.0 * report.window_s * 1000, rel=0.15)
    assert reading.mj_per_inference == pytest.approx(reading.energy_mj / 30)
    assert report.note is None


def test_a_rapl_counter_wrapping_around_is_counted_across(
    fake: FakeSys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(power, "COUNTER_POLL_S", 0.02)  # polled often enough to see each wrap
    counter = fake.rapl(wrap=200_000)
    with fake.advancing(counter, uj_per_s=2e6, wrap=200_000, start=150_000):  # wraps every 0.1 s
        reading = measure(0.35).report(inferences=1).sensors[0]
    assert reading.average_w == pytest.approx(2.0, rel=0.15)


def test_delta_across_one_wrap() -> None:
    assert power._delta(900, 100, wrap_uj=1000) == 200
    assert power._delta(100, 900, wrap_uj=1000) == 800
    assert power._delta(900, 100, wrap_uj=None) == 0  # going back without a range: unknown


def test_subzones_are_left_to_their_parent(fake: FakeSys) -> None:
    fake.rapl("intel-rapl:0", "package-0")
    fake.rapl("intel-rapl:0:0", "core")  # counted in package-0 already
    fake.write("class/powercap/intel-rapl/enabled", 1)  # the control type, not a zone
    sensors, problems = power.discover()
    assert [s.name for s in sensors] == ["rapl:package-0"] and problems == []


def test_hwmon_power_is_sampled_and_energy_counted(fake: FakeSys) -> None:
    fake.write("class/hwmon/hwmon0/name", "ina219")
    fake.write("class/hwmon/hwmon0/power1_input", 2_500_000)  # µW
    fake.write("class/hwmon/hwmon1/name", "amd_energy")
    fake.write("class/hwmon/hwmon1/energy1_label", "Esocket0")
    counter = "class/hwmon/hwmon1/energy1_input"
    fake.write(counter, 0)
    with fake.advancing(counter, uj_per_s=3e6):
        report = measure(0.3).report(inferences=3)
    got = {r.sensor: r for r in report.sensors}
    assert set(got) == {"hwmon:ina219:power1", "hwmon:amd_energy:Esocket0"}
    sampled = got["hwmon:ina219:power1"]
    assert sampled.kind == "sampled" and sampled.average_w == pytest.approx(2.5)
    assert sampled.samples is not None and sampled.samples >= 5
    assert got["hwmon:amd_energy:Esocket0"].average_w == pytest.approx(3.0, rel=0.15)


def test_jetson_ina3221_rails_are_volts_times_amps(fake: FakeSys) -> None:
    base = "class/hwmon/hwmon2"
    fake.write(f"{base}/name", "ina3221")
    for channel, label, mv, ma in ((1, "VDD_IN", 5000, 1200), (2, "VDD_CPU_GPU_CV", 5000, 400)):
        fake.write(f"{base}/in{channel}_label", label)
        fake.write(f"{base}/in{channel}_input", mv)
        fake.write(f"{base}/curr{channel}_input", ma)
    fake.write(f"{base}/in7_label", "sum of shunt voltages")  # no current: not a rail
    fake.write(f"{base}/in7_input", 40)
    report = measure(0.1).report(inferences=1)
    watts = {r.sensor: r.average_w for r in report.sensors}
    assert watts == {
        "hwmon:ina3221:VDD_IN": pytest.approx(6.0),
        "hwmon:ina3221:VDD_CPU_GPU_CV": pytest.approx(2.0),
    }


def test_an_unreadable_sensor_is_named_not_used(fake: FakeSys) -> None:
    fake.write("class/powercap/intel-rapl:0/name", "package-0")
    (fake.root / "sys/class/powercap/intel-rapl:0/energy_uj").mkdir()  # reads fail
    report = measure(0.01).report(inferences=1)
    assert report.sensors == []
    assert report.note is not None and report.note.startswith("no power sensor; rapl:package-0 not")


def test_a_short_window_is_called_coarse(fake: FakeSys) -> None:
    counter = fake.rapl()
    with fake.advancing(counter, uj_per_s=1e6):
        report = measure(0.01).report(inferences=1)
    assert report.note is not None and "figures are coarse" in report.note


def test_a_profile_reports_energy_per_inference(fake: FakeSys, add_onnx: Path) -> None:
    counter = fake.rapl()
    model = load_model(str(add_onnx))
    feeds = generate_feeds(model.session.signature, {"x": (256, 4)})
    with fake.advancing(counter, uj_per_s=4e6):
        report = profile(model, feeds, MeasurePolicy(warmup=2, runs=20, min_seconds=0.3))
    energy = report.energy
    assert energy is not None and energy.inferences == report.latency_ms.n
    (reading,) = energy.sensors
    assert reading.average_w == pytest.approx(4.0, rel=0.2)
    assert report.to_dict()["energy"]["sensors"][0]["sensor"] == "rapl:package-0"


def test_energy_can_be_left_out(fake: FakeSys, add_onnx: Path) -> None:
    model = load_model(str(add_onnx))
    feeds = generate_feeds(model.session.signature, {"x": (1, 4)})
    assert profile(model, feeds, MeasurePolicy(runs=3, energy=False, min_seconds=0)).energy is None


REAL = [p for p in glob.glob("/sys/class/powercap/*/energy_uj") if os.access(p, os.R_OK)]
REAL += glob.glob("/sys/class/hwmon/hwmon*/power*_input")
REAL += glob.glob("/sys/class/hwmon/hwmon*/energy*_input")


@pytest.mark.skipif(
    not REAL, reason="this machine has no readable power sensor under /sys/class/powercap or hwmon"
)
def test_the_real_sensors_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SYSFS_ROOT_ENV, raising=False)
    meter = power.EnergyMeter.discover()
    meter.start()
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:  # some work for the counters to count
        sum(i * i for i in range(1000))
    meter.stop()
    report = meter.report(inferences=1)
    assert report.sensors, report.note
    assert all(r.energy_mj >= 0 and r.average_w >= 0 for r in report.sensors)
    assert any(r.average_w > 0 for r in report.sensors), report
