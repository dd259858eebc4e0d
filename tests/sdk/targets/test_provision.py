"""Setup's package installation: one backend without a wheel does not sink the others."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from edgeship.core.errors import ConfigError, RemoteCommandError, TargetError
from edgeship.targets import provision
from edgeship.targets.profiles import get_profile
from edgeship.targets.provision import _make_venv, _require_python, install_each, setup_device


def _installer(missing: set[str]) -> tuple[list[str], Any]:
    tried: list[str] = []

    def install(package: str) -> None:
        tried.append(package)
        if package in missing:
            raise RemoteCommandError(
                "pi",
                f"pip install {package}",
                1,
                f"Collecting {package}\nERROR: No matching distribution found for {package}\n",
            )

    return tried, install


def test_every_package_installs() -> None:
    tried, install = _installer(set())
    assert install_each(["numpy", "onnxruntime", "ai-edge-litert"], install) == (
        ["numpy", "onnxruntime", "ai-edge-litert"],
        {},
    )
    assert tried == ["numpy", "onnxruntime", "ai-edge-litert"]


def test_litert_falls_back_to_tflite_runtime_and_a_missing_backend_is_left_out() -> None:
    tried, install = _installer({"onnxruntime", "ai-edge-litert"})
    installed, skipped = install_each(["numpy", "onnxruntime", "ai-edge-litert"], install)
    assert installed == ["numpy", "tflite-runtime"]
    assert tried == ["numpy", "onnxruntime", "ai-edge-litert", "tflite-runtime"]
    assert skipped == {
        "onnxruntime": "onnxruntime: ERROR: No matching distribution found for onnxruntime"
    }


def test_a_backend_and_its_fallback_both_missing_name_both_reasons() -> None:
    _, install = _installer({"ai-edge-litert", "tflite-runtime"})
    _, skipped = install_each(["numpy", "ai-edge-litert"], install)
    assert skipped["ai-edge-litert"].startswith("ai-edge-litert: ERROR: No matching")
    assert "; tflite-runtime: ERROR: No matching distribution" in skipped["ai-edge-litert"]


def test_a_missing_base_package_is_an_error() -> None:
    _, install = _installer({"numpy"})
    with pytest.raises(TargetError, match="No matching distribution found for numpy"):
        install_each(["numpy", "onnxruntime"], install)


def test_a_python_without_venv_support_is_a_clear_config_error() -> None:
    def run(argv: list[str], timeout: float) -> None:
        raise RemoteCommandError(
            "pi",
            " ".join(argv),
            1,
            "The virtual environment was not created successfully because ensurepip is "
            "not available.\n",
        )

    target = SimpleNamespace(
        name="pi",
        store=lambda: SimpleNamespace(layout=SimpleNamespace(path=lambda *p: "/r/venv")),
        run_command=run,
    )
    seen = {"python": {"executable": "/usr/bin/python3"}}
    with pytest.raises(ConfigError) as caught:
        _make_venv(target, seen, ["numpy"], offline=False)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "pi: /usr/bin/python3 cannot create a venv (The virtual environment" in message
    assert "install the python3-venv package on the device, or pass --python" in message


def test_setup_refuses_a_python_older_than_the_runtime_needs() -> None:
    seen = {"python": {"version": "3.6.9", "executable": "/usr/bin/python3"}}
    with pytest.raises(ConfigError) as caught:
        _require_python("nano", seen)
    assert str(caught.value) == (
        "nano: /usr/bin/python3 is Python 3.6.9; the edgeship runtime needs 3.9 or newer: "
        "install a newer Python on the device and pass it with --python"
    )
    _require_python("pi", {"python": {"version": "3.9.2", "executable": "/usr/bin/python3"}})


class FakeBoard:
    """A device for ``setup_device``: what its probe says, what setup ran on it."""

    name = "board"
    board_name: str | None = None

    def __init__(self, seen: dict[str, Any]) -> None:
        self.seen = seen
        self.probes: list[str] = []
        self.recorded: dict[str, Any] = {}
        self.python = ""

    def probe(self, python: str | None = None) -> dict[str, Any]:
        self.probes.append(python or "python3")
        return self.seen

    def install_runtime(self) -> str:
        return "/r/runtime/edgeship-runtime.pyz"

    def use_python(self, python: str) -> None:
        self.python = python

    def store(self) -> Any:
        def write_file(path: str, data: bytes) -> None:
            self.recorded = json.loads(data)

        return SimpleNamespace(
            layout=SimpleNamespace(path=lambda *p: "/r/" + "/".join(p)),
            write_file=write_file,
            make_private=lambda: None,
        )


UNKNOWN_ARM = {
    "arch": "aarch64",
    "board": "Radxa ROCK 5B",
    "compatible": ["radxa,rock-5b", "rockchip,rk3588"],
    "python": {"version": "3.11.2", "executable": "/opt/edge/bin/python"},
    "backends": {
        "numpy": {"available": True, "version": "1.26.4"},
        "onnxruntime": {"available": True, "version": "1.20.1"},
    },
}


def test_an_existing_python_on_an_unknown_board_gets_the_generic_profile() -> None:
    """The board of issue 15: not a Pi, not a Jetson, its own Python with backends."""
    board = FakeBoard(UNKNOWN_ARM)
    result = setup_device(board, python="/opt/edge/bin/python")  # type: ignore[arg-type]
    assert result.method == "existing-python" and result.profile == "generic-aarch64"
    assert result.notes == ["board not recognised: using generic-aarch64; pass --profile to choose"]
    assert board.probes == ["/opt/edge/bin/python"]  # one device Python start, not two
    assert board.recorded["profile"] == "generic-aarch64" and board.python == "/opt/edge/bin/python"


def test_an_existing_python_is_never_refused_for_want_of_a_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provision, "match_profile", lambda seen: None)
    board = FakeBoard({**UNKNOWN_ARM, "arch": "loongarch64"})
    result = setup_device(board, python="/opt/edge/bin/python")  # type: ignore[arg-type]
    assert result.profile is None and result.backends["onnxruntime"]["available"]
    with pytest.raises(ConfigError, match=r"no board profile fits .*; pass --profile NAME"):
        setup_device(FakeBoard(UNKNOWN_ARM))  # type: ignore[arg-type]


def test_a_recognised_board_or_a_named_profile_needs_no_note() -> None:
    pi = FakeBoard({**UNKNOWN_ARM, "board": "Raspberry Pi 4 Model B Rev 1.5"})
    result = setup_device(pi, python="/usr/bin/python3")  # type: ignore[arg-type]
    assert (result.profile, result.notes) == ("raspberry-pi-4", [])
    named = setup_device(FakeBoard(UNKNOWN_ARM), python="/p", profile="jetson")  # type: ignore[arg-type]
    assert (named.profile, named.notes) == ("jetson", [])


def _venv_target(
    no_wheel: set[str], commands: list[list[str]] | None = None
) -> tuple[list[list[str]], Any]:
    """A target whose pip has no wheel for ``no_wheel``; returns (pip calls, target).
    Every command it runs goes to ``commands`` too."""
    calls: list[list[str]] = []

    def run(argv: list[str], timeout: float) -> None:
        if commands is not None:
            commands.append(argv)
        if "pip" not in argv:
            return  # python -m venv
        wanted = argv[argv.index("--disable-pip-version-check") + 1 :]
        calls.append(wanted)
        missing = no_wheel & set(wanted)
        if missing:
            raise RemoteCommandError(
                "arm", "pip install", 1, f"No matching distribution found for {min(missing)}\n"
            )

    target = SimpleNamespace(
        name="arm",
        store=lambda: SimpleNamespace(layout=SimpleNamespace(path=lambda *p: "/r/venv")),
        run_command=run,
    )
    return calls, target


def test_the_venv_gets_every_package_from_one_pip_process() -> None:
    """On a slow board each pip start costs seconds: all packages in one when all exist."""
    calls, target = _venv_target(set())
    seen = {"python": {"executable": "/usr/bin/python3"}}
    packages = ["numpy", "psutil", "onnxruntime", "ai-edge-litert"]
    assert _make_venv(target, seen, packages, offline=False) == ("/r/venv/bin/python", packages, {})
    assert calls == [packages]


def test_a_package_without_a_wheel_sends_pip_back_to_one_at_a_time() -> None:
    calls, target = _venv_target({"onnxruntime"})
    seen = {"python": {"executable": "/usr/bin/python3"}}
    _, installed, skipped = _make_venv(
        target, seen, ["numpy", "onnxruntime", "tflite-runtime"], offline=False
    )
    assert installed == ["numpy", "tflite-runtime"] and list(skipped) == ["onnxruntime"]
    assert calls == [
        ["numpy", "onnxruntime", "tflite-runtime"],
        ["numpy"],
        ["onnxruntime"],
        ["tflite-runtime"],
    ]


ARMV7_BOARD = {
    "arch": "armv7l",
    "board": None,
    "python": {"version": "3.9.2", "executable": "/usr/bin/python3"},
    "backends": {"numpy": {"available": True, "version": "1.19.5"}},
}


def test_a_board_numpy_comes_from_sees_the_system_site_packages() -> None:
    """32-bit ARM: apt's numpy, seen by the venv; pip takes numpy only as a wheel, so
    tflite-runtime comes in the release that works with the board's numpy."""
    commands: list[list[str]] = []
    calls, target = _venv_target(set(), commands)
    system = get_profile("generic-armv7l").system_packages
    _make_venv(target, ARMV7_BOARD, ["numpy", "tflite-runtime"], offline=False, system=system)
    venv, pip = commands
    assert venv == ["/usr/bin/python3", "-m", "venv", "--system-site-packages", "/r/venv"]
    assert "--only-binary=numpy" in pip and calls == [["numpy", "tflite-runtime"]]


