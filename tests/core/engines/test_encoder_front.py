"""The encoder cut in two: the convolution front runs once per audio, the result stays the same."""

from __future__ import annotations

import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from app.core.engines import encoder_front, moonshine  # noqa: E402
from app.core.engines.quantize import RewriteError  # noqa: E402

C, K1, S1, C2, K2, S2 = 4, 9, 4, 6, 3, 2


def encoder_model(groups_shape=(0, 1, -1), norm_scale=1.0, norm_bias=0.0, conv2_pads=(0, 0)):
    """Moonshine's encoder layout in miniature: conv1, tanh, a one-group GroupNorm (reshape,
    InstanceNormalization, reshape back, γ, β), conv2 with a bias, then layers that mix all
    frames (so the output changes everywhere when audio is added, like attention)."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(np.array([1], np.int64), "axis"),
        numpy_helper.from_array(rng.standard_normal((C, 1, K1)).astype(np.float32), "conv1.w"),
        numpy_helper.from_array(np.array(groups_shape, np.int64), "groups"),
        numpy_helper.from_array(np.array([norm_scale], np.float32), "in_scale"),
        numpy_helper.from_array(np.array([norm_bias], np.float32), "in_bias"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, (C, 1)).astype(np.float32), "gamma"),
        numpy_helper.from_array(rng.standard_normal((C, 1)).astype(np.float32), "beta"),
        numpy_helper.from_array(rng.standard_normal((C2, C, K2)).astype(np.float32), "conv2.w"),
        numpy_helper.from_array(rng.standard_normal(C2).astype(np.float32), "conv2.b"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["input_values", "axis"], ["u"]),
        helper.make_node("Conv", ["u", "conv1.w"], ["c1"], strides=[S1], kernel_shape=[K1]),
        helper.make_node("Tanh", ["c1"], ["t"]),
        helper.make_node("Reshape", ["t", "groups"], ["r"]),
        helper.make_node("Shape", ["t"], ["shape"]),
        helper.make_node("InstanceNormalization", ["r", "in_scale", "in_bias"], ["n"], epsilon=1e-5),
        helper.make_node("Reshape", ["n", "shape"], ["rb"]),
        helper.make_node("Mul", ["rb", "gamma"], ["g"]),
        helper.make_node("Add", ["g", "beta"], ["gb"]),
        helper.make_node("Conv", ["gb", "conv2.w", "conv2.b"], ["c2"], strides=[S2],
                         kernel_shape=[K2], pads=list(conv2_pads)),
        helper.make_node("Relu", ["c2"], ["relu"]),
        helper.make_node("Transpose", ["relu"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("ReduceMean", ["tr"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["tr", "mean"], ["last_hidden_state"]),
    ]
    graph = helper.make_graph(
        nodes, "encoder", [helper.make_tensor_value_info("input_values", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def session(path_or_bytes):
    source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def whole(model, audio):
    return session(model.SerializeToString()).run(None, {"input_values": audio[None, :]})[0]


class CountingSession:
    """An onnxruntime session that records how many audio samples each front run was given."""

    def __init__(self, inner) -> None:
        self.inner, self.fed = inner, []

    def run(self, names, feeds, options=None):
        self.fed.append(feeds["audio"].shape[1])
        return self.inner.run(names, feeds, options)

    def __getattr__(self, item):
        return getattr(self.inner, item)


def split_encoder(model):
    front, back = encoder_front.split(model)
    counting = CountingSession(session(front.SerializeToString()))
    return encoder_front.SplitEncoder(encoder_front.EncoderFront(counting),
                                      session(back.SerializeToString())), counting


AUDIO = (np.random.default_rng(4).standard_normal(4000) * 0.3).astype(np.float32)


@pytest.mark.parametrize("norm", [(1.0, 0.0), (0.7, 0.2)])
def test_growing_audio_is_convolved_once_and_encodes_as_the_whole_model(norm):
    model = encoder_model(norm_scale=norm[0], norm_bias=norm[1])
    reference = onnx.ModelProto.FromString(model.SerializeToString())
    encoder, front = split_encoder(model)
    state: dict = {}
    for end in (500, 501, 900, 1733, 2600, 4000):
        got = encoder.encode(AUDIO[:end], state)
        np.testing.assert_allclose(got, whole(reference, AUDIO[:end]), atol=2e-5, rtol=1e-4)
    # Each run saw only what was new (plus less than one conv1 window of overlap).
    assert sum(front.fed) < 4000 + 6 * K1
    assert max(front.fed[1:]) < 1400 + K1


def test_shorter_or_different_audio_in_the_same_utterance_still_encodes_exactly():
    model = encoder_model()
    reference = onnx.ModelProto.FromString(model.SerializeToString())
    encoder, front = split_encoder(model)
    state: dict = {}
    encoder.encode(AUDIO[:3000], state)
    fed = len(front.fed)
    # A shorter stretch of the same audio (a final decoded while more audio came): nothing to run.
    np.testing.assert_allclose(encoder.encode(AUDIO[:2000], state), whole(reference, AUDIO[:2000]),
                               atol=2e-5, rtol=1e-4)
    assert len(front.fed) == fed
    changed = AUDIO[:3000].copy()
    changed[100] += 0.5                      # not the audio the kept frames came from
    np.testing.assert_allclose(encoder.encode(changed, state), whole(reference, changed),
                               atol=2e-5, rtol=1e-4)
    assert front.fed[-1] > 2900              # started over
    # No state (a one-off decode): everything from scratch, the same result.
    np.testing.assert_allclose(encoder.encode(AUDIO, None), whole(reference, AUDIO),
                               atol=2e-5, rtol=1e-4)


def test_a_groupnorm_of_several_groups_is_refused_in_words():
    with pytest.raises(RewriteError, match="not a single group"):
        encoder_front.split(encoder_model(groups_shape=(0, 2, -1)))


def test_an_encoder_of_another_layout_is_refused():
    model = encoder_model()
    model.graph.node[2].op_type = "Relu"      # conv1 followed by something else
    with pytest.raises(RewriteError, match="does not start with conv1"):
        encoder_front.split(model)


def test_parts_are_built_once_beside_the_encoder_and_shared_by_equal_fronts(tmp_path, caplog):
    path = tmp_path / "enc.onnx"
    path.write_bytes(encoder_model().SerializeToString())
    other = tmp_path / "enc2.onnx"
    other.write_bytes(path.read_bytes())
    front, back = encoder_front.prepared(path)
    assert (front.parent, back.parent) == (tmp_path, tmp_path)
    stamp = front.stat().st_mtime_ns, back.stat().st_mtime_ns
    assert encoder_front.prepared(path) == (front, back)
    assert (front.stat().st_mtime_ns, back.stat().st_mtime_ns) == stamp
    fronts: dict = {}
    first = encoder_front.load(path, session, fronts)
    second = encoder_front.load(other, session, fronts)
    assert isinstance(first, encoder_front.SplitEncoder)
    assert first.front is second.front and len(fronts) == 1
    np.testing.assert_allclose(first.encode(AUDIO), whole(encoder_model(), AUDIO), atol=2e-5,
                               rtol=1e-4)


def test_an_encoder_that_cannot_be_split_runs_whole(tmp_path, caplog):
    model = encoder_model(conv2_pads=(1, 1))        # padding: its edge frames would change
    path = tmp_path / "enc.onnx"
    path.write_bytes(model.SerializeToString())
    with caplog.at_level(logging.WARNING):
        encoder = encoder_front.load(path, session, {})
    assert isinstance(encoder, encoder_front.WholeEncoder)
    assert "running the whole Moonshine encoder (the encoder's convolutions are padded" in caplog.text
    np.testing.assert_allclose(encoder.encode(AUDIO), whole(model, AUDIO), atol=1e-6)


def test_a_refused_layout_is_remembered_so_later_starts_skip_the_split(tmp_path, monkeypatch):
    path = tmp_path / "enc.onnx"
    path.write_bytes(encoder_model(conv2_pads=(1, 1)).SerializeToString())
    with pytest.raises(RewriteError, match="padded"):
        encoder_front.prepared(path)
    monkeypatch.setattr(onnx, "load", lambda *a, **k: pytest.fail("the model was loaded again"))
    with pytest.raises(RewriteError, match="padded"):
        encoder_front.prepared(path)
    assert not any(p.suffix == ".onnx" and p != path for p in tmp_path.iterdir())


def test_a_damaged_part_file_runs_the_encoder_whole(tmp_path, caplog):
    path = tmp_path / "enc.onnx"
    path.write_bytes(encoder_model().SerializeToString())
    front, _ = encoder_front.prepared(path)
    front.write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING):
        encoder = encoder_front.load(path, session, {})
    assert isinstance(encoder, encoder_front.WholeEncoder)
    assert "did not load" in caplog.text


@pytest.mark.offline_engine
def test_moonshine_partials_and_the_final_share_the_kept_frames(speech_wav):
    directory = moonshine.model_dir()
    if directory is None:
        pytest.skip("the Moonshine model is not installed")
    model = moonshine.MoonshineModel(directory)
    if not isinstance(model._encoder, encoder_front.SplitEncoder):
        pytest.skip(f"the prepared weights are not in use here ({model.weights})")
    assert model._partial_encoder.front is model._encoder.front
    import wave
    path = speech_wav("The first thing I want to look at this morning is how the support queue "
                      "has changed since we moved the help desk.", tail_ms=0)
    with wave.open(str(path)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    runs = CountingSession(model._encoder.front._session)
    model._encoder.front._session = runs
    state: dict = {}
    for seconds in (1.0, 1.5, 2.0, 2.5, 3.0):
        model.transcribe(audio[:int(seconds * 16000)], partial=True, state=state)
    final = model.transcribe(audio[:int(3.2 * 16000)], state=state)
    # After the first, each decode convolved only its new half second (or the final's 0.2 s).
    assert runs.fed[0] > 16000 and max(runs.fed[1:]) < 0.55 * 16000
    assert runs.fed[-1] < 0.25 * 16000
    assert final == model.transcribe(audio[:int(3.2 * 16000)])


def test_two_sessions_share_one_front_at_the_same_time():
    """Microphone and system audio each decode on their own thread with one shared model: each
    utterance's kept frames are its own, so neither sees the other's audio."""
    import threading

    model = encoder_model()
    reference = onnx.ModelProto.FromString(model.SerializeToString())
    encoder, _ = split_encoder(model)
    rng = np.random.default_rng(5)
    streams = [(rng.standard_normal(3000) * 0.3).astype(np.float32) for _ in range(2)]
    got: dict = {0: [], 1: []}

    def run(k):
        state: dict = {}
        for end in range(600, 3001, 200):
            got[k].append(encoder.encode(streams[k][:end], state))

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for k in (0, 1):
        for i, end in enumerate(range(600, 3001, 200)):
            np.testing.assert_allclose(got[k][i], whole(reference, streams[k][:end]), atol=2e-5,
                                       rtol=1e-4)
