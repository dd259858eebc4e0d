"""The one training loop: fine-tuning after pruning and knowledge distillation.

The loss fits every output the teacher gives (one array: the first output; a list: one
per output, summed), each by its kind (:func:`outputs_of`): fitting the first alone let
the others drift (Silero's recurrent state outputs, pruned and fine-tuned on its speech
probability alone, fell to a cosine of 0.70). Class scores: KL divergence to the
teacher's outputs at temperature T, scaled by T², blended with cross-entropy on labels by
``alpha`` (see :class:`~edgeship.compress.config.TrainConfig`). Rows of probabilities (a
recogniser's per-step softmax): KL divergence row by row. Values each in [0, 1] (a
sigmoid map): binary cross-entropy to the teacher's values. Anything else (features):
the squared error to the teacher's outputs. A softmax over a whole flattened map or
sequence, as class scores get, would weigh its elements against each other instead of
against the teacher. For outputs other than class scores the metric is the cosine to the
teacher, as the guard judges them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgeship.compress._data import Dataset
from edgeship.compress.config import TrainConfig
from edgeship.compress.training.torch_graph import OnnxModule
from edgeship.core.errors import CompressionError
from edgeship.models.fidelity import cosine_similarity, is_class_scores
from edgeship.models.kinds import infer_kind

__all__ = [
    "LOSSES",
    "EpochDone",
    "EpochProgress",
    "FitLog",
    "Outputs",
    "distill_loss",
    "fit",
    "metric",
    "output_loss",
    "outputs_of",
    "predict_outputs",
    "predict_torch",
    "predict_with_pre_hooks",
]


@dataclass
class FitLog:
    """What training did: epochs run, why it stopped (``epochs``, ``target``, ``budget``,
    or ``non-finite``: the loss or a weight diverged, and the epoch's start was restored),
    the loss it minimised (one of :data:`LOSSES`), the metric per epoch (held-out rows when
    ``val_fraction`` > 0, else the training rows), the metric before the first epoch
    (``start``) and the epoch whose weights were kept: the one with the best metric (a
    later epoch that overshot does not get the last word), or 0 when no epoch beat the
    weights training started from, which are kept then (fine-tuning a pruned detector on
    32 images lowered its class scores' agreement where the pruning alone had kept it)."""

    epochs: int = 0
    kept_epoch: int = 0
    start: float | None = None
    seconds: float = 0.0
    stopped: str = "epochs"
    loss: str = ""
    metric: str = ""
    history: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "history": [round(h, 5) for h in self.history]}


@dataclass(frozen=True)
class EpochDone:
    """One finished epoch: its number (from 1) of ``epochs``, its mean training ``loss``
    and the ``metric`` (see :func:`metric`) after it, on held-out rows (``held_out``:
    ``val_fraction`` > 0) or else on the training rows."""

    epoch: int
    epochs: int
    loss: float
    metric: str
    value: float
    held_out: bool = True


EpochProgress = Callable[[EpochDone], None]


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor | None,
    labels: torch.Tensor | None,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """``alpha·T²·KL + (1−alpha)·CE``; KL alone without labels, CE alone without teacher."""
    if teacher is None and labels is None:
        raise CompressionError("training needs labels or teacher outputs")
    kd = None
    if teacher is not None:
        t = temperature
        kd = F.kl_div(
            F.log_softmax(student / t, dim=1),
            F.log_softmax(teacher / t, dim=1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)
    if labels is None:
        assert kd is not None
        return kd
    ce = F.cross_entropy(student, labels)
    return ce if kd is None else alpha * kd + (1.0 - alpha) * ce


@dataclass(frozen=True)
class Outputs:
    """What a model's first output is, for training and judging it: ``classes`` (shaped
    like class scores), ``distributions`` (probability rows of ``width`` along the last
    axis, e.g. a CTC recogniser's per-step softmax), ``probabilities`` (each value in
    [0, 1] on its own, e.g. a text detector's sigmoid map) or ``values`` (features)."""

    kind: str
    width: int


def outputs_of(
    module: nn.Module, data: Dataset, teacher: np.ndarray | None = None, index: int = 0
) -> Outputs:
    """:class:`Outputs` of ``module``'s output ``index``, its shape from one sample run in
    eval mode, its range from ``teacher`` (the outputs on all of ``data``) when given.
    Shaped like class scores, it is ``classes`` only where the guard would judge it as
    scores (:func:`~edgeship.models.kinds.infer_kind`, by its name too): an LSTM's state
    ``hn`` ``[1, 1, 128]`` has that shape, and its arg-max "agreement" chose which epoch
    of a pruned Silero was kept."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = _outputs(module, [torch.from_numpy(a) for a in data.take(1).feeds.values()])[index]
    module.train(was_training)
    width = int(out.shape[-1]) if out.dim() else 1
    seen = out.numpy() if teacher is None else teacher
    names = getattr(module, "output_names", [])
    name = names[index] if index < len(names) else ""
    if is_class_scores(tuple(out.shape)) and infer_kind(name, seen) == "scores":
        return Outputs("classes", width)
    in_unit_range = bool(seen.min() >= 0.0 and seen.max() <= 1.0)
    rows_sum_to_one = bool(((out.sum(-1) - 1.0).abs() < 1e-3).all())
    if out.dim() >= 3 and width >= 2 and in_unit_range and rows_sum_to_one:
        return Outputs("distributions", width)
    return Outputs("probabilities" if in_unit_range else "values", width)


# The loss each kind of output is trained with (:class:`FitLog` records it).
LOSSES = {
    "classes": "distillation",
    "distributions": "kl-per-row",
    "probabilities": "binary-cross-entropy",
    "values": "squared-error",
}


def output_loss(
    student: torch.Tensor,
    teacher: torch.Tensor | None,
    labels: torch.Tensor | None,
    outputs: Outputs,
    cfg: TrainConfig,
) -> torch.Tensor:
    """The loss for ``outputs`` of their kind: :func:`distill_loss` for class scores;
    per-row KL divergence for ``distributions``; binary cross-entropy to the teacher's
    values for ``probabilities`` (through a sigmoid its gradient is ``s − t``, where the
    squared error's vanishes once a map saturates: a detector's fine-tuned map fell to all
    zeros and stayed there); else the squared error over the teacher's variance
    (scale-free, so the learning rate means the same whatever the features' scale)."""
    if outputs.kind == "classes":
        return distill_loss(student, teacher, labels, cfg.temperature, cfg.alpha)
    if teacher is None:
        raise CompressionError(
            "training a model whose outputs are not class scores needs teacher outputs "
            "(labels give classes)"
        )
    if outputs.kind == "distributions":
        t = teacher.reshape(len(teacher), -1, outputs.width)
        s = student.reshape(len(student), -1, outputs.width).clamp_min(1e-12).log()
        return (t * (t.clamp_min(1e-12).log() - s)).sum(-1).mean()
    if outputs.kind == "probabilities":
        return F.binary_cross_entropy(student.clamp(1e-7, 1.0 - 1e-7), teacher)
    return F.mse_loss(student, teacher) / teacher.var().clamp_min(1e-12)


def predict_outputs(module: nn.Module, data: Dataset, batch: int = 256) -> list[np.ndarray]:
    """Every output of ``module`` on ``data``, each as one row per sample."""
    module.eval()
    outs: list[list[np.ndarray]] = []
    with torch.no_grad():
        for b in data.batches(batch):
            outs.append(
                [o.numpy() for o in _outputs(module, [torch.from_numpy(a) for a in b.values()])]
            )
    return [
        np.concatenate([o[i] for o in outs]).reshape(len(data), -1) for i in range(len(outs[0]))
    ]


def predict_torch(module: nn.Module, data: Dataset, batch: int = 256) -> np.ndarray:
    """The first output of ``module`` on ``data``, one row per sample."""
    return predict_outputs(module, data, batch)[0]


def predict_with_pre_hooks(
    module: nn.Module, data: Dataset, hooks: Mapping[nn.Module, Callable[[nn.Module, Any], None]]
) -> None:
    """Run ``module`` over ``data`` with each of ``hooks`` as a forward pre-hook of its
    submodule (it sees the submodule's inputs), removed afterwards whatever happens."""
    handles = [sub.register_forward_pre_hook(hook) for sub, hook in hooks.items()]
    try:
        predict_torch(module, data)
    finally:
        for handle in handles:
            handle.remove()


def metric(
    logits: np.ndarray,
    data: Dataset,
    teacher: np.ndarray | None,
    classes: bool = True,
    labelled: bool = True,
) -> tuple[str, float]:
    """For ``classes``: accuracy on labels when there are labels (and the output is the
    ``labelled`` one), else top-1 agreement with the teacher; for other outputs the cosine
    to the teacher (as the guard judges)."""
    if not classes:
        assert teacher is not None
        return "cosine", cosine_similarity(teacher, logits)
    if data.labels is not None and labelled:
        return "accuracy", float((logits.argmax(1) == data.labels).mean())
    assert teacher is not None
    return "agreement", float((logits.argmax(1) == teacher.argmax(1)).mean())


def fit(
    module: nn.Module,
    data: Dataset,
    teacher: np.ndarray | Sequence[np.ndarray] | None,
    cfg: TrainConfig,
    after_step: Callable[[], None] | None = None,
    on_epoch: EpochProgress | None = None,
) -> FitLog:
    """Train ``module`` in place (Adam); ``teacher`` holds logits aligned with ``data``:
    the first output's, or a list of every output's (floating ones are fitted, the loss
    their sum; the metric, of every fitted output, is the worst one's; labels are the
    first output's).

    Inputs given once per call (``data.fixed``, a recurrent state) go whole to every step,
    of one sample each. ``after_step`` runs after every optimiser step (e.g. to re-apply
    pruning masks);
    ``on_epoch`` after every epoch that finished. The weights of the epoch with the best
    metric are kept, or those it started from when no epoch beat them.
    """
    log = FitLog()
    if cfg.epochs == 0:
        return log
    if teacher is None and data.labels is None:
        raise CompressionError("training needs labels or teacher outputs")
    teachers = _fitted(teacher)
    kinds = [outputs_of(module, data, t, i) for i, t in _indexed(teachers)]
    log.loss = " + ".join(dict.fromkeys(LOSSES[k.kind] for k in kinds))
    order = np.random.default_rng(cfg.seed).permutation(len(data))
    n_val = round(len(data) * cfg.val_fraction)
    train_idx, val_idx = order[n_val:], order[:n_val]
    val = data.pick(val_idx) if n_val else data
    t_val = {
        i: t[val_idx if n_val else slice(None)] for i, t in _indexed(teachers) if t is not None
    }
    fixed = [k in data.fixed for k in data.feeds]  # given whole to every call (a state)
    xs = [
        torch.from_numpy(a if f else a[train_idx])
        for f, a in zip(fixed, data.feeds.values(), strict=True)
    ]
    ys = None if data.labels is None else torch.from_numpy(data.labels[train_idx].astype(np.int64))
    ts = {
        i: torch.from_numpy(t[train_idx].astype(np.float32))
        for i, t in _indexed(teachers)
        if t is not None
    }
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    best = _snapshot(module)  # the start, kept unless an epoch beats it
    _, before = _worst_metric(predict_outputs(module, val), val, t_val, teachers, kinds)
    log.start = before
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        module.train()
        saved = _snapshot(module)
        perm = torch.randperm(len(train_idx), generator=gen)
        summed = 0.0
        size = 1 if data.fixed else cfg.batch_size  # a state fixes the batch, as it does in
        for start in range(0, len(perm), size):  # Dataset.batches
            idx = perm[start : start + size]
            outs = _outputs(module, [x if f else x[idx] for f, x in zip(fixed, xs, strict=True)])
            loss = sum(
                output_loss(
                    outs[i].reshape(len(idx), -1),
                    ts[i][idx] if i in ts else None,
                    None if ys is None or i else ys[idx],
                    kind,
                    cfg,
                )
                for (i, _), kind in zip(_indexed(teachers), kinds, strict=True)
            )
            assert isinstance(loss, torch.Tensor)
            summed += loss.detach().item() * len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            if not _finite(module, loss):  # diverged: back to the epoch's start, and stop
                module.load_state_dict(saved)
                log.stopped = "non-finite"
                break
        if log.stopped == "non-finite":
            break
        log.metric, value = _worst_metric(predict_outputs(module, val), val, t_val, teachers, kinds)
        log.history.append(value)
        log.epochs = epoch + 1
        if value > max([before, *log.history[:-1]]):
            best, log.kept_epoch = _snapshot(module), epoch + 1
        log.seconds = time.perf_counter() - t0
        if on_epoch is not None:
            loss_mean = summed / max(len(perm), 1)
            done = EpochDone(epoch + 1, cfg.epochs, loss_mean, log.metric, value, n_val > 0)
            on_epoch(done)
        if cfg.target_accuracy is not None and value >= cfg.target_accuracy:
            log.stopped = "target"
            break
        if cfg.max_seconds is not None and log.seconds >= cfg.max_seconds:
            log.stopped = "budget"
            break
    if log.kept_epoch != log.epochs:
        module.load_state_dict(best)
    module.eval()
    return log


def _fitted(teacher: np.ndarray | Sequence[np.ndarray] | None) -> list[np.ndarray | None]:
    """The teacher's outputs to fit, by output index: every floating one (an integer
    output, an index or a count, has no gradient to follow); ``[None]`` without a teacher
    (labels alone train the first output)."""
    if teacher is None:
        return [None]
    given = [teacher] if isinstance(teacher, np.ndarray) else list(teacher)
    return [t if np.issubdtype(t.dtype, np.floating) else None for t in given]


def _indexed(teachers: list[np.ndarray | None]) -> list[tuple[int, np.ndarray | None]]:
    """The outputs fitted: the first always (by labels when it has no teacher), the others
    where there is a teacher."""
    return [(i, t) for i, t in enumerate(teachers) if i == 0 or t is not None]


def _worst_metric(
    predicted: list[np.ndarray],
    data: Dataset,
    t_val: Mapping[int, np.ndarray],
    teachers: list[np.ndarray | None],
    kinds: list[Outputs],
) -> tuple[str, float]:
    """The metric of every fitted output; the worst one's value, named with its output
    where there are several."""
    figures = [
        metric(predicted[i], data, t_val.get(i), kind.kind == "classes", labelled=i == 0)
        for (i, _), kind in zip(_indexed(teachers), kinds, strict=True)
    ]
    if len(figures) == 1:
        return figures[0]
    names = ", ".join(dict.fromkeys(name for name, _ in figures))
    return f"worst of {len(figures)} outputs' {names}", min(value for _, value in figures)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _finite(module: nn.Module, loss: torch.Tensor) -> bool:
    return bool(torch.isfinite(loss)) and all(
        bool(torch.isfinite(p).all()) for p in module.parameters()
    )


def _outputs(module: nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every output of ``module``: a graph's torch view (:class:`.torch_graph.OnnxModule`,
    whose ``forward`` gives the first) by its ``run_all``, a torch model by what its
    ``forward`` returns (a tuple or list of several, or one tensor)."""
    if isinstance(module, OnnxModule):
        return list(module.run_all(inputs))
    out = module(*inputs)
    return list(out) if isinstance(out, list | tuple) else [out]
