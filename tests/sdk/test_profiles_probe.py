"""The probe reads a board's names where boards keep them: device tree, then DMI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgeship.targets.profiles import match_profile
from edgeship_runtime import probe


@pytest.fixture
def sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty fake /proc/device-tree, /sys/firmware/devicetree/base and DMI directory."""
    model = (tmp_path / "proc-dt" / "model", tmp_path / "fw-dt" / "model")
    compatible = (tmp_path / "proc-dt" / "compatible", tmp_path / "fw-dt" / "compatible")
    for path in model:
        path.parent.mkdir(exist_ok=True)
    (tmp_path / "dmi").mkdir()
    monkeypatch.setattr(probe, "_MODEL_FILES", tuple(map(str, model)))
    monkeypatch.setattr(probe, "_COMPATIBLE_FILES", tuple(map(str, compatible)))
    monkeypatch.setattr(probe, "_DMI_DIR", str(tmp_path / "dmi"))
    return tmp_path


def test_device_tree_model_and_compatible_as_the_kernel_writes_them(sysfs: Path) -> None:
    (sysfs / "fw-dt" / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    (sysfs / "fw-dt" / "compatible").write_bytes(b"raspberrypi,5-model-b\x00brcm,bcm2712\x00")
    dmi = probe.dmi()
    assert probe.board(dmi) == "Raspberry Pi 5 Model B Rev 1.0"
    assert probe.compatible() == ["raspberrypi,5-model-b", "brcm,bcm2712"]
    seen = {"arch": "aarch64", "board": probe.board(dmi), "compatible": probe.compatible()}
    assert match_profile(seen).name == "raspberry-pi-5"  # type: ignore[union-attr]


def test_dmi_names_an_x86_board_and_placeholders_are_dropped(sysfs: Path) -> None:
    for field, value in {
        "sys_vendor": "Intel(R) Client Systems",
        "product_name": "NUC11TNHi5",
        "board_name": "To Be Filled By O.E.M.",
    }.items():
        (sysfs / "dmi" / field).write_text(value + "\n")
    dmi = probe.dmi()
    assert dmi == {
        "sys_vendor": "Intel(R) Client Systems",
        "product_name": "NUC11TNHi5",
        "board_name": None,
    }
    assert probe.board(dmi) == "Intel(R) Client Systems NUC11TNHi5"
    seen = {"arch": "x86_64", "board": probe.board(dmi), "dmi": dmi}
    assert match_profile(seen).name == "x86-mini-pc"  # type: ignore[union-attr]


def test_a_device_that_names_itself_nowhere(sysfs: Path) -> None:
    """An emulated board (no /sys in its root) or a container: no name, a generic profile."""
    dmi = probe.dmi()
    assert probe.board(dmi) is None and probe.compatible() == []
    seen = {"arch": "aarch64", "board": None, "dmi": dmi, "compatible": []}
    assert match_profile(seen).name == "generic-aarch64"  # type: ignore[union-attr]


def test_the_whole_probe_reports_the_new_fields() -> None:
    seen = probe.probe("~/.edgeship")
    assert {"board", "dmi", "compatible", "files"} <= set(seen)
    assert set(seen["dmi"]) == {"sys_vendor", "product_name", "board_name"}


def test_a_litert_wheel_whose_interpreter_cannot_load_is_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tflite-runtime 2.12.0's armv7l wheel imports its package on Debian bullseye and fails
    at its interpreter (built for a newer glibc): the probe must say so, not "installed"."""
    package = tmp_path / "tflite_runtime"
    package.mkdir()
    (package / "__init__.py").write_text("__version__ = '2.12.0'\n")
    (package / "interpreter.py").write_text(
        'raise ImportError("/lib/arm-linux-gnueabihf/libstdc++.so.6: version '
        "`GLIBCXX_3.4.29' not found\")\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    entry = probe.backends()["tflite_runtime"]
    assert entry["available"] is False
    assert entry["reason"].startswith("ImportError: ") and "GLIBCXX_3.4.29" in entry["reason"]
