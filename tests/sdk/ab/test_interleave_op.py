"""The runtime's ``interleave`` op, through the stdio protocol in memory, and its loop."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.ab.runner import ABConfig
from edgeship.targets import wire
from edgeship_runtime import protocol, service
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.errors import UsageError
from edgeship_runtime.measure import InterleavePolicy, interleave_runs
from edgeship_runtime.model import load_model
from edgeship_runtime.ops import Runtime, encode_tensors
from tests.runtime.fake_sysfs import FakeSys
from tests.runtime.framed import message_bytes, read_messages


def serve(*messages: dict[str, Any]) -> list[dict[str, Any]]:
    """Feed ``messages`` to a fresh service; its replies (the hello dropped)."""
    stdin = io.BytesIO(b"".join(message_bytes(m) for m in messages))
    stdout = io.BytesIO()
    assert service.serve(stdin, stdout) == 0
    stdout.seek(0)
    return read_messages(stdout)[1:]


def req(request_id: int, op: str, **args: Any) -> dict[str, Any]:
    return protocol.request(request_id, op, args)


def loads(path: Path, n: int) -> list[dict[str, Any]]:
    return [req(i + 1, "load", path=str(path), threads=1) for i in range(n)]


def test_interleave_runs_models_in_seeded_random_blocks(add_onnx: Path) -> None:
    args = {"handles": ["m1", "m2", "m3"], "block": 4, "blocks": 6, "warmup": 2, "seed": 7}
    *_, first, second = serve(
        *loads(add_onnx, 3), req(10, "interleave", **args), req(11, "interleave", **args)
    )
    assert first["ok"], first
    result = first["result"]
    assert result["handles"] == ["m1", "m2", "m3"]
    assert result["policy"] == {
        "warmup": 2, "block": 4, "blocks": 6, "seed": 7, "min_seconds": 0.0, "cpus": []
    }  # fmt: skip
    assert set(result["samples_ms"]) == {"m1", "m2", "m3"}
    assert all(len(s) == 24 and min(s) > 0 for s in result["samples_ms"].values())
    assert len(result["rounds"]) == 6
    assert all(sorted(r) == ["m1", "m2", "m3"] for r in result["rounds"])
    assert len({tuple(r) for r in result["rounds"]}) > 1  # the order changes between rounds
    assert second["result"]["rounds"] == result["rounds"]  # same seed, same orders
    for moment in ("before", "after"):
        seen = result["conditions"][moment]
        assert set(seen) == {"temperature_c", "thermal_zones", "cpu_freq_mhz"}
    assert result["wall_s"] > 0


def test_interleave_runs_rounds_until_every_model_has_min_seconds(add_onnx: Path) -> None:
    args = {"handles": ["m1", "m2"], "block": 3, "blocks": 1, "warmup": 1, "min_seconds": 0.02}
    *_, reply = serve(*loads(add_onnx, 2), req(3, "interleave", **args, cpus=[]))
    assert reply["ok"], reply
    result = reply["result"]
    assert result["policy"]["min_seconds"] == 0.02
    samples = list(result["samples_ms"].values())
    assert all(sum(s) >= 20.0 and len(s) == 3 * len(result["rounds"]) for s in samples)
    assert len(result["rounds"]) > 1


def test_interleave_with_one_feed_set_or_feeds_per_handle(add_onnx: Path) -> None:
    x = np.ones((3, 4), dtype=np.float32)
    shared = {"handles": ["m1", "m2"], "block": 2, "blocks": 2, "inputs": encode_tensors({"x": x})}
    per = {
        "handles": ["m1", "m2"],
        "block": 2,
        "blocks": 2,
        "feeds": {"m2": encode_tensors({"x": x[:1]})},
        "shapes": {"x": [5, 4]},
    }
    *_, a, b = serve(
        *loads(add_onnx, 2), req(3, "interleave", **shared), req(4, "interleave", **per)
    )
    assert a["ok"] and b["ok"], (a, b)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ({"handles": []}, "UsageError", "distinct loaded handles"),
        ({"handles": ["m1", "m1"]}, "UsageError", "distinct loaded handles"),
        ({"handles": ["m1", "m9"]}, "UsageError", "no loaded model with handle 'm9'"),
        ({"handles": ["m1"], "block": 0}, "UsageError", "block must be at least 1"),
        ({"handles": ["m1"], "blocks": 0}, "UsageError", "blocks must be at least 1"),
        (
            {"handles": ["m1"], "inputs": encode_tensors({"y": np.ones((1, 4), np.float32)})},
            "InputError",
            "missing input",
        ),
    ],
)
def test_interleave_errors(add_onnx: Path, args: dict[str, Any], error: str, message: str) -> None:
    _, reply = serve(*loads(add_onnx, 1), req(2, "interleave", **args))
    assert reply["ok"] is False
    assert reply["error"]["type"] == error and message in reply["error"]["message"]


def test_interleave_runs_directly(add_onnx: Path) -> None:
    models = [load_model(str(add_onnx)) for _ in range(2)]
    feeds = [{"x": np.zeros((1, 4), np.float32)}] * 2
    samples, rounds = interleave_runs(models, feeds, InterleavePolicy(warmup=0, block=3, blocks=5))
    assert [len(s) for s in samples] == [15, 15]
    assert len(rounds) == 5 and all(sorted(r) == [0, 1] for r in rounds)
    assert all(m.first_inference_ms is not None for m in models)
    with pytest.raises(UsageError, match="2 models but 1 feed sets"):
        interleave_runs(models, feeds[:1], InterleavePolicy())
    for m in models:
        m.close()


def test_interleave_is_listed_in_the_protocol_doc() -> None:
    assert "interleave {handles" in (protocol.__doc__ or "")
    assert "interleave" in service._OPS


def test_interleave_returns_the_device_state_once_for_every_verdict(
    add_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a fake ``/sys``: a ``schedutil`` CPU whose throttle counter a "kernel" advances
    through the window; the reply's one pair of snapshots shows both, the verdicts carry
    none and their reasons rest on them, and the host parses the pair."""
    fake = FakeSys(tmp_path)
    cpus = sorted(os.sched_getaffinity(0))
    for n in cpus:
        fake.cpu(n, governor="schedutil")
    counter = f"devices/system/cpu/cpu{cpus[0]}/thermal_throttle/core_throttle_count"
    fake.use(monkeypatch)
    args = {"handles": ["m1", "m2"], "block": 50, "blocks": 20, "warmup": 1}  # tens of ms
    with fake.advancing(counter, uj_per_s=10_000, start=5):
        *_, reply = serve(*loads(add_onnx, 2), req(3, "interleave", **args))
    assert reply["ok"], reply
    result = reply["result"]
    parsed = wire.Interleaved.parse(["m1", "m2"], result)
    before, after = parsed.device_before, parsed.device_after
    assert before is not None and after is not None
    assert before.governors == after.governors == ["schedutil"]
    key = f"cpu{cpus[0]}/core_throttle_count"
    assert after.throttle_counts[key] > before.throttle_counts[key] >= 5
    assert before.preemptions is not None and after.preemptions >= before.preemptions
    for verdict in result["validity"].values():
        assert verdict["before"] is None and verdict["after"] is None  # once, in "device"
        assert any("thermally throttled" in r for r in verdict["reasons"])
        assert any("governor is 'schedutil'" in r for r in verdict["reasons"])


def test_a_reply_from_an_older_runtime_has_no_device_state(add_onnx: Path) -> None:
    *_, reply = serve(*loads(add_onnx, 2), req(3, "interleave", handles=["m1", "m2"], blocks=2))
    result = {k: v for k, v in reply["result"].items() if k != "device"}
    parsed = wire.Interleaved.parse(["m1", "m2"], result)
    assert parsed.device_before is None and parsed.device_after is None


def test_an_ab_session_loads_its_models_with_sleeping_thread_pools(add_onnx: Path) -> None:
    config = ABConfig(session=SessionOptions(threads=2))
    args = wire.load(str(add_onnx), config.interleave_config()).args
    assert args["idle_spin"] is False
    assert "idle_spin" not in wire.load(str(add_onnx), config.profile_config()).args
    runtime = Runtime()
    try:
        handle = runtime.load(args)["handle"]
        opened = runtime._models[handle].extra["session_options"]
        assert opened == SessionOptions(threads=2, idle_spin=False)
    finally:
        runtime.close()
