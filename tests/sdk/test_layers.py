"""The house drawn from the imports: no module imports one from a layer above its own.

Layers, bottom up (a module may import its own layer and those below):

0. runtime   ``edgeship_runtime``: the device side, imports nothing of the host
1. base      errors, extras, config, hashing, hostnames, progress, quiet, bundle, profiles,
             inventory
2. transport client, ssh/, deploy/
3. targets   targets/: the one place the host speaks the runtime's protocol
4. work      fleet, shard, provision, rollout, fidelity, compress/, convert/,
             optimize/, partition/, ab/, sweep/
5. api       api (the Python API)
6. cli       cli/, and the package's ``__init__``
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "edgeship"
RUNTIME = ROOT / "runtime" / "edgeship_runtime"

LAYERS = {
    "edgeship_runtime": 0,
    "errors": 1,
    "extras": 1,
    "config": 1,
    "hashing": 1,
    "hostnames": 1,
    "progress": 1,
    "quiet": 1,
    "bundle": 1,
    "profiles": 1,
    "inventory": 1,
    "client": 2,
    "ssh": 2,
    "deploy": 2,
    "targets": 3,
    "fleet": 4,
    "shard": 4,
    "provision": 4,
    "fidelity": 4,
    "compress": 4,
    "convert": 4,
    "optimize": 4,
    "partition": 4,
    "ab": 4,
    "sweep": 4,
    "rollout": 4,
    "api": 5,
    "cli": 6,
    "__init__": 6,
    "__main__": 6,
}


def layer_of(module: str) -> int:
    """``module`` as a dotted name under ``edgeship`` or ``edgeship_runtime``."""
    parts = module.split(".")
    if parts[0] == "edgeship_runtime":
        return 0
    head = parts[1] if len(parts) > 1 else "__init__"
    if head not in LAYERS:
        raise AssertionError(f"edgeship.{head} has no layer: add it to LAYERS in {__file__}")
    return LAYERS[head]


def module_name(path: Path) -> str:
    base = ROOT / "sdk" if path.is_relative_to(SDK) else ROOT / "runtime"
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or parts[0]


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions, made absolute."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            names = [f"{target}.{alias.name}" for alias in node.names]
            found.update(names)
            # `from .. import fidelity` imports the submodule, not the package's __init__
            if not (target == "edgeship" and all(n.split(".")[1] in LAYERS for n in names)):
                found.add(target)
    return {m for m in found if m.split(".")[0] in ("edgeship", "edgeship_runtime")}


def test_no_import_runs_back_up() -> None:
    upward = []
    for path in sorted([*SDK.rglob("*.py"), *RUNTIME.rglob("*.py")]):
        own = layer_of(module_name(path))
        for imported in sorted(imports_of(path)):
            if imported.split(".")[0] == "edgeship" and len(imported.split(".")) > 1:
                head = imported.split(".")[1]
                if head not in LAYERS:  # a name imported from the package itself
                    continue
            if layer_of(imported) > own:
                upward.append(f"{module_name(path)} (layer {own}) imports {imported}")
    assert not upward, "\n".join(upward)


def test_the_runtime_imports_nothing_of_the_host() -> None:
    host = [
        f"{module_name(path)} imports {m}"
        for path in RUNTIME.rglob("*.py")
        for m in imports_of(path)
        if m.split(".")[0] == "edgeship"
    ]
    assert not host, "\n".join(host)
