"""The README as a newcomer follows it: its set-up commands, then its examples, in order.

The README opens with exactly two set-up commands, each a fenced ``sh`` block of one line:
the first installs the ``zoo`` extra, builds the demo zoo and profiles it; the second is
the one CI runs (``.ci/run`` holds it verbatim). Its other ``sh`` blocks are examples:

- those in :data:`RUN` sections run, in order, in one scratch directory (the zoo and
  ``docs/`` linked in), with a board's name replaced by ``local``; each runs in a fresh
  interpreter that sees only what the first command installs (every package outside the
  ``zoo`` extra's dependency closure hidden), unless its comment names the extra it needs
  (``edgeship[ab]``): what a newcomer's venv can do, without a second install;
- the others need a board (``pi``, ``jetson``, the group ``lab``), stand for the user's
  own files (``model.onnx``) or run in another test or not at all for CI's time
  (:data:`RUN_ELSEWHERE`): each is parsed by edgeship's own parser, so every command and
  option it uses exists and takes the values given.

The ``python`` block's calls of ``edgeship.NAME(...)`` bind to those functions' signatures,
and the ``toml`` block is a targets file edgeship loads.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import inspect
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from edgeship.cli.main import build_parser
from edgeship.core.errors import UsageError
from tests.hidden import REPO_ROOT, run_cli

README = REPO_ROOT / "README.md"
RUN = ("Compress, convert, partition, compare",)
"""The sections whose examples run here, on ``local``."""
BOARDS = ("pi", "jetson", "lab")
"""The README's example boards and group: no such machines here."""
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
EXTRA = re.compile(r"edgeship\[([\w,-]+)\]")
GATED = "exit status = the gates"
"""An example's comment saying it exits 1 when a gate fails (a speed-up is the machine's)."""


@dataclass(frozen=True)
class Block:
    """A fenced block: its language, its text and the ``##`` section it is in."""

    lang: str
    text: str
    section: str


@dataclass(frozen=True)
class Example:
    """One command of an ``sh`` block: its words (``edgeship`` dropped) and its comment."""

    argv: tuple[str, ...]
    note: str
    section: str

    @property
    def id(self) -> str:
        """The command and what it is about: ``compress int8-static``, ``ls pi``."""
        argv = list(self.argv)
        for option in ("--method", "--recipe"):
            if option in argv:
                return f"{argv[0]} {argv[argv.index(option) + 1]}"
        return " ".join(argv[:2])


def blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    found = []
    for match in FENCE.finditer(text):
        headings = re.findall(r"^## (.+)$", text[: match.start()], re.M)
        found.append(Block(match[1], match[2], headings[-1] if headings else ""))
    return found


def examples(block: Block) -> list[Example]:
    """Each command of ``block``, a line ending in ``\\`` joined to the next."""
    found = []
    for line in block.text.replace("\\\n", " ").splitlines():
        command, _, note = line.partition(" #")
        words = shlex.split(command)
        if words:
            assert words[0] == "edgeship", f"README example {line!r} is not an edgeship command"
            found.append(Example(tuple(words[1:]), note.strip(), block.section))
    return found


def readme_examples() -> list[Example]:
    return [e for b in blocks()[2:] if b.lang == "sh" for e in examples(b)]


RUN_ELSEWHERE = {
    "--recipe": "tests/sdk/compress/test_recipe.py runs docs/variants.toml on the zoo's cnn",
    "sweep": "it makes the recipe's five variants again and A/Bs each: minutes of CI",
}
"""Examples of the run sections that are parsed only, and why (CI's time)."""


def _runs_here(example: Example) -> bool:
    return example.section in RUN and not set(RUN_ELSEWHERE) & set(example.argv)


RUNS = [e for e in readme_examples() if _runs_here(e)]
PARSED = [e for e in readme_examples() if not _runs_here(e)]


# --------------------------------------------------------------------------- set-up


def test_the_readme_opens_with_its_two_setup_commands() -> None:
    first, second = blocks()[:2]
    assert (first.lang, first.section, second.lang, second.section) == ("sh", "", "sh", "")
    assert len(first.text.splitlines()) == len(second.text.splitlines()) == 1
    steps = first.text.strip().split(" && ")
    assert steps[0] == "python3 -m venv .venv"
    install = shlex.split(steps[1])
    assert install[:2] == [".venv/bin/pip", "install"] and install[-2:] == ["-e", ".[zoo]"]
    # torch pinned as the torch extra pins it (the CPU build; CI installs the same)
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert install[2] in pyproject["project"]["optional-dependencies"]["torch"]
    assert steps[2:] == [".venv/bin/python tools/zoo/build.py", _PROFILE]
    assert second.text.strip() in (REPO_ROOT / ".ci" / "run").read_text()


_PROFILE = (
    ".venv/bin/edgeship profile .zoo/mlp.onnx .zoo/cnn.onnx .zoo/mlp.tflite .zoo/cnn.tflite "
    "--threads 1"
)


def test_every_example_is_run_or_needs_a_board() -> None:
    """An example outside the run sections is there because it needs a board or the
    user's own files: a new section of local examples has to be added to RUN."""
    assert RUNS, f"no README section named {RUN}"
    for example in PARSED:
        boards = [w for w in example.argv if w in BOARDS]
        elsewhere = set(RUN_ELSEWHERE) & set(example.argv)
        assert boards or elsewhere or "model.onnx" in example.argv, f"{example.argv} could run"