def test_other_boards_get_a_venv_of_their_own() -> None:
    commands: list[list[str]] = []
    _, target = _venv_target(set(), commands)
    _make_venv(target, UNKNOWN_ARM, ["numpy", "onnxruntime"], offline=False)
    venv, pip = commands
    assert venv == ["/opt/edge/bin/python", "-m", "venv", "/r/venv"]
    assert not [arg for arg in pip if arg.startswith("--only-binary")]


def test_a_board_without_its_system_numpy_is_told_to_install_it_before_pip_runs() -> None:
    board = FakeBoard({**ARMV7_BOARD, "backends": {"numpy": {"available": False}}})
    with pytest.raises(ConfigError) as caught:
        setup_device(board)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "board: /usr/bin/python3 has no numpy, which this board takes from its package "
        "manager (PyPI has no armv7l wheel): install it (e.g. apt install python3-numpy) "
        "and run setup again"
    )


def test_a_wheelhouse_for_a_board_that_brings_its_own_numpy_is_refused_before_any_change() -> None:
    board = FakeBoard(ARMV7_BOARD)
    with pytest.raises(ConfigError) as caught:
        setup_device(board, wheelhouse=True)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "board: --wheelhouse cannot prepare profile generic-armv7l: it takes numpy from the "
        "board's package manager, which the host cannot resolve against; run setup online, "
        "or pass --python with a Python that has numpy and a backend"
    )
    assert board.recorded == {} and board.python == ""
