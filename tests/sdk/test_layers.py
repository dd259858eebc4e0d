"""The house drawn from the imports: one layer per package, and no import runs back up.

Layers, bottom up (a module may import its own package and the layers below it):

0. runtime    ``edgeship_runtime``: the device side, imports nothing of the host
1. core       errors, config, progress, extras, quiet, hashing, host names, the stdio client,
              the reports' shared views
2. models     the model as a value: formats, graph helpers, preparation, fidelity, verify
3. ssh        connections, host keys, ssh_config
4. deploy     a device's deploy root (content-addressed blobs, versions, activation)
5. targets    the one place the host speaks the runtime's protocol; board profiles,
              the devices file, setup, fleets, interleaved measurement
6. convert | optimize | partition | compress
              the methods on models: siblings, none imports another (each stands on
              models/ and targets/ alone)
7. ab         A/B comparisons
8. sweep      variants × boards
9. rollout    phased, health-checked deploys to groups
10. api       the Python API
11. the package's ``__init__``
12. cli       the command line
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "edgeship"
RUNTIME = ROOT / "runtime" / "edgeship_runtime"

SIBLINGS = ("convert", "optimize", "partition", "compress")
ORDER: list[tuple[str, ...]] = [
    ("edgeship_runtime",),
    ("core",),
    ("models",),
    ("ssh",),
    ("deploy",),
    ("targets",),
    SIBLINGS,
    ("ab",),
    ("sweep",),
    ("rollout",),
    ("api",),
    ("__init__",),
    ("cli",),
]
LAYERS = {name: level for level, names in enumerate(ORDER) for name in names}


def test_every_package_and_module_has_its_layer() -> None:
    found = {
        p.stem if p.is_file() else p.name
        for p in SDK.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert found == set(LAYERS) - {"edgeship_runtime"}


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


def test_sibling_methods_import_none_of_each_other() -> None:
    sideways = [
        f"{module_name(path)} imports {imported}"
        for name in SIBLINGS
        for path in sorted((SDK / name).rglob("*.py"))
        for imported in sorted(imports_of(path))
        if imported.split(".")[0] == "edgeship"
        and len(imported.split(".")) > 1
        and imported.split(".")[1] in SIBLINGS
        and imported.split(".")[1] != name
    ]
    assert not sideways, "\n".join(sideways)


def test_the_runtime_imports_nothing_of_the_host() -> None:
    host = [
        f"{module_name(path)} imports {m}"
        for path in RUNTIME.rglob("*.py")
        for m in imports_of(path)
        if m.split(".")[0] == "edgeship"
    ]
    assert not host, "\n".join(host)
