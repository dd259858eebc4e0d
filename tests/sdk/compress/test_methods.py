"""The method registry: names, config types, formats read and written, lazy runners."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeship.compress import (
    ChainConfig,
    ChannelPruneConfig,
    DistillConfig,
    Method,
    PruneConfig,
    QuantizeConfig,
    config_from_dict,
    config_to_dict,
    get_method,
    method_names,
    register_method,
)
from edgeship.compress import methods as registry
from edgeship.compress.config import data_needs, output_format
from edgeship.compress.methods import TORCH, Job, Outcome, method_for
from edgeship.core.errors import UsageError


@dataclass(frozen=True)
class EchoConfig:
    """A test method's settings: copies its base to ``out``."""

    method: str = "echo"

    def needs_data(self) -> str | None:
        return None


def echo(job: Job[EchoConfig]) -> Outcome:
    job.out.write_bytes(job.base.read_bytes())
    return Outcome(details={"echoed": str(job.base)})


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Registrations made in the test vanish after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    yield


def test_built_in_methods_and_their_configs() -> None:
    assert method_names() == [
        "int8-dynamic",
        "int8-static",
        "fp16",
        "prune",
        "prune-channels",
        "distill",
    ]
    assert get_method("int8-static").config is QuantizeConfig
    assert get_method("prune").training == "fine_tune"
    assert get_method("distill").training == "train"
    assert get_method("fp16").training is None
    assert get_method("prune-channels").structured and not get_method("prune").structured
    assert method_for(ChannelPruneConfig()).name == "prune-channels"


def test_formats_read_and_written() -> None:
    assert get_method("int8-static").reads == ("onnx", "tflite")
    assert get_method("int8-static").output_format("tflite") == "tflite"
    assert get_method("int8-static").suffix("tflite") == ".tflite"
    assert get_method("fp16").reads == ("onnx", "tflite")
    assert get_method("prune").output_format("onnx") == "onnx"
    assert TORCH in get_method("prune-channels").reads
    assert get_method("distill").output_format("tflite") == "onnx"
    slim_int8 = ChainConfig((ChannelPruneConfig(), QuantizeConfig("int8-dynamic")))
    assert output_format(QuantizeConfig("int8-dynamic"), "tflite") == "tflite"
    assert output_format(slim_int8, "onnx") == "onnx"


def test_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown compression method 'zip' \(known: int8-dyn"):
        get_method("zip")
    with pytest.raises(UsageError, match="unknown compression method 'zip'"):
        config_from_dict({"method": "zip"})


def test_a_name_is_registered_once(scratch_registry: None) -> None:
    with pytest.raises(ValueError, match="'prune' is already registered"):
        register_method(
            Method("prune", PruneConfig, runners={"onnx": ".prune_weights:prune_weights"})
        )
    with pytest.raises(ValueError, match="module:function"):
        Method("x", PruneConfig, runners={"onnx": "prune_weights"})
    with pytest.raises(ValueError, match="no runner"):
        Method("x", PruneConfig, runners={})


def test_a_config_of_another_type_is_refused() -> None:
    @dataclass(frozen=True)
    class Impostor:
        method: str = "prune"

        def needs_data(self) -> str | None:
            return None

    with pytest.raises(UsageError, match="prune takes a PruneConfig, not Impostor"):
        method_for(Impostor())


def test_a_registered_method_parses_and_runs(scratch_registry: None, tmp_path: Path) -> None:
    register_method(Method("echo", EchoConfig, runners={"onnx": f"{__name__}:echo"}))
    config = config_from_dict({"method": "echo"})
    assert isinstance(config, EchoConfig) and config_to_dict(config) == {"method": "echo"}
    with pytest.raises(UsageError, match="echo does not train; unexpected"):
        config_from_dict({"method": "echo", "epochs": 2})
    base = tmp_path / "m.onnx"
    base.write_bytes(b"not really onnx")
    outcome = get_method("echo").run(Job(base, config, None, tmp_path / "o.onnx"))
    assert outcome.details == {"echoed": str(base)} and (tmp_path / "o.onnx").is_file()
    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(b"\0\0\0\0TFL3")
    with pytest.raises(UsageError, match=r"echo works on ONNX models .* not TFLite"):
        get_method("echo").run(Job(tflite, config, None, tmp_path / "o.onnx"))


@pytest.mark.parametrize(
    ("config", "needs"),
    [
        (QuantizeConfig("fp16"), []),
        (QuantizeConfig("int8-dynamic"), []),
        (QuantizeConfig("int8-static"), ["static INT8 calibration"]),
        (PruneConfig(), []),
        (PruneConfig(importance="gradient"), ["gradient importance"]),
        (PruneConfig(accuracy_budget_pt=1.0), ["an accuracy budget"]),
        (ChannelPruneConfig(), []),
        (ChannelPruneConfig(importance="activation"), ["activation importance"]),
        (DistillConfig(), ["distillation"]),
        (
            ChainConfig((ChannelPruneConfig(), QuantizeConfig("int8-static"))),
            ["static INT8 calibration"],
        ),
    ],
)
def test_what_needs_data(config: object, needs: list[str]) -> None:
    assert data_needs(config) == needs  # type: ignore[arg-type]


def test_registering_imports_no_torch() -> None:
    code = "import sys, edgeship.compress; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_running_a_method_leaves_the_packages_functions_in_place() -> None:
    """The registry imports each runner's module when first used; a module named like a
    package function (``quantize``, ``prune``, ``distill``) would replace that function on
    the package for every later ``from edgeship.compress import quantize``."""
    for reads in sorted({r for m in method_names() for r in get_method(m).runners.values()}):
        importlib.import_module(reads.partition(":")[0], "edgeship.compress")
    for name in ("quantize", "prune", "prune_channels", "distill", "compress"):
        assert inspect.isfunction(getattr(sys.modules["edgeship.compress"], name)), name
