from __future__ import annotations

from dataclasses import asdict, replace

import pytest

from edgeship.compress import CompressionReport, Fidelity, Latency, ModelStats
from edgeship.compress.report import SCHEMA, InterfaceChange, OutputVerdict
from edgeship.models.estimate import wilson


def _record() -> CompressionReport:
    base = ModelStats("a.onnx", "onnx", 1000, 900, 100, 100)
    model = ModelStats("b.onnx", "onnx", 300, 200, 100, 40)
    inner = CompressionReport("prune", {"method": "prune"}, base, model, verified_on="local")
    return CompressionReport(
        method="prune+int8-static",
        parameters={"chain": []},
        base=base,
        model=model,
        fidelity=Fidelity(10, 0.9, 1.5, 0.1, accuracy=0.8, base_accuracy=0.85),
        latency=Latency.of_rounds("local", 1, [2.0, 2.2, 1.9], [1.0, 0.9, 1.1], {"x": [1, 4]}),
        verified_on="local",
        seconds=1.25,
        details={"layers": {"x": {"kept": 1}}},
        notes=["n"],
        steps=[inner],
    )


def test_json_round_trip_and_derived_fields() -> None:
    record = _record()
    data = record.to_dict()
    assert data["schema"] == SCHEMA == "edgeship.compression/2.3"
    assert data["model"]["sparsity"] == pytest.approx(0.6)
    assert data["fidelity"]["accuracy_drop_pt"] == pytest.approx(5.0)
    assert data["latency"]["speedup"] == pytest.approx(2.0)
    assert data["latency"]["model_rounds_ms"] == [1.0, 0.9, 1.1]
    assert CompressionReport.from_json(record.to_json()) == record
    record.latency = replace(record.latency, detectable_slowdown=0.18)
    again = CompressionReport.from_json(record.to_json())
    assert again.latency is not None and again.latency.detectable_slowdown == 0.18
    older = _record().to_dict()  # a 2.2 file has no detectable slowdown: read as unknown
    del older["latency"]["detectable_slowdown"]
    older["schema"] = "edgeship.compression/2.2"
    assert CompressionReport.from_dict(older) == _record()


def test_other_schema_is_refused() -> None:
    data = _record().to_dict()
    data["schema"] = "edgeship.compression/0"
    with pytest.raises(ValueError, match="schema"):
        CompressionReport.from_dict(data)


def test_reports_written_before_cosine_and_the_old_names_still_read() -> None:
    data = _record().to_dict()
    assert data["fidelity"]["cosine"] is None
    del data["fidelity"]["cosine"]
    assert CompressionReport.from_dict(data) == _record()


def test_output_verdicts_and_interface_changes_round_trip_and_schema_1_still_reads() -> None:
    record = _record()
    record.outputs = [
        OutputVerdict("y", "scores", True, {"top1_agreement": 0.9, "kl_divergence": None}),
        OutputVerdict("out0", "scores", False, {"cosine": 0.0}, ["all zeros"], 0.0, "scores"),
    ]
    record.interface = [InterfaceChange("input", "x", "float32", [1, 3], "int8", [1, 3])]
    data = record.to_dict()
    assert [v["collapsed"] for v in data["outputs"]] == [False, True]
    assert CompressionReport.from_json(record.to_json()) == record
    old = _record().to_dict()
    old["schema"] = "edgeship.compression/1"
    del old["outputs"], old["interface"]
    assert CompressionReport.from_dict(old) == _record()


def test_each_share_carries_its_sample_count_and_wilson_interval_in_the_json() -> None:
    data = _record().to_dict()["fidelity"]
    assert data["samples"] == 10
    assert data["accuracy_ci"] == asdict(wilson(8, 10))
    assert data["base_accuracy_ci"] == asdict(wilson(round(0.85 * 10), 10))
    assert data["top1_agreement_ci"] == asdict(wilson(9, 10))
    verdict = OutputVerdict(
        "y", "scores", True, {"top1_agreement": 0.9, "cosine": 0.99}, samples=10
    )
    out = verdict.to_dict()
    assert out["samples"] == 10 and out["intervals"] == {"top1_agreement": asdict(wilson(9, 10))}
    assert OutputVerdict.from_dict(out) == verdict


def test_a_report_of_schema_2_0_reads_and_gets_its_intervals_back() -> None:
    data = _record().to_dict()
    data["schema"] = "edgeship.compression/2"
    for key in ("accuracy_ci", "base_accuracy_ci", "top1_agreement_ci"):
        del data["fidelity"][key]
    read = CompressionReport.from_dict(data)
    assert read == _record()
    assert read.fidelity is not None and read.fidelity.accuracy_ci == wilson(8, 10)
