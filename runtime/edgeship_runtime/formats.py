"""Model formats: the one table every part of edgeship asks about a model file.

A format has a name, the suffixes its files carry (the first is the canonical one), an
identifier in the file's bytes where it has one, and, for a model that spans several
files, a function naming the companion files its main file refers to. Adding a format is
one :data:`FORMATS` entry, or a :func:`register_format` call, plus a backend that runs it
in the backend catalog (:mod:`.backends.catalog`, which also says which backend runs a
format by default); host and device code only call the functions below.

    format   suffixes          identifier        companions
    onnx     .onnx .ort        (none)            external data files
    tflite   .tflite .lite     b"TFL3" at 4      (none)

Companion names are POSIX paths relative to the main file's directory, as the model
itself stores them (ONNX resolves external data that way). They are checked before any
staging reads them: relative, no ``..``, no control characters, an existing regular file
that does not lie (or point by a symlink) outside that directory.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from .errors import ModelError, UsageError
from .onnx_external import external_data_files

_HEAD_BYTES = 16  # read from the start of a file: enough for every identifier below


@dataclass(frozen=True)
class Magic:
    """Bytes a format's files carry at ``offset``: detection by content, not name."""

    offset: int
    data: bytes

    def matches(self, head: bytes) -> bool:
        return head[self.offset : self.offset + len(self.data)] == self.data


@dataclass(frozen=True)
class ModelFormat:
    """One row of the table; see the module docstring."""

    name: str
    title: str  # how messages name it: "ONNX", "TFLite"
    suffixes: Tuple[str, ...]
    magic: Optional[Magic] = None
    companions: Optional[Callable[[str], List[str]]] = None

    @property
    def suffix(self) -> str:
        """The canonical suffix, given to a file of this format that has none of its own."""
        return self.suffixes[0]


FORMATS: Tuple[ModelFormat, ...] = (
    ModelFormat("onnx", "ONNX", (".onnx", ".ort"), companions=external_data_files),
    ModelFormat("tflite", "TFLite", (".tflite", ".lite"), magic=Magic(4, b"TFL3")),
)


def _index(formats: Tuple[ModelFormat, ...]) -> Tuple[Dict[str, ModelFormat], Dict[str, str]]:
    by_name: Dict[str, ModelFormat] = {}
    by_suffix: Dict[str, str] = {}
    for fmt in formats:
        if fmt.name in by_name:
            raise ValueError(f"model format {fmt.name!r} is listed twice")
        by_name[fmt.name] = fmt
        for suffix in fmt.suffixes:
            if suffix != suffix.lower() or not suffix.startswith("."):
                raise ValueError(f"{fmt.name}: suffix {suffix!r} must be lower case with a dot")
            if suffix in by_suffix:
                raise ValueError(f"suffix {suffix} belongs to {by_suffix[suffix]} and {fmt.name}")
            by_suffix[suffix] = fmt.name
    return by_name, by_suffix


_BY_NAME, _BY_SUFFIX = _index(FORMATS)


def register_format(fmt: ModelFormat) -> None:
    """Add a format to the table; its name and suffixes must be new."""
    global _BY_NAME, _BY_SUFFIX
    _BY_NAME, _BY_SUFFIX = _index((*_BY_NAME.values(), fmt))


def format_names() -> List[str]:
    return list(_BY_NAME)


def get_format(name: str) -> ModelFormat:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(format_names())
        raise UsageError(f"unknown model format {name!r} (known: {known})") from None


def known_suffixes() -> List[str]:
    return sorted(_BY_SUFFIX)


def format_for_suffix(suffix: str) -> Optional[str]:
    """The format whose files end in ``suffix`` (``".onnx"``, any case), or None."""
    return _BY_SUFFIX.get(suffix.lower())


def detect_format(path: str) -> str:
    """The format by content where the file carries an identifier, else by suffix."""
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such model file", path=path)
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if not head:
        raise ModelError(f"{path}: the model file is empty", path=path)
    for fmt in _BY_NAME.values():
        if fmt.magic is not None and fmt.magic.matches(head):
            return fmt.name
    name = format_for_suffix(os.path.splitext(path)[1])
    if name is None:
        known = ", ".join(known_suffixes())
        raise ModelError(f"{path}: unknown model format (known suffixes: {known})", path=path)
    magic = _BY_NAME[name].magic
    if magic is not None:
        raise ModelError(
            f"{path}: not a {_BY_NAME[name].title} model (no {magic.data.decode()} identifier)",
            path=path,
        )
    return name


def staged_suffix(path: str, fmt: Optional[str] = None) -> str:
    """The suffix a copy of ``path`` keeps elsewhere: its own when it is one of its
    format's (``.ort`` stays ``.ort``: ONNX Runtime reads the two differently), else the
    format's canonical one (a TFLite model named ``model.bin`` travels as ``.tflite``)."""
    model = get_format(fmt or detect_format(path))
    own = os.path.splitext(path)[1].lower()
    return own if own in model.suffixes else model.suffix


def companion_files(path: str, fmt: Optional[str] = None) -> List[str]:
    """The files beside ``path`` that its model needs, as relative POSIX names, sorted;
    ``[]`` for a single-file model. A missing, escaping or non-regular companion is a
    :class:`ModelError` naming it."""
    model = get_format(fmt or detect_format(path))
    if model.companions is None:
        return []
    names = {check_companion_name(path, name) for name in model.companions(path)}
    for name in names:
        _check_companion_file(path, name)
    return sorted(names)


def check_companion_name(path: str, name: str) -> str:
    """``name`` as a safe relative POSIX path (``./`` dropped), else a ModelError."""
    bad = (
        not name
        or name.startswith("/")
        or "\\" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or ".." in name.split("/")
    )
    normal = posixpath.normpath(name) if not bad else ""
    if bad or normal in (".", "") or normal.startswith("/"):
        raise ModelError(
            f"{path}: refusing companion file name {name!r}: it must be a relative path "
            "below the model's directory (no '..', no absolute path)",
            path=path,
        )
    return normal


def _check_companion_file(path: str, name: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    companion = os.path.join(directory, *name.split("/"))
    if not os.path.lexists(companion):
        raise ModelError(
            f"{path}: companion file {name} is missing (the model refers to it; it must lie "
            f"in {directory})",
            path=path,
        )
    real, real_dir = os.path.realpath(companion), os.path.realpath(directory)
    if not real.startswith(real_dir + os.sep):
        raise ModelError(
            f"{path}: refusing companion file {name}: it resolves to {real}, outside the "
            "model's directory",
            path=path,
        )
    if real == os.path.realpath(path) or not os.path.isfile(real):
        raise ModelError(f"{path}: companion file {name} is not a data file", path=path)
