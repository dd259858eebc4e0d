"""Which ONNX Runtime offline level a target may run (pure)."""

from __future__ import annotations

import pytest

from edgeship.optimize._policy import RuntimeFacts, allowed_level, version_tuple
from edgeship_runtime.errors import UsageError

CPU = ("CPUExecutionProvider",)
HOST = RuntimeFacts("1.32.0", CPU, "x86_64", True)


def facts(version: str | None = "1.32.0", providers=CPU, arch="x86_64", local=False):  # type: ignore[no-untyped-def]
    return RuntimeFacts(version, tuple(providers), arch, local)


def test_local_gets_what_it_asks() -> None:
    assert allowed_level("all", HOST, HOST) == ("all", "")
    assert allowed_level("auto", HOST, HOST) == ("all", "")
    assert allowed_level("basic", HOST, HOST) == ("basic", "")
    assert allowed_level("none", HOST, facts()) == ("none", "")


def test_all_is_for_this_machine_only() -> None:
    level, why = allowed_level("all", HOST, facts(arch="aarch64"))
    assert level == "extended" and "this host's CPU" in why


def test_older_runtime_or_gpu_gets_basic() -> None:
    level, why = allowed_level("extended", HOST, facts("1.19.2"))
    assert level == "basic" and "1.19.2 is older than this host's 1.32.0" in why
    level, why = allowed_level("auto", HOST, facts(providers=("CUDAExecutionProvider", *CPU)))
    assert level == "basic" and "CUDAExecutionProvider" in why
    assert allowed_level("extended", HOST, facts("1.33.1"))[0] == "extended"
    assert allowed_level("extended", HOST, facts(None))[0] == "basic"


def test_unknown_level_and_versions() -> None:
    with pytest.raises(UsageError, match="unknown optimization level 'max'"):
        allowed_level("max", HOST, HOST)
    assert version_tuple("1.19.2") == (1, 19, 2)
    assert version_tuple("1.20.0rc1") == (1, 20, 0)
    assert version_tuple(None) == (0,)
