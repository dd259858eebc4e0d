"""The INT8 fallback (:mod:`edgeship.compress.quantization.fallback`), the 7-bit default and batch-1
judging, on a model built here where one node's INT8 collapses the output: a MatMul whose
input carries a channel of 1e4 beside channels of ~1 (one activation range for the whole
tensor leaves the small channels at zero), which the model's output depends on."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.cli.main import build_parser
from edgeship.compress import CompressOptions, FidelityCollapse, QuantizeConfig, compress
from edgeship.compress import _evaluate as evaluate
from edgeship.compress._data import Dataset
from edgeship.compress._search import Search
from edgeship.compress.guard import GuardPolicy
from edgeship.compress.quantization import fallback
from edgeship.models import onnx_graph
from tests.models import save_graph, scaled_weight

FEATURES, HIDDEN, OUT, SAMPLES = 8, 64, 8, 60
SPIKE = 1e4


def outlier_model(path: Path, heavy_row: bool = False) -> Path:
    """``tanh(x·W1)·W2·W3`` where ``W1`` ignores channel 0 of ``x``; the data puts
    :data:`SPIKE` there, so INT8 of ``first`` (its input's one range) loses the rest.
    ``heavy_row``: ``W1``'s row for channel 0 is :data:`SPIKE` instead (data that keeps
    that channel at 0 then loses nothing to the activations' range, all to the weights')."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.to_array(scaled_weight(rng, "W1", FEATURES, HIDDEN)).copy()
    w1[0] = SPIKE if heavy_row else 0.0
    consts = [
        numpy_helper.from_array(w1, "W1"),
        scaled_weight(rng, "W2", HIDDEN, HIDDEN),
        scaled_weight(rng, "W3", HIDDEN, OUT),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="first"),
        helper.make_node("Tanh", ["h"], ["t"], name="tanh"),
        helper.make_node("MatMul", ["t", "W2"], ["g"], name="middle"),
        helper.make_node("MatMul", ["g", "W3"], ["y"], name="last"),
    ]
    graph = helper.make_graph(
        nodes,
        "outlier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, FEATURES])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, OUT])],
        consts,
    )
    return save_graph(graph, path)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return outlier_model(tmp_path_factory.mktemp("fallback") / "outlier.onnx")


@pytest.fixture(scope="module")
def data() -> Dataset:
    x = np.random.default_rng(1).standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    x[:, 0] = SPIKE
    return Dataset({"x": x})


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_the_node_that_collapses_int8_is_kept_in_float(
    model: Path, data: Dataset, tmp_path: Path, method: str
) -> None:
    out = tmp_path / f"outlier.{method}.onnx"
    rec = compress(model, QuantizeConfig(method), data, out).report
    done = rec.details["fallback"]
    assert "cosine" in done["collapsed"] and re.search(r"cosine (0\.99|1\.00)", done["held"])
    assert done["kept_float"] == ["first"]  # the one node, not the harmless ones
    assert {"middle", "last"} <= set(rec.details["quantized_nodes"])
    assert "first" in rec.details["excluded_nodes"]
    assert rec.fidelity is not None and rec.fidelity.cosine is not None
    assert rec.fidelity.cosine > 0.99  # judged on held-out rows the search never saw
    assert "8 of 60 samples" not in rec.evaluation and "held out" in rec.evaluation
    assert any(n.startswith("fallback: the fully quantized model collapsed") for n in rec.notes)
    # its activations stay float, its weights INT8 (weight-only), and the note says so
    assert done["kept_int8_weights"] == ["first"] and rec.details["weight_only_nodes"] == ["first"]
    assert any("1 of them with INT8 weights (weight-only" in n for n in rec.notes)
    assert rec.model.size_bytes < 0.5 * rec.base.size_bytes
    graph = onnx_graph.load(out).graph
    first = next(n for n in graph.node if n.name == "first")
    decoder = next(n for n in graph.node if first.input[1] in n.output)
    assert decoder.op_type == "Mul" and "W1_int8" in {t.name for t in graph.initializer}


