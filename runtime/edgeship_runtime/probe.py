"""What a device has, read with the standard library only.

The host sends this file's source as ``python3 -c SOURCE --root DIR`` before anything is
installed, so it must not import numpy, a backend, or the rest of this package at module
level, and must keep to Python 3.6 syntax. It prints one JSON object.

Which modules to try comes from the host as ``--modules JSON`` (the backend catalog's
:func:`~edgeship_runtime.backends.catalog.probe_modules`): a list of ``{"module",
"distribution", "providers"}``, reported under each module's top-level package name.
"""

import glob
import json
import os
import platform
import shutil
import subprocess
import sys

# Where a board names itself: the device tree on ARM boards (one path or the other,
# depending on the kernel), DMI on x86 (and some ARM servers).
_MODEL_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
_COMPATIBLE_FILES = ("/proc/device-tree/compatible", "/sys/firmware/devicetree/base/compatible")
_DMI_DIR = "/sys/class/dmi/id"
_DMI_FIELDS = ("sys_vendor", "product_name", "board_name")
# what firmware writes when the vendor filled nothing in
_DMI_PLACEHOLDERS = ("to be filled by o.e.m.", "default string", "system product name", "none")
_MARKER_FILES = ("/etc/nv_tegra_release",)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None


def _run(argv, timeout=5.0):
    if not shutil.which(argv[0]):
        return None
    try:
        out = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace").strip() or None


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


def _read_list(path):
    """A device-tree string list (NUL-separated), or []."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [p.decode("utf-8", "replace") for p in raw.split(b"\x00") if p]


def dmi():
    """The DMI vendor, product and board names (x86 firmware), placeholders dropped."""
    found = {}
    for field in _DMI_FIELDS:
        value = _read(os.path.join(_DMI_DIR, field))
        found[field] = None if not value or value.lower() in _DMI_PLACEHOLDERS else value
    return found


def board(dmi_ids):
    """The board's own name: the device-tree model, else DMI's vendor and product."""
    for path in _MODEL_FILES:
        model = _read(path)
        if model:
            return model
    named = [dmi_ids.get("sys_vendor"), dmi_ids.get("product_name")]
    return " ".join(n for n in named if n) or None


def compatible():
    for path in _COMPATIBLE_FILES:
        found = _read_list(path)
        if found:
            return found
    return []


def check_module(spec):
    """Whether ``spec["module"]`` imports, the version of its top-level package, and the
    providers its ``spec["providers"]`` function lists, when it names one."""
    try:
        imported = __import__(spec["module"])  # the top-level package, with the module imported
        entry = {
            "available": True,
            "version": getattr(imported, "__version__", None) or _version(spec["distribution"]),
        }
        if spec.get("providers"):
            entry["providers"] = list(getattr(imported, spec["providers"])())
    except Exception as exc:
        reason = "{}: {}".format(type(exc).__name__, exc)[:200]
        entry = {"available": False, "version": None, "reason": reason}
    return entry


def backends(modules):
    """Each of ``modules`` (see the module docstring), by its top-level package."""
    return {spec["module"].split(".")[0]: check_module(spec) for spec in modules}


def meminfo():
    info = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            info[key] = int(rest.split()[0]) / 1024.0
    return {"total_mb": info.get("MemTotal"), "available_mb": info.get("MemAvailable")}


def disk(root):
    path = os.path.expanduser(root)
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        st = os.statvfs(path or "/")
    except OSError:
        return {"path": root, "free_mb": None}
    return {"path": root, "checked": path, "free_mb": st.f_bavail * st.f_frsize / 2.0**20}


def gpu():
    return {
        "nv_tegra_release": _read("/etc/nv_tegra_release"),
        "nvidia_smi": _run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        ),
    }


def sensors():
    thermal = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        raw = _read(os.path.join(zone, "temp"))
        if raw and raw.lstrip("-").isdigit():
            name = _read(os.path.join(zone, "type")) or os.path.basename(zone)
            thermal[name] = int(raw) / 1000.0
    power = sorted(
        glob.glob("/sys/class/hwmon/hwmon*/power*_input")
        + glob.glob("/sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*/in*_input")
    )
    return {
        "thermal_c": thermal,
        "power_inputs": power,
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }


def probe(root, modules):
    os_release = dict(
        line.split("=", 1) for line in (_read("/etc/os-release") or "").splitlines() if "=" in line
    )
    files = [p for p in _MARKER_FILES if os.path.exists(p)]
    dmi_ids = dmi()
    return {
        "hostname": platform.node(),
        "arch": platform.machine(),
        "os": os_release.get("PRETTY_NAME", platform.platform()).strip('"'),
        "kernel": platform.release(),
        "libc": "-".join(platform.libc_ver()),
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "cores": os.cpu_count(),
        "memory": meminfo(),
        "disk": disk(root),
        "board": board(dmi_ids),
        "dmi": dmi_ids,
        "compatible": compatible(),
        "files": files,
        "backends": backends(modules),
        "gpu": gpu(),
        "sensors": sensors(),
    }


def main(argv):
    root = argv[argv.index("--root") + 1] if "--root" in argv else "~/.edgeship"
    modules = json.loads(argv[argv.index("--modules") + 1])
    print(json.dumps(probe(root, modules)))


if __name__ == "__main__":
    main(sys.argv[1:])
