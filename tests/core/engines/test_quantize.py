"""Prepared Moonshine weights: the graph rewrite on a small model, the cache, and the fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from app.core.engines import moonshine, quantize  # noqa: E402


def dequant_model(zero_point: int = 3, conv: bool = False, embedding: bool = False):
    """x[1,4,8] @ W[8,6] with W stored like the Moonshine files: int8 q, W = q*scale + offset."""
    rng = np.random.default_rng(1)
    scale = np.float32(0.05)
    q = rng.integers(-120, 120, size=(8, 6)).astype(np.int8)
    inits = [numpy_helper.from_array(q, "w_quantized"),
             numpy_helper.from_array(np.array([scale], np.float32), "w_scale"),
             numpy_helper.from_array(np.array([-zero_point * scale], np.float32), "w_min")]
    nodes = [helper.make_node("Cast", ["w_quantized"], ["w_cast"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["w_cast", "w_scale"], ["w_scaled"]),
             helper.make_node("Add", ["w_scaled", "w_min"], ["w"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])]
    outputs = []
    if embedding:
        # The token table: looked up by id and, transposed, the output projection.
        inputs.append(helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 2]))
        nodes += [helper.make_node("Slice", ["x", "s0", "s1", "s2"], ["h"]),     # h: [1, 4, 6]
                  helper.make_node("Gather", ["w", "ids"], ["rows"]),
                  helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
                  helper.make_node("MatMul", ["h", "wt"], ["logits"])]
        inits += [numpy_helper.from_array(np.array([0], np.int64), "s0"),
                  numpy_helper.from_array(np.array([6], np.int64), "s1"),
                  numpy_helper.from_array(np.array([2], np.int64), "s2")]
        outputs += [helper.make_tensor_value_info("rows", TensorProto.FLOAT, None),
                    helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)]
    else:
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"]))
        outputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, None))
    if conv:
        cq = rng.integers(-100, 100, size=(2, 4, 3)).astype(np.int8)
        inits += [numpy_helper.from_array(cq, "c_quantized"),
                  numpy_helper.from_array(np.array([scale], np.float32), "c_scale"),
                  numpy_helper.from_array(np.array([0.01], np.float32), "c_min")]
        nodes += [helper.make_node("Cast", ["c_quantized"], ["c_cast"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["c_cast", "c_scale"], ["c_scaled"]),
                  helper.make_node("Add", ["c_scaled", "c_min"], ["c"]),
                  helper.make_node("Conv", ["x", "c"], ["z"])]
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def ops(model):
    return [n.op_type for n in model.graph.node]


FEEDS = {"x": np.random.default_rng(2).standard_normal((1, 4, 8)).astype(np.float32)}


def test_float_rewrite_computes_the_same_and_drops_the_per_run_expansion():
    before = run(dequant_model(conv=True), FEEDS)
    model = dequant_model(conv=True)
    counts = quantize.rewrite(model, "float")
    assert counts == {"matmul": 0, "embedding": 0, "folded": 2}
    assert ops(model) == ["MatMul", "Conv"]                   # no Cast/Mul/Add left
    after = run(model, FEEDS)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def stored_weight(model, name):
    return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))


@pytest.mark.parametrize("unsigned", [False, True])
def test_int8_rewrite_multiplies_with_the_stored_int8_weights(unsigned):
    before = run(dequant_model(conv=True), FEEDS)
    model = dequant_model(conv=True)
    counts = quantize.rewrite(model, "int8", unsigned)
    assert counts == {"matmul": 1, "embedding": 0, "folded": 1}   # the convolution is folded
    assert ops(model) == ["DynamicQuantizeMatMul", "Conv"]
    dq = model.graph.node[0]
    assert dq.domain == "com.microsoft" and dq.input[1] == "w_quantized"
    zp, w = stored_weight(model, "w_quantized_zero_point"), stored_weight(model, "w_quantized")
    q = numpy_helper.to_array(next(t for t in dequant_model().graph.initializer if t.name == "w_quantized"))
    if unsigned:      # the same integers, shifted by 128
        assert zp.dtype == np.uint8 and int(zp) == 131
        assert w.dtype == np.uint8 and np.array_equal(w.astype(int) - 128, q)
    else:
        assert zp.dtype == np.int8 and int(zp) == 3 and np.array_equal(w, q)
    np.testing.assert_allclose(run(model, FEEDS)[1], before[1], rtol=1e-6, atol=1e-6)
    if unsigned or not quantize.int8_products_saturate():
        # Activations are quantised to 8 bits: close, not equal.
        np.testing.assert_allclose(run(model, FEEDS)[0], before[0], atol=0.05 * np.abs(before[0]).max())


@pytest.mark.parametrize("unsigned", [False, True])
def test_int8_rewrite_of_the_token_table_dequantises_only_the_gathered_rows(unsigned):
    feeds = dict(FEEDS, ids=np.array([[1, 7]], np.int64))
    before = run(dequant_model(embedding=True), feeds)
    model = dequant_model(embedding=True)
    counts = quantize.rewrite(model, "int8", unsigned)
    assert counts["embedding"] == 1 and counts["matmul"] == 1
    assert "Transpose" not in ops(model) and "DynamicQuantizeMatMul" in ops(model)
    assert stored_weight(model, "w_quantized").dtype == np.int8           # the lookup's table
    assert stored_weight(model, "w_quantized_transposed").dtype == (np.uint8 if unsigned else np.int8)
    gathered, logits = run(model, feeds)
    np.testing.assert_allclose(gathered, before[0], rtol=1e-6, atol=1e-6)   # exact rows
    if unsigned or not quantize.int8_products_saturate():
        np.testing.assert_allclose(logits, before[1], atol=0.05 * np.abs(before[1]).max())


def test_the_default_int8_layout_keeps_large_products_exact_on_this_cpu():
    # Weights near +-127 times large activations: the sums a saturating 16-bit pair add clips.
    model = dequant_model(zero_point=0)
    w = next(t for t in model.graph.initializer if t.name == "w_quantized")
    big = np.tile(np.array([127, 120, 100, -127, -120, -100], np.int8), (8, 1))
    w.CopyFrom(numpy_helper.from_array(big, "w_quantized"))
    x = {"x": np.linspace(0.5, 4.0, 32, dtype=np.float32).reshape(1, 4, 8)}
    before = run(model, x)[0]
    quantize.rewrite(model, "int8")
    np.testing.assert_allclose(run(model, x)[0], before, rtol=0.02, atol=0.02 * np.abs(before).max())


def test_the_kernel_probe_decides_the_layout(monkeypatch):
    assert isinstance(quantize.int8_products_saturate.__wrapped__(), bool)
    for saturates, dtype in ((True, np.uint8), (False, np.int8)):
        monkeypatch.setattr(quantize, "int8_products_saturate", lambda: saturates)
        model = dequant_model()
        quantize.rewrite(model, "int8")
        assert stored_weight(model, "w_quantized").dtype == dtype


def test_the_probe_is_the_documented_product():
    model = onnx.load_from_string(quantize.PROBE_MODEL)
    (node,) = model.graph.node
    assert (node.op_type, node.domain, list(node.input)) == (
        "DynamicQuantizeMatMul", "com.microsoft", ["x", "w", "s", "z"])
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert inits["w"].dtype == np.int8 and inits["w"].tolist() == [[127], [127]]
    assert float(inits["s"]) == 1.0 and inits["z"].dtype == np.int8 and int(inits["z"]) == 0


def test_a_probe_that_cannot_run_chooses_the_exact_layout(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no CPU provider")

    monkeypatch.setattr(ort, "InferenceSession", broken)
    assert quantize.int8_products_saturate.__wrapped__() is True


def test_a_weight_that_is_not_a_constant_chain_is_refused_in_words():
    model = dequant_model()
    model.graph.node[1].input[1] = "x"                     # the scale is not a constant any more
    with pytest.raises(quantize.RewriteError, match="scale/offset are not constants"):
        quantize.rewrite(model, "float")


def test_prepared_builds_once_into_the_cache_and_reuses_it(tmp_path, monkeypatch):
    source = tmp_path / "m.onnx"
    source.write_bytes(dequant_model().SerializeToString())
    built = []
    monkeypatch.setattr("app.core.engines.ort_to_onnx.load",
                        lambda p: (built.append(p), onnx.load(str(p)))[1])
    cache = tmp_path / "cache"
    first = quantize.prepared(source, "m", "float", cache)
    second = quantize.prepared(source, "m", "float", cache)
    assert first == second and first.is_file() and len(built) == 1
    assert not list(cache.glob("*.part"))                     # written atomically
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    np.testing.assert_allclose(
        ort.InferenceSession(str(first), providers=["CPUExecutionProvider"]).run(None, FEEDS)[0],
        run(dequant_model(), FEEDS)[0], rtol=1e-6, atol=1e-6)
    # Different inputs (a new wheel release) get a different cache file.
    source.write_bytes(dequant_model(zero_point=5).SerializeToString())
    assert quantize.prepared(source, "m", "float", cache) != first


def test_the_int8_layouts_are_cached_apart(tmp_path, monkeypatch):
    # A home folder moved to a machine with another CPU must not run the other layout.
    source = tmp_path / "m.onnx"
    source.write_bytes(dequant_model().SerializeToString())
    monkeypatch.setattr("app.core.engines.ort_to_onnx.load", lambda p: onnx.load(str(p)))
    names = set()
    for saturates in (True, False):
        monkeypatch.setattr(quantize, "int8_products_saturate", lambda: saturates)
        path = quantize.prepared(source, "m", "int8", tmp_path / "cache")
        names.add(path.name)
        w = next(t for t in onnx.load(str(path)).graph.initializer if t.name == "w_quantized")
        assert numpy_helper.to_array(w).dtype == (np.uint8 if saturates else np.int8)
    assert len(names) == 2


def test_unknown_weights_setting_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(moonshine.WEIGHTS_ENV, "fp4")
    with pytest.raises(ValueError, match="Unknown Moonshine weights 'fp4'; choose float, int8, shipped"):
        moonshine.model_files(tmp_path)


def test_weights_that_cannot_be_prepared_fall_back_to_the_shipped_files(tmp_path, monkeypatch):
    (tmp_path / "encoder_model.ort").write_bytes(b"not a model")
    (tmp_path / "decoder_model_merged.ort").write_bytes(b"not a model")
    enc, dec, used = moonshine.model_files(tmp_path, "float")
    assert used == "shipped" and enc.name == "encoder_model.ort" and dec.name == "decoder_model_merged.ort"
    monkeypatch.setattr(quantize, "available", lambda: False)     # no onnx package
    assert moonshine.model_files(tmp_path, "int8")[2] == "shipped"


def test_a_missing_converter_module_falls_back_too(tmp_path, monkeypatch):
    (tmp_path / "encoder_model.ort").write_bytes(b"x")
    (tmp_path / "decoder_model_merged.ort").write_bytes(b"x")

    def no_tools(path):
        raise ModuleNotFoundError("No module named 'onnxruntime.tools'")

    monkeypatch.setattr("app.core.engines.ort_to_onnx.load", no_tools)
    monkeypatch.setattr(quantize, "cache_dir", lambda: tmp_path / "cache")
    assert moonshine.model_files(tmp_path, "float")[2] == "shipped"


@pytest.mark.offline_engine
def test_prepared_float_weights_give_the_shipped_model_output():
    directory = moonshine.model_dir()
    if directory is None:
        pytest.skip("the Moonshine model is not installed")
    shipped = moonshine.MoonshineModel(directory, weights="shipped")
    prepared = moonshine.MoonshineModel(directory, weights="float")
    assert prepared.weights == "float"
    audio = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.05
    a = shipped._encoder.encode(audio)
    b = prepared._encoder.encode(audio)
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert shipped.transcribe(audio) == prepared.transcribe(audio)


def test_unknown_partial_weights_setting_is_a_clear_error(monkeypatch):
    directory = moonshine.model_dir()
    if directory is None:
        pytest.skip("the Moonshine model is not installed")
    monkeypatch.setenv(moonshine.PARTIAL_WEIGHTS_ENV, "fast")
    with pytest.raises(ValueError, match="Unknown Moonshine partial weights 'fast'; choose same"):
        moonshine.MoonshineModel(directory, weights="shipped")