def test_a_node_whose_int8_weights_collapse_it_is_kept_wholly_in_float(tmp_path: Path) -> None:
    """``first``'s weights hold one value 10⁴× the rest in every output channel (on an
    input channel that is always 0): INT8 weights round the rest to 0, so only keeping
    them float holds the model; the note says the weight-only tier was tried first."""
    base = outlier_model(tmp_path / "heavy.onnx", heavy_row=True)
    x = np.random.default_rng(1).standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    x[:, 0] = 0.0
    rec = compress(base, QuantizeConfig("int8-dynamic"), {"x": x}, tmp_path / "q.onnx").report
    done = rec.details["fallback"]
    assert done["kept_float"] == ["first"] and done["kept_int8_weights"] == []
    assert done["weight_only_tried"] and rec.details["weight_only_nodes"] == []
    assert any("(weights too: with INT8 weights they did not hold)" in n for n in rec.notes)
    assert rec.fidelity is not None and rec.fidelity.cosine is not None
    assert rec.fidelity.cosine > 0.99
    assert rec.model.size_bytes < 0.9 * rec.base.size_bytes


def test_without_the_fallback_the_collapse_is_refused(
    model: Path, data: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "outlier.onnx"
    with pytest.raises(FidelityCollapse, match=r"cosine .* < 0.9") as err:
        compress(model, QuantizeConfig("int8-dynamic", fallback=False), data, out)
    assert "\n" not in str(err.value) and not out.exists()


def test_a_fallback_that_keeps_most_of_the_model_in_float_is_not_kept(
    model: Path, data: Dataset, tmp_path: Path
) -> None:
    with pytest.raises(FidelityCollapse) as err:  # only `first` left: float is the base
        compress(
            model,
            QuantizeConfig("int8-dynamic", exclude_nodes=("middle", "last")),
            data,
            tmp_path / "f.onnx",
            CompressOptions(),
        )
    assert "\n" not in str(err.value)
    assert "the INT8 fallback kept up to 1 of 1 quantized nodes in float" in str(err.value)
    assert "× the base's size" in str(err.value)
    assert not (tmp_path / "f.onnx").exists()


def test_ranking_puts_the_collapsing_node_first(model: Path, data: Dataset, tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def quantize(src: Path, kept: object, out: Path, calls: object) -> None:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, reduce_range=True)

    calls = list(data.take(8).batches(1))
    search = Search(calls, GuardPolicy(), "8 rows")
    errors = fallback.local_errors(
        onnx_graph.load(model),
        evaluate.signature(model),
        ["first", "middle", "last"],
        quantize,
        search,
    )
    assert max(errors, key=lambda n: errors[n]) == "first"
    assert errors["first"] > 10 * max(errors["middle"], errors["last"])


def test_dynamic_int8_is_judged_one_sample_per_call(
    model: Path, data: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "q.onnx"
    compress(model, QuantizeConfig("int8-dynamic", fallback=False), data, out, _keep())
    assert evaluate.batch_dependent(out) and not evaluate.batch_dependent(model)
    batched = evaluate.predict(out, data)
    one_by_one = evaluate.predict_feeds(out, list(data.batches(1)))
    assert list(batched) == list(one_by_one)
    for name in batched:
        np.testing.assert_array_equal(batched[name], one_by_one[name])


def _keep() -> CompressOptions:
    return CompressOptions(guard=GuardPolicy(allow_degraded=True))


def test_weights_are_7_bit_unless_full_range_is_asked() -> None:
    from edgeship.cli.compress_cmd import config_from_args

    assert QuantizeConfig().reduce_range and QuantizeConfig().fallback
    parser = build_parser()
    ns = parser.parse_args(["compress", "m.onnx", "--method", "int8-dynamic", "--out", "o.onnx"])
    assert config_from_args(ns).reduce_range is True
    ns = parser.parse_args(
        [
            "compress",
            "m.onnx",
            "--method",
            "int8-dynamic",
            "--out",
            "o.onnx",
            "--full-range",
            "--no-fallback",
        ]
    )
    config = config_from_args(ns)
    assert config.reduce_range is False and config.fallback is False


def test_a_refusal_after_the_fallback_says_what_it_kept_and_where_it_held() -> None:
    held = fallback.Fallback(("a", "b"), 10, 5, "cosine 0.5 < 0.95", "cosine 0.96", "16 rows")
    assert held.refusal == (
        "the INT8 fallback's 2 of 10 nodes in float held on 16 rows (cosine 0.96), not on these"
    )
    assert fallback.Fallback.from_dict(held.to_dict()) == held
    lighter = fallback.Fallback(("a", "b"), 10, 5, "c", "cosine 0.96", "16 rows", ("a",), True)
    assert fallback.Fallback.from_dict(lighter.to_dict()) == lighter
    assert "2 of its 10 quantized nodes keep float activations, 1 of them with INT8" in lighter.note
    old = {k: v for k, v in held.to_dict().items() if k in OLD_FALLBACK_KEYS}
    assert fallback.Fallback.from_dict(old) == held  # a report written before the tier
    failed = fallback.Fallback(("a",), 10, 3, "cosine 0.5 < 0.95", "", "16 rows")
    assert failed.refusal.startswith("the INT8 fallback kept up to 1 of 10 quantized nodes")


OLD_FALLBACK_KEYS = ("kept_float", "quantized_before", "tries", "collapsed", "held", "searched_on")

ANCHORS, CLASSES = 64, 3


def packed_head_model(path: Path) -> Path:
    """A YOLOv8-style packed head ``[N, 4 + C, anchors]`` on two 1×1 convolutions: one
    convolution's boxes in pixels (about 0–320) and another's sigmoid class scores (0–1),
    concatenated on the channel axis, as the export's last node does."""
    rng = np.random.default_rng(2)

    def conv(name: str, out: int, inp: int, scale: float) -> onnx.TensorProto:
        w = rng.standard_normal((out, inp, 1)) * scale / np.sqrt(inp)
        return numpy_helper.from_array(w.astype(np.float32), name)

    consts = [
        conv("W1", HIDDEN, FEATURES, 1.0),
        conv("W2", HIDDEN, HIDDEN, 1.0),
        conv("Wb", 4, HIDDEN, 60.0),
        numpy_helper.from_array(np.full(4, 160.0, np.float32), "Bb"),
        conv("Ws", CLASSES, HIDDEN, 2.0),
        numpy_helper.from_array(np.full(CLASSES, -2.0, np.float32), "Bs"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["h1"], name="conv1"),
        helper.make_node("Tanh", ["h1"], ["t1"], name="tanh1"),
        helper.make_node("Conv", ["t1", "W2"], ["h2"], name="conv2"),
        helper.make_node("Tanh", ["h2"], ["t2"], name="tanh2"),
        helper.make_node("Conv", ["t2", "Wb", "Bb"], ["boxes"], name="box_conv"),
        helper.make_node("Conv", ["t2", "Ws", "Bs"], ["logits"], name="score_conv"),
        helper.make_node("Sigmoid", ["logits"], ["scores"], name="score_sigmoid"),
        helper.make_node("Concat", ["boxes", "scores"], ["output0"], name="join", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "packed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, FEATURES, ANCHORS])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [None, 4 + CLASSES, None])],
        consts,
    )
    return save_graph(graph, path)


def test_a_packed_heads_join_is_kept_in_float_so_its_scores_keep_their_own_scale(
    tmp_path: Path,
) -> None:
    model = packed_head_model(tmp_path / "packed.onnx")
    x = np.random.default_rng(3).standard_normal((SAMPLES, FEATURES, ANCHORS)).astype(np.float32)
    out = tmp_path / "packed.int8.onnx"
    rec = compress(model, QuantizeConfig("int8-static"), {"x": x}, out).report
    done = rec.details["fallback"]
    assert "scores" in done["collapsed"]  # one scale for pixels and scores rounds the scores
    assert done["kept_float"] == ["join"]  # the join, found by its parts' error
    assert {"conv2", "box_conv", "score_conv"} <= set(rec.details["quantized_nodes"])
    got = evaluate.predict(out, Dataset({"x": x[-8:]}))["output0"]
    want = evaluate.predict(model, Dataset({"x": x[-8:]}))["output0"]
    assert np.abs(got[:, 4:] - want[:, 4:]).max() < 0.05  # the scores, at their own scale
