"""A host model as the files a device needs: its main file and companions, hashed.

A single-file model travels as one blob named by its sha256. A model with companion files
(an ONNX model with external data) travels as one directory named by a digest over all
its files: the main file as ``model<suffix>`` and every companion under the name the model
refers to it by, since the backend resolves those relative to the main file. The digest is
the sha256 of the listing ``sha256sum`` prints for the directory, sorted by name
(``"<sha256>  <name>\\n"`` per file), so any change to any file gives a new directory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edgeship.core.errors import ModelError
from edgeship.core.hashing import file_sha256
from edgeship_runtime.formats import companion_files, detect_format, staged_suffix

__all__ = ["MAIN_STEM", "ModelFiles", "StagedFile", "listing_digest", "model_files"]

MAIN_STEM = "model"


@dataclass(frozen=True)
class StagedFile:
    """One file of a model: its name inside the model's blob directory, and its bytes."""

    name: str
    local: Path
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ModelFiles:
    """A model file, its format and the companion files it refers to, each hashed."""

    main: Path
    format: str
    suffix: str  # what the staged main file ends in: ".onnx", ".tflite", ...
    sha256: str  # the main file's
    size_bytes: int  # the main file's
    companions: tuple[StagedFile, ...] = ()

    @property
    def multi_file(self) -> bool:
        return bool(self.companions)

    @property
    def main_name(self) -> str:
        """The main file's name inside a multi-file model's directory."""
        return MAIN_STEM + self.suffix

    def files(self) -> tuple[StagedFile, ...]:
        """Every file to send, the main file first (as :attr:`main_name`)."""
        main = StagedFile(self.main_name, self.main, self.sha256, self.size_bytes)
        return (main, *self.companions)

    def listing(self) -> dict[str, str]:
        """{name in the blob directory: sha256}, sorted by name."""
        return {f.name: f.sha256 for f in sorted(self.files(), key=lambda f: f.name)}

    @property
    def digest(self) -> str:
        """The model's identity on the device: the main file's sha256 when it is alone,
        else the digest over all files (see the module docstring)."""
        if not self.companions:
            return self.sha256
        return listing_digest(self.listing())

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files())


def listing_digest(listing: dict[str, str]) -> str:
    """sha256 over ``sha256sum``-style lines, one per (name, sha256), sorted by name."""
    lines = "".join(f"{sha}  {name}\n" for name, sha in sorted(listing.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def model_files(path: Path, sha256: str | None = None) -> ModelFiles:
    """Describe and hash ``path`` and its companions (``sha256``: the main file's digest,
    when the caller has it). A missing model or companion is a :class:`ModelError`."""
    fmt = detect_format(str(path))
    names = companion_files(str(path), fmt)
    suffix = staged_suffix(str(path), fmt)
    directory = path.parent
    companions = []
    for name in names:
        if name == MAIN_STEM + suffix:
            raise ModelError(
                f"{path}: a companion file is named {name}, the name the model itself takes "
                "on the device; rename that file (and the reference to it in the model)",
                path=str(path),
            )
        local = directory.joinpath(*name.split("/"))
        companions.append(StagedFile(name, local, file_sha256(local), local.stat().st_size))
    return ModelFiles(
        main=path,
        format=fmt,
        suffix=suffix,
        sha256=sha256 or file_sha256(path),
        size_bytes=path.stat().st_size,
        companions=tuple(companions),
    )
