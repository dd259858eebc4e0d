"""Dataclasses to and from JSON-ready dicts, driven by their type hints.

One generic pair instead of a hand-written ``to_dict``/``from_dict`` per report class.
Unknown keys are ignored on the way in, so a newer minor writer stays readable.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, Dict, Optional, Type, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import ProtocolError

T = TypeVar("T")


def to_jsonable(obj: Any) -> Any:
    """A dataclass tree as plain dicts/lists/scalars (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def from_jsonable(cls: Type[T], data: Any) -> T:
    """Rebuild a dataclass ``cls`` from :func:`to_jsonable` output."""
    return _build(cls, data)


def _build(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = get_origin(tp)
    if origin is Union:
        options = [a for a in get_args(tp) if a is not type(None)]
        return _build(options[0], data) if len(options) == 1 else data
    if origin in (list, tuple):
        args = get_args(tp)
        item = args[0] if args else Any
        values = [_build(item, v) for v in data]
        return tuple(values) if origin is tuple else values
    if origin is dict:
        args = get_args(tp)
        value_tp = args[1] if len(args) == 2 else Any
        return {k: _build(value_tp, v) for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        known = {f.name for f in dataclasses.fields(tp)}
        kwargs = {k: _build(hints[k], v) for k, v in data.items() if k in known}
        return tp(**kwargs)
    if tp is float and isinstance(data, int):
        return float(data)
    return data


_HINTS: Dict[type, Dict[str, Any]] = {}


def _hints(cls: type) -> Dict[str, Any]:
    if cls not in _HINTS:
        module = sys.modules[cls.__module__]
        _HINTS[cls] = get_type_hints(cls, vars(module))
    return _HINTS[cls]


def check_schema(data: Dict[str, Any], expected: str) -> None:
    """Accept ``expected`` and its minor revisions (``edgeship.report/1.2``), nothing else."""
    schema = str(data.get("schema", ""))
    if schema != expected and not schema.startswith(expected + "."):
        raise ProtocolError(f"unsupported schema {schema or '(none)'!r}, expected {expected!r}")


R = TypeVar("R", bound="JsonRecord")


class JsonRecord:
    """Mixin for dataclasses that round-trip to versioned JSON.

    The dataclass's ``schema`` field default names its schema: :meth:`from_dict` accepts
    every revision of its major version (``edgeship.sweep/1.1`` reads ``/1`` and
    ``/1.2`` too), and ignores fields it does not know.
    """

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = to_jsonable(self)
        return data

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls: Type[R], data: Dict[str, Any]) -> R:
        fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
        name, _, version = str(fields["schema"].default).rpartition("/")
        check_schema(data, f"{name}/{version.split('.')[0]}")
        return from_jsonable(cls, data)

    @classmethod
    def from_json(cls: Type[R], text: str) -> R:
        return cls.from_dict(json.loads(text))
