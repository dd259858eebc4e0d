from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.compress import (
    ChainConfig,
    ChannelPruneConfig,
    CompressOptions,
    Dataset,
    PruneConfig,
    QuantizeConfig,
    VerificationError,
    compress,
)
from edgeship.compress.training.torch_model import TorchModel
from edgeship.core.errors import InputError, ModelError, UsageError
from tests.sdk.compress.conftest import CountingTarget
from tools.zoo.build import Manifest


def test_chain_records_each_step_in_one_runtime(
    zoo: Manifest, small_train: Dataset, tmp_path: Path
) -> None:
    config = ChainConfig(
        (ChannelPruneConfig(0.5), QuantizeConfig("int8-static", calibration_samples=64))
    )
    with CountingTarget() as target:
        options = CompressOptions(target=target, latency_rounds=1, latency_runs=20)
        result = compress(zoo.path("mlp.onnx"), config, small_train, tmp_path / "c.onnx", options)
        assert target.starts == 1  # 3 verifications and 2 latency rounds, one runtime
        target.run(result.path, small_train.take(1).feeds)  # still open: its owner closes it
        assert target.starts == 1
    rec = result.report
    assert rec.method == "prune-channels+int8-static"
    assert [s.method for s in rec.steps] == ["prune-channels", "int8-static"]
    assert all(s.verified_on == "local" for s in rec.steps)
    assert rec.latency is not None and rec.latency.target == "local"
    assert rec.model.size_bytes < 0.15 * rec.base.size_bytes


def test_a_method_that_needs_data_says_so_before_any_work(zoo: Manifest, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="static INT8 calibration needs data"):
        compress(zoo.path("mlp.onnx"), QuantizeConfig("int8-static"), None, tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize(
    ("model", "config", "out", "error", "message"),
    [
        ("mlp.onnx", PruneConfig(), "mlp.onnx", UsageError, "overwrite"),
        ("mlp.onnx", QuantizeConfig("fp16"), "x.tflite", UsageError, "writes a .onnx"),
        ("cnn.tflite", PruneConfig(), "x.onnx", UsageError, "not TFLite"),
        ("missing.onnx", PruneConfig(), "x.onnx", ModelError, "no such model"),
    ],
)
def test_impossible_requests(
    zoo: Manifest,
    tmp_path: Path,
    model: str,
    config: object,
    out: str,
    error: type,
    message: str,
) -> None:
    if model.endswith(".tflite") and "tflite" not in zoo.models["cnn"].files:
        pytest.skip("no tflite in the zoo")
    path = zoo.path(model) if model != "missing.onnx" else tmp_path / model
    target = zoo.path(out) if out == model else tmp_path / out
    with pytest.raises(error, match=message):
        compress(path, config, None, target)  # type: ignore[arg-type]


def test_torch_model_needs_data(zoo: Manifest, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs --data"):
        compress(
            TorchModel("tools.zoo.models:mlp", zoo.path("mlp.pt")),
            PruneConfig(),
            None,
            tmp_path / "x.onnx",
        )
    with pytest.raises(ModelError, match="does not load"):
        TorchModel("tools.zoo.models:mlp", zoo.path("cnn.pt")).build()
    with pytest.raises(UsageError, match="module:factory"):
        TorchModel("tools.zoo.models")


def test_a_model_that_does_not_run_is_never_a_success(
    zoo: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Corrupt the produced file before verification: the call must fail, not report."""
    from edgeship.compress import _api as api

    real = api.run_method

    def corrupting(*args, **kwargs):  # type: ignore[no-untyped-def]
        outcome = real(*args, **kwargs)
        args[4].write_bytes(b"\x08\x07garbage")
        return outcome

    monkeypatch.setattr(api, "run_method", corrupting)
    with pytest.raises(VerificationError, match="did not run on local"):
        compress(zoo.path("mlp.onnx"), PruneConfig(0.5), None, tmp_path / "x.onnx")