# --------------------------------------------------------------------------- parsed


@pytest.mark.parametrize("example", PARSED, ids=[e.id for e in PARSED])
def test_an_example_parses(example: Example) -> None:
    """Every command and option exists, every value is one its option takes."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            build_parser().parse_args(list(example.argv))
    except UsageError as exc:
        pytest.fail(f"edgeship {' '.join(example.argv)}: {exc}")


def test_the_python_examples_bind_to_the_api() -> None:
    import edgeship

    (block,) = [b for b in blocks() if b.lang == "python"]
    tree = ast.parse(block.text)
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "edgeship"
    ]
    assert len(calls) >= 5
    for call in calls:
        name = call.func.attr  # type: ignore[attr-defined]
        function = getattr(edgeship, name)
        args = [None] * len(call.args)
        kwargs = {k.arg: None for k in call.keywords if k.arg is not None}
        try:
            inspect.signature(function).bind(*args, **kwargs)
        except TypeError as exc:
            pytest.fail(f"README: edgeship.{name}(...) does not bind: {exc}")


def test_the_targets_file_example_loads(tmp_path: Path) -> None:
    from edgeship.targets.devices import load_inventory

    (block,) = [b for b in blocks() if b.lang == "toml"]
    path = tmp_path / "edgeship.toml"
    path.write_text(block.text)
    inventory = load_inventory(path)
    assert inventory.expand("lab") == list(inventory.devices)


# --------------------------------------------------------------------------- run


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the examples run, one after another: the zoo (built as the first command
    builds it) and ``docs/`` linked in."""
    from tools.zoo.build import build_zoo

    zoo = build_zoo().root
    assert zoo is not None
    path = tmp_path_factory.mktemp("readme")
    (path / ".zoo").symlink_to(zoo)
    (path / "docs").symlink_to(REPO_ROOT / "docs")
    return path


@pytest.mark.e2e  # minutes of commands, run by .ci/run's second tier
@pytest.mark.slow
def test_the_first_command_profiles_the_zoo(scratch: Path) -> None:
    """Its last step, as written: four models profiled on ``local``."""
    argv = shlex.split(_PROFILE)[1:]
    done = run_cli(_outside("zoo"), *argv, cwd=scratch)
    assert done.returncode == 0, done.stderr
    rows = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert {"mlp.onnx", "cnn.onnx", "mlp.tflite", "cnn.tflite"} <= set(rows), done.stdout


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("example", RUNS, ids=[e.id for e in RUNS])
def test_an_example_runs_after_the_first_command(example: Example, scratch: Path) -> None:
    argv = ["local" if w in BOARDS else w for w in example.argv]
    extras = ["zoo", *(x for m in EXTRA.findall(example.note) for x in m.split(","))]
    done = run_cli(_outside(*extras), *argv, cwd=scratch, timeout=600)
    failed = f"edgeship {' '.join(argv)}:\n{done.stderr[-3000:]}"
    if GATED in example.note and done.returncode == 1:  # a gate not met on this machine
        assert "error:" not in done.stderr and "FAIL" in done.stdout, failed
    else:
        assert done.returncode == 0, failed


# --------------------------------------------------------------------------- extras


def _outside(*extras: str) -> list[str]:
    """The installed top-level packages that edgeship's ``extras`` do not bring in: what
    a venv made with only those extras would lack."""
    closure = _closure(extras)
    hidden = []
    for module, dists in importlib.metadata.packages_distributions().items():
        if module.isidentifier() and not {_norm(d) for d in dists} & closure:
            hidden.append(module)
    return sorted(hidden)


def _closure(extras: tuple[str, ...]) -> set[str]:
    """The distributions ``pip install -e '.[EXTRAS]'`` installs (normalised names), from
    this tree's pyproject.toml and the installed packages' own requirements."""
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    seen = {"edgeship", "pip"}  # pip: in every venv
    todo = [Requirement(r) for r in project["dependencies"]]
    wanted, expanded = list(extras), set()
    while wanted:
        extra = wanted.pop()
        if extra in expanded:
            continue
        expanded.add(extra)
        for spec in project["optional-dependencies"][extra]:
            req = Requirement(spec)
            if _norm(req.name) == "edgeship":
                wanted.extend(req.extras)
            else:
                todo.append(req)
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for spec in requires:
            sub = Requirement(spec)
            if sub.marker is None or any(
                sub.marker.evaluate({"extra": x}) for x in ("", *req.extras)
            ):
                todo.append(Requirement(str(sub).split(";")[0]))
    return seen


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_zoo_closure_is_what_a_zoo_venv_holds() -> None:
    """The sum is right: the zoo's own packages are in, the others' out."""
    closure = _closure(("zoo",))
    assert {"torch", "onnx", "scikit-learn", "litert-torch", "jax", "numpy"} <= closure
    assert not {"pytest", "ruff", "mypy", "ray", "tensorflow-cpu"} & closure
    hidden = _outside("zoo")
    assert "pytest" in hidden and "torch" not in hidden and "edgeship" not in hidden
