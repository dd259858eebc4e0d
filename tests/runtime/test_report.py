"""ProfileReport: JSON round trip, schema versioning, tolerant reading."""

from __future__ import annotations

import json

import pytest

from edgeship_runtime.errors import ProtocolError
from edgeship_runtime.report import (
    REPORT_SCHEMA,
    BackendUsage,
    Environment,
    LatencyStats,
    MemoryStats,
    ModelInfo,
    PolicyRecord,
    ProfileReport,
    TensorSummary,
)


def make_report(**changes: object) -> ProfileReport:
    report = ProfileReport(
        model=ModelInfo(path="/m/cnn.onnx", sha256="ab" * 32, format="onnx", size_bytes=1234),
        backend=BackendUsage(
            name="onnxruntime", version="1.19.2", threads=2, providers=["CPUExecutionProvider"]
        ),
        policy=PolicyRecord(warmup=10, runs=3, min_seconds=0.5),
        inputs=[TensorSummary(name="input", shape=[1, 1, 8, 8], dtype="float32")],
        batch_size=1,
        load_ms=12.5,
        first_inference_ms=3.25,
        latency_ms=LatencyStats(
            n=3, mean=1.0, std=0.1, min=0.9, p50=1.0, p90=1.1, p95=1.1, p99=1.1, max=1.1
        ),
        throughput_ips=1000.0,
        memory_mb=MemoryStats(
            rss_before_load=50.0,
            rss_after_load=60.0,
            peak_rss=61.5,
            load_delta=10.0,
            method="VmHWM",
        ),
        environment=Environment(
            hostname="pi",
            arch="aarch64",
            cpu_model="Cortex-A72",
            logical_cores=4,
            usable_cores=4,
            total_memory_mb=3796.0,
            os="Debian 12",
            python="3.9.18",
            board="Raspberry Pi 4 Model B Rev 1.4",
            cpu_governor="ondemand",
            cpu_freq_mhz=1500.0,
            temperature_c=48.2,
            thermal_zones={"cpu-thermal": 48.2},
        ),
        outputs=[TensorSummary(name="logits", shape=[1, 10], dtype="float32", all_finite=True)],
        runtime_version="0.1.0",
        created_at="2025-01-01T00:00:00+00:00",
        samples_ms=[0.9, 1.0, 1.1],
        target={"name": "pi", "kind": "ssh"},
    )
    for key, value in changes.items():
        setattr(report, key, value)
    return report


def test_json_round_trip_is_equal() -> None:
    report = make_report()
    back = ProfileReport.from_json(report.to_json())
    assert back == report
    assert isinstance(back.latency_ms, LatencyStats)
    assert isinstance(back.environment.thermal_zones, dict)


def test_round_trip_with_optional_fields_empty() -> None:
    report = make_report(samples_ms=None, target=None)
    report.environment.board = None
    report.environment.thermal_zones = {}
    assert ProfileReport.from_json(report.to_json(indent=None)) == report


def test_integral_floats_come_back_as_floats() -> None:
    data = make_report().to_dict()
    data["load_ms"] = 12
    back = ProfileReport.from_dict(data)
    assert back.load_ms == 12.0 and isinstance(back.load_ms, float)


def test_schema_is_written() -> None:
    assert json.loads(make_report().to_json())["schema"] == REPORT_SCHEMA == "edgeship.report/1"


@pytest.mark.parametrize("schema", ["edgeship.report/2", "edgeship.report/10", "other/1", ""])
def test_other_schemas_are_rejected(schema: str) -> None:
    data = make_report().to_dict()
    data["schema"] = schema
    with pytest.raises(ProtocolError, match="unsupported schema"):
        ProfileReport.from_dict(data)


def test_missing_schema_is_rejected() -> None:
    data = make_report().to_dict()
    del data["schema"]
    with pytest.raises(ProtocolError, match=r"\(none\)"):
        ProfileReport.from_dict(data)


def test_minor_revisions_are_read() -> None:
    data = make_report().to_dict()
    data["schema"] = "edgeship.report/1.3"
    assert ProfileReport.from_dict(data).latency_ms == make_report().latency_ms


def test_unknown_fields_are_ignored_at_every_level() -> None:
    data = make_report().to_dict()
    data["energy_mj"] = 4.2
    data["latency_ms"]["p999"] = 1.2
    data["environment"]["npu"] = "none"
    data["outputs"][0]["histogram"] = [1, 2]
    assert ProfileReport.from_dict(data) == make_report()
