"""Matching a device to a board profile, from what the probe reads on each board family.

The fixtures are the fields of ``edgeship probe --json`` that matching reads (arch,
device-tree model and compatible list, DMI names, marker files), as those boards report
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeship.core.errors import ConfigError
from edgeship.targets.profiles import get_profile, load_profile, load_profiles, match_profile

NO_DMI = {"sys_vendor": None, "product_name": None, "board_name": None}


def seen(
    arch: str,
    board: str | None = None,
    compatible: tuple[str, ...] = (),
    dmi: dict[str, str | None] | None = None,
    files: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "arch": arch,
        "board": board,
        "compatible": list(compatible),
        "dmi": dmi or NO_DMI,
        "files": list(files),
    }


def x86(vendor: str | None, product: str | None, board: str | None = None) -> dict[str, Any]:
    dmi = {"sys_vendor": vendor, "product_name": product, "board_name": board}
    name = " ".join(n for n in (vendor, product) if n) or None
    return seen("x86_64", name, dmi=dmi)


TEGRA = ("/etc/nv_tegra_release",)

BOARDS = {
    # Raspberry Pi: device-tree model and compatible, 64- and 32-bit Pi OS
    "pi3b+ 32-bit": (
        seen(
            "armv7l",
            "Raspberry Pi 3 Model B Plus Rev 1.3",
            ("raspberrypi,3-model-b-plus", "brcm,bcm2837"),
        ),
        "raspberry-pi-3",
    ),
    "pi zero 2 w": (
        seen(
            "aarch64",
            "Raspberry Pi Zero 2 W Rev 1.0",
            ("raspberrypi,model-zero-2-w", "brcm,bcm2837"),
        ),
        "raspberry-pi-3",
    ),
    "pi4": (
        seen(
            "aarch64", "Raspberry Pi 4 Model B Rev 1.4", ("raspberrypi,4-model-b", "brcm,bcm2711")
        ),
        "raspberry-pi-4",
    ),
    "pi 400": (seen("aarch64", "Raspberry Pi 400 Rev 1.0"), "raspberry-pi-4"),
    "cm4 32-bit": (seen("armv7l", "Raspberry Pi Compute Module 4 Rev 1.0"), "raspberry-pi-4"),
    "pi5": (
        seen(
            "aarch64", "Raspberry Pi 5 Model B Rev 1.0", ("raspberrypi,5-model-b", "brcm,bcm2712")
        ),
        "raspberry-pi-5",
    ),
    "pi4 model unreadable, soc known": (seen("aarch64", None, ("brcm,bcm2711",)), "raspberry-pi-4"),
    # NVIDIA Jetson: model, Tegra SoC, L4T release file
    "jetson nano": (
        seen(
            "aarch64",
            "NVIDIA Jetson Nano Developer Kit",
            ("nvidia,p3450-0000", "nvidia,jetson-nano", "nvidia,tegra210"),
            files=TEGRA,
        ),
        "jetson-nano",
    ),
    "xavier nx": (
        seen(
            "aarch64",
            "NVIDIA Jetson Xavier NX Developer Kit",
            ("nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"),
            files=TEGRA,
        ),
        "jetson-xavier",
    ),
    "agx xavier (L4T 32 name)": (
        seen("aarch64", "Jetson-AGX", ("nvidia,p2972-0000", "nvidia,galen", "nvidia,tegra194")),
        "jetson-xavier",
    ),
    "orin nano": (
        seen(
            "aarch64",
            "NVIDIA Jetson Orin Nano Developer Kit",
            ("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"),
            files=TEGRA,
        ),
        "jetson-orin-nano",
    ),
    "agx orin": (
        seen(
            "aarch64",
            "NVIDIA Jetson AGX Orin Developer Kit",
            ("nvidia,p3737-0000+p3701-0005", "nvidia,tegra234"),
            files=TEGRA,
        ),
        "jetson",
    ),
    "jetson, model unreadable": (seen("aarch64", None, files=TEGRA), "jetson"),
    # x86 mini PCs: DMI vendor / product / board
    "intel nuc": (x86("Intel(R) Client Systems", "NUC11TNHi5", "NUC11TNBi5"), "x86-mini-pc"),
    "asus nuc": (x86("ASUSTeK COMPUTER INC.", "NUC14RVH-B", "NUC14RVB"), "x86-mini-pc"),
    "beelink": (x86("AZW", "SER", "SER"), "x86-mini-pc"),
    "minisforum": (x86("Micro Computer (HK) Tech Limited", "UM790 Pro", "UM790"), "x86-mini-pc"),
    "up board": (x86("AAEON", "UP-APL01", "UP-APL01"), "x86-mini-pc"),
    "lattepanda": (x86("LattePanda", "LattePanda 3 Delta", "LP-BS-3D864"), "x86-mini-pc"),
    # what no profile names gets the generic profile of its arch
    "qemu vm": (x86("QEMU", "Standard PC (Q35 + ICH9, 2009)"), "generic-x86_64"),
    "x86 without dmi (container)": (seen("x86_64"), "generic-x86_64"),
    "rock 5b": (
        seen("aarch64", "Radxa ROCK 5B", ("radxa,rock-5b", "rockchip,rk3588")),
        "generic-aarch64",
    ),
    "orange pi 5": (
        seen("aarch64", "Orange Pi 5", ("rockchip,rk3588s-orangepi-5",)),
        "generic-aarch64",
    ),
    "i.mx8m plus": (
        seen("aarch64", "NXP i.MX8MPlus EVK board", ("fsl,imx8mp-evk",)),
        "generic-aarch64",
    ),
    "graviton vm": (
        seen(
            "aarch64",
            "Amazon EC2 c7g.large",
            dmi={"sys_vendor": "Amazon EC2", "product_name": "c7g.large", "board_name": None},
        ),
        "generic-aarch64",
    ),
    "emulated arm64 (no /sys)": (seen("aarch64"), "generic-aarch64"),
    "orange pi zero": (
        seen(
            "armv7l", "Xunlong Orange Pi Zero", ("xunlong,orangepi-zero", "allwinner,sun8i-h2-plus")
        ),
        "generic-armv7l",
    ),
    "visionfive 2": (seen("riscv64", "StarFive VisionFive 2 v1.3B"), "generic"),
}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_each_board_family_gets_its_profile(board: str) -> None:
    probe, expected = BOARDS[board]
    profile = match_profile(probe)
    assert profile is not None and profile.name == expected
    assert profile.generic == expected.startswith("generic")


def test_every_linux_device_gets_a_profile_whatever_its_arch() -> None:
    for arch in ("aarch64", "armv7l", "x86_64", "riscv64", "ppc64le", "s390x"):
        assert match_profile(seen(arch)) is not None


def test_a_board_name_wins_over_a_soc_or_a_marker_file() -> None:
    """An Orin Nano carries the Tegra234 SoC and the L4T file the generic Jetson profile
    matches on too: its own name is the stronger evidence."""
    probe = BOARDS["orin nano"][0]
    fits = {p.name: p.fit(probe) for p in load_profiles().values() if p.fit(probe).level >= 0}
    assert fits["jetson-orin-nano"] > fits["jetson"] > fits["generic-aarch64"] > fits["generic"]


def test_a_named_board_of_another_arch_does_not_match() -> None:
    assert match_profile(seen("x86_64", "Raspberry Pi 4 Model B Rev 1.4")).name == "generic-x86_64"


def test_generic_profiles_install_only_backends_with_wheels_for_their_arch() -> None:
    """onnxruntime publishes aarch64 and x86_64 wheels on PyPI but none for armv7l;
    ai-edge-litert none for armv7l either (there it is tflite-runtime)."""
    arm64, x86_64 = get_profile("generic-aarch64"), get_profile("generic-x86_64")
    arm32 = get_profile("generic-armv7l")
    for profile in (arm64, x86_64):
        assert {"onnxruntime", "ai-edge-litert"} <= set(profile.pip)
        assert profile.threads == 0 and profile.onnxruntime_providers == ("CPUExecutionProvider",)
    assert arm32.backends == ("tflite",) and "onnxruntime" not in arm32.pip
    assert [p for p in arm32.pip if p.startswith("tflite-runtime")] and arm32.threads == 0


def test_a_former_profile_name_still_resolves() -> None:
    """Devices set up before the generic profiles recorded ``x86_64``."""
    assert get_profile("x86_64").name == "generic-x86_64"
    with pytest.raises(ConfigError, match="unknown board profile 'pi9'"):
        get_profile("pi9")


def test_only_32_bit_arm_takes_numpy_from_the_board() -> None:
    """PyPI has no armv7l numpy wheel: that board brings apt's; every other installs its own."""
    assert get_profile("generic-armv7l").system_packages == ("numpy",)
    others = [p for p in load_profiles().values() if p.name != "generic-armv7l"]
    assert others and not [p.name for p in others if p.system_packages]


def test_a_system_package_setup_would_not_install_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_text(
        'schema = "edgeship.target-profile/1"\nname = "b"\narch = "armv7l"\n[runtime]\n'
        'backends = ["tflite"]\npip = ["tflite-runtime"]\nsystem_packages = ["numpy"]\n'
    )
    with pytest.raises(ConfigError, match=r"system package 'numpy' is not in \[runtime\] pip"):
        load_profile(path)
