"""ONNX ops that torch has no single call for, written in torch with ONNX's semantics.

Both torch views of an ONNX graph use them: compress's training view
(:mod:`edgeship.compress.training.torch_graph`) and convert's onnx2torch route to TFLite.
``Slice`` takes negative steps (torch slices take none); ``Pad`` reflects or repeats the
edge on any axes (torch's only on the last ones, and only for some ranks). The LSTM is
unrolled over time in plain matmuls, sigmoids and tanhs, so its weights train as they are
stored (ONNX's gate order i, o, f, c: no reordering into ``torch.nn.LSTM``'s i, f, g, o)
and torch.export lowers it without a recurrent kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PAD_MODES", "lstm", "lstm_refusal", "pad", "slice_static"]

PAD_MODES = ("constant", "reflect", "edge")

_ACTIVATIONS = ["sigmoid", "tanh", "tanh"]  # ONNX's default f, g, h


def lstm_refusal(attrs: Mapping[str, Any], inputs: Sequence[str]) -> str | None:
    """Why an ONNX ``LSTM`` node (its attributes, its input names) is outside what
    :func:`lstm` computes, or None: per-sample ``sequence_lens``, peepholes, a cell clip,
    coupled input/forget gates, batch-first layout and activations other than the default
    are refused."""
    given = [i < len(inputs) and bool(inputs[i]) for i in range(8)]
    acts = [
        (a.decode() if isinstance(a, bytes) else a).lower() for a in attrs.get("activations", [])
    ]
    reasons = [
        ("sequence_lens input (per-sample lengths)", given[4]),
        ("peephole weights (input P)", given[7]),
        ("clip attribute", "clip" in attrs),
        ("input_forget=1", bool(attrs.get("input_forget", 0))),
        ("layout=1 (batch first; ONNX Runtime runs none)", bool(attrs.get("layout", 0))),
        (f"activations {acts}", bool(acts) and acts != _ACTIVATIONS * max(1, len(acts) // 3)),
    ]
    found = [reason for reason, present in reasons if present]
    return ", ".join(found) + " not supported" if found else None


def lstm(
    x: Any,
    w: Any,
    r: Any,
    b: Any = None,
    initial_h: Any = None,
    initial_c: Any = None,
    direction: str = "forward",
) -> tuple[Any, Any, Any]:
    """ONNX ``LSTM`` (default activations, no peepholes): ``(Y, Y_h, Y_c)``.

    ``x``: [seq, batch, input]; ``w``: [dirs, 4·hidden, input], ``r``: [dirs, 4·hidden,
    hidden], ``b``: [dirs, 8·hidden] (input then recurrent bias), gates in ONNX's order
    i, o, f, c; ``initial_h``/``initial_c``: [dirs, batch, hidden], zeros when None. ``Y``
    is [seq, dirs, batch, hidden], ``Y_h``/``Y_c`` [dirs, batch, hidden].
    """
    import torch

    dirs, hidden = w.shape[0], r.shape[-1]
    zeros = x.new_zeros((dirs, x.shape[1], hidden))
    h0 = zeros if initial_h is None else initial_h
    c0 = zeros if initial_c is None else initial_c
    ys, hs, cs = [], [], []
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        bias = 0 if b is None else b[d, : 4 * hidden] + b[d, 4 * hidden :]
        y, h, c = _lstm_direction(x, w[d], r[d], bias, h0[d], c0[d], reverse)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return torch.stack(ys, 1), torch.stack(hs), torch.stack(cs)


def _lstm_direction(
    x: Any, w: Any, r: Any, bias: Any, h: Any, c: Any, reverse: bool
) -> tuple[Any, Any, Any]:
    """One direction over [seq, batch, input]: (Y [seq, batch, hidden], last h, last c)."""
    import torch

    projected = x @ w.t() + bias  # every step's input projection at once
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    out: list[Any] = [None] * x.shape[0]
    for t in steps:
        i, o, f, g = (projected[t] + h @ r.t()).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out[t] = h
    return torch.stack(out), h, c


def slice_static(
    x: Any,
    starts: tuple[int, ...],
    ends: tuple[int, ...],
    axes: tuple[int, ...] | None,
    steps: tuple[int, ...] | None,
) -> Any:
    """ONNX Slice (a negative step: flipped, then a positive one); axes and steps default
    to every axis and 1."""
    axes = axes if axes is not None else tuple(range(len(starts)))
    steps = steps if steps is not None else (1,) * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis %= x.dim()
        size = int(x.shape[axis])
        first = start + size if start < 0 else start
        last = end + size if end < 0 else end
        if step < 0:
            first, last = min(max(first, 0), size - 1), min(max(last, -1), size - 1)
            x, first, last, step = x.flip(axis), size - 1 - first, size - 1 - last, -step
        first, last = min(max(first, 0), size), min(max(last, 0), size)
        index = [slice(None)] * x.dim()
        index[axis] = slice(first, max(first, last), step)
        x = x[tuple(index)]
    return x


def pad(
    x: Any,
    pads: Sequence[int],
    mode: str = "constant",
    value: float = 0.0,
    axes: Sequence[int] | None = None,
) -> Any:
    """ONNX Pad in a mode of :data:`PAD_MODES`: ``pads`` are the begins then the ends of
    ``axes`` (every axis when None); a negative pad crops."""
    import torch
    from torch.nn import functional as F

    axes = [i % x.dim() for i in (range(x.dim()) if axes is None else axes)]
    begins, ends = pads[: len(axes)], pads[len(axes) :]
    if mode == "constant":
        flat = [0] * (2 * x.dim())  # F.pad: the last axis first, (begin, end) each
        for axis, begin, end in zip(axes, begins, ends, strict=True):
            flat[2 * (x.dim() - 1 - axis) : 2 * (x.dim() - axis)] = [begin, end]
        return F.pad(x, flat, value=value)
    for axis, begin, end in zip(axes, begins, ends, strict=True):
        size = x.shape[axis]
        idx = torch.arange(-begin, size + end)
        if mode == "edge":
            idx = idx.clamp(0, size - 1)
        else:  # reflect: about the first and last element, not repeating them
            idx = idx.abs()
            idx = torch.where(idx >= size, 2 * (size - 1) - idx, idx)
        x = x.index_select(axis, idx)
    return x
