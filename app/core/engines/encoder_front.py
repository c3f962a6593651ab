"""Moonshine's encoder cut in two, so a growing utterance's audio is convolved once, not per partial.

Every partial re-encodes the whole utterance so far: the encoder's attention sees all of it, so
its output changes everywhere when audio is added. Its first layers do not: ``tanh(conv1)`` and
``conv2`` each see a few milliseconds of audio, so their frames for audio already analysed stay
as they were. They cost about a quarter of the encoder. Between them sits a GroupNorm over the
whole utterance (one group: the mean and variance of every ``conv1`` value), which does change as
audio comes; but it is affine and ``conv2`` is linear, so it moves behind ``conv2``:

    conv2(γ·(x − μ)/σ + β) = conv2_γ(x)/σ + B − (μ/σ)·A

with ``conv2_γ`` = ``conv2`` without its bias and with its weights scaled by γ per input channel,
``A`` = the sum of those weights per output channel and ``B`` = ``conv2`` of the constant β plus the
bias. So the *front* (``tanh(conv1)`` then ``conv2_γ``) runs only on the new audio, its frames and
per-frame sums are kept per utterance (``FrontCache``), and the *back* (the normalisation above,
then the rest of the encoder unchanged) takes all kept frames with μ and 1/σ. Same arithmetic
(float outputs equal to ~1e-5), minus the convolutions of audio seen before.

``prepared`` builds both parts from a prepared encoder file once, into the same cache, and
checks the reconstruction numerically; a layout it does not recognise raises ``RewriteError`` and
the whole encoder runs as before.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.engines.quantize import RewriteError, walk
from app.core.private_files import write_private

log = logging.getLogger(__name__)

VERSION = 1                 # bump when the split changes: the cache names carry it
CHECK_ATOL = 1e-3           # the rebuilt conv2 output must equal the original's this closely
# The ops of the encoder's first ten nodes: the part the front replaces.
LAYOUT = ("Unsqueeze", "Conv", "Tanh", "Reshape", "Shape", "InstanceNormalization", "Reshape",
          "Mul", "Add", "Conv")


def part_paths(encoder: Path) -> tuple[Path, Path, Path]:
    """(front, back, refusal note) beside the prepared encoder file."""
    stem = encoder.name[:-len(encoder.suffix)] if encoder.suffix else encoder.name
    return (encoder.with_name(f"{stem}.front-v{VERSION}.onnx"),
            encoder.with_name(f"{stem}.back-v{VERSION}.onnx"),
            encoder.with_name(f"{stem}.whole-v{VERSION}.txt"))


def prepared(encoder: Path) -> tuple[Path, Path]:
    """(front, back) for the prepared encoder file ``encoder``, built beside it on first use.
    A layout the split refuses is noted beside it, so later starts do not load the model again
    (with ``onnx``: ~1 s) only to be refused again."""
    front_path, back_path, refusal = part_paths(encoder)
    if front_path.is_file() and back_path.is_file():
        return front_path, back_path
    if refusal.is_file():
        raise RewriteError(refusal.read_text(encoding="utf-8", errors="replace").strip())
    import onnx

    try:
        front, back = split(onnx.load(str(encoder)))
    except RewriteError as exc:
        write_private(refusal, f"{exc}\n".encode())
        raise
    for model, target in ((front, front_path), (back, back_path)):
        write_private(target, model.SerializeToString())   # never a half model
    log.info("split %s into its convolution front and the rest", encoder.name)
    return front_path, back_path


def split(model):
    """(front, back) ``onnx.ModelProto`` of a Moonshine encoder; ``RewriteError`` if the layout
    is not the one described above. Checks the rebuilt conv2 output against the original."""
    from onnx import helper, numpy_helper

    graph = model.graph
    nodes = list(graph.node)
    if len(graph.input) != 1 or [n.op_type for n in nodes[:len(LAYOUT)]] != list(LAYOUT):
        raise RewriteError("the encoder does not start with conv1, tanh, groupnorm, conv2")
    inits = {t.name: t for t in graph.initializer}

    def const(name):
        if name not in inits:
            raise RewriteError(f"{name} is not a constant")
        return numpy_helper.to_array(inits[name])

    def attrs(node):
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    unsq, conv1, tanh, reshape, _shape, inorm, reshape_back, mul, add, conv2 = nodes[:len(LAYOUT)]
    audio_name = graph.input[0].name
    chain = [(unsq, audio_name), (conv1, unsq.output[0]), (tanh, conv1.output[0]),
             (reshape, tanh.output[0]), (inorm, reshape.output[0]),
             (reshape_back, inorm.output[0]), (mul, reshape_back.output[0]),
             (add, mul.output[0]), (conv2, add.output[0])]
    if any(node.input[0] != data for node, data in chain):
        raise RewriteError("the encoder's first layers are not wired as one chain")
    if list(const(reshape.input[1]).reshape(-1)) != [0, 1, -1]:
        raise RewriteError("the encoder's GroupNorm is not a single group")
    for conv in (conv1, conv2):
        a = attrs(conv)
        if (list(a.get("pads", [0, 0])) != [0, 0] or list(a.get("dilations", [1])) != [1]
                or a.get("group", 1) != 1 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            raise RewriteError("the encoder's convolutions are padded, dilated or grouped")
    if len(conv1.input) > 2:
        raise RewriteError("conv1 has a bias")
    w1 = const(conv1.input[1]).astype(np.float32)
    w2 = const(conv2.input[1]).astype(np.float32)
    b2 = const(conv2.input[2]).astype(np.float32) if len(conv2.input) > 2 else 0.0
    in_scale = float(const(inorm.input[1]).reshape(-1)[0])
    in_bias = float(const(inorm.input[2]).reshape(-1)[0])
    gamma = const(next(x for x in mul.input if x != reshape_back.output[0])).astype(np.float32)
    beta = const(next(x for x in add.input if x != mul.output[0])).astype(np.float32)
    channels = w1.shape[0]
    if w1.shape[1] != 1 or w2.shape[1] != channels:
        raise RewriteError("unexpected convolution shapes")
    # One affine per channel after the normalisation: x̂·g + h.
    g = (in_scale * gamma).reshape(-1) * np.ones(channels, np.float32)
    h = (in_bias * gamma + beta).reshape(-1) * np.ones(channels, np.float32)
    w2g = (w2 * g[None, :, None]).astype(np.float32)
    a_sum = w2g.sum(axis=(1, 2), dtype=np.float64).astype(np.float32)
    b_sum = ((w2 * h[None, :, None]).sum(axis=(1, 2), dtype=np.float64) + b2).astype(np.float32)
    geometry = {"stride1": int(attrs(conv1).get("strides", [1])[0]), "kernel1": int(w1.shape[2]),
                "stride2": int(attrs(conv2).get("strides", [1])[0]), "kernel2": int(w2.shape[2]),
                "channels": int(channels), "out_channels": int(w2.shape[0]),
                "epsilon": float(attrs(inorm).get("epsilon", 1e-5))}
    digest = hashlib.sha256(w1.tobytes() + w2g.tobytes() + b"%d" % VERSION).hexdigest()[:16]
    geometry["digest"] = digest
    opset = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not opset or opset[0].version < 13:
        raise RewriteError("the encoder's opset is older than 13")   # Unsqueeze axes as input
    fv = helper.make_tensor_value_info

    # Front: new audio → its tanh(conv1) frames; (frames kept from before ++ those) → conv2_γ.
    front_graph = helper.make_graph(
        [helper.make_node("Unsqueeze", ["audio", "front_axis"], ["audio_3d"]),
         helper.make_node("Conv", ["audio_3d", "w1"], ["conv1"], strides=[geometry["stride1"]]),
         helper.make_node("Tanh", ["conv1"], ["x1"]),
         helper.make_node("Concat", ["x1_before", "x1"], ["x1_all"], axis=2),
         helper.make_node("Conv", ["x1_all", "w2g"], ["z"], strides=[geometry["stride2"]])],
        "moonshine_encoder_front",
        [fv("audio", 1, [1, "samples"]), fv("x1_before", 1, [1, channels, "kept"])],
        [fv("x1", 1, [1, channels, "frames"]), fv("z", 1, [1, w2.shape[0], "out_frames"])],
        [numpy_helper.from_array(np.array([1], np.int64), "front_axis"),
         numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2g, "w2g")])
    front = helper.make_model(front_graph, opset_imports=opset)
    front.ir_version = model.ir_version
    helper.set_model_props(front, {k: repr(v) if k != "digest" else v for k, v in geometry.items()})

    # Back: z/σ + B − (μ/σ)·A is conv2's output; every later node as it was.
    conv2_out = conv2.output[0]
    produced_before = {o for n in nodes[:len(LAYOUT)] for o in n.output} - {conv2_out}
    prologue = [
        helper.make_node("Mul", ["front_mu", "front_inv_sigma"], ["front_mu_sigma"]),
        helper.make_node("Mul", ["front_mu_sigma", "front_a"], ["front_mu_a"]),
        helper.make_node("Sub", ["front_b", "front_mu_a"], ["front_shift"]),
        helper.make_node("Mul", ["front_z", "front_inv_sigma"], ["front_z_scaled"]),
        helper.make_node("Add", ["front_z_scaled", "front_shift"], [conv2_out])]
    del graph.node[:]
    graph.node.extend(prologue + nodes[len(LAYOUT):])
    consumers: dict[str, list] = defaultdict(list)
    walk(graph, consumers, {})                 # subgraphs included
    if (produced_before | {audio_name}) & consumers.keys():
        raise RewriteError("later encoder layers use values from before conv2")
    del graph.input[:]
    graph.input.extend([fv("front_z", 1, [1, w2.shape[0], "out_frames"]),
                        fv("front_mu", 1, []), fv("front_inv_sigma", 1, [])])
    keep = [t for t in graph.initializer if t.name in consumers]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    graph.initializer.extend([
        numpy_helper.from_array(a_sum.reshape(1, -1, 1), "front_a"),
        numpy_helper.from_array(b_sum.reshape(1, -1, 1), "front_b")])
    helper.set_model_props(model, {"front_digest": digest})
    _check(nodes, inits, audio_name, conv2_out, front, a_sum, b_sum, opset, model)
    return front, model


def _check(nodes, inits, audio_name, conv2_out, front, a_sum, b_sum, opset, model):
    """conv2's output rebuilt from the front equals the original's (random audio, 1.5 s)."""
    import onnxruntime as ort
    from onnx import helper

    original = helper.make_graph(
        nodes[:len(LAYOUT)], "head", [helper.make_tensor_value_info(audio_name, 1, [1, "n"])],
        [helper.make_tensor_value_info(conv2_out, 1, None)],
        [inits[n] for n in {i for node in nodes[:len(LAYOUT)] for i in node.input} if n in inits])
    head = helper.make_model(original, opset_imports=opset)
    head.ir_version = model.ir_version
    audio = (np.random.default_rng(0).standard_normal((1, 24000)) * 0.1).astype(np.float32)
    try:
        want = ort.InferenceSession(head.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {audio_name: audio})[0]
        runner = EncoderFront(ort.InferenceSession(front.SerializeToString(),
                                                   providers=["CPUExecutionProvider"]))
        z, mu, inv_sigma = runner.features(audio[0], FrontCache())
    except Exception as exc:                   # noqa: BLE001 - any failure: keep the whole encoder
        raise RewriteError(f"the split encoder does not run: {exc}") from None
    got = z * inv_sigma + (b_sum.reshape(1, -1, 1) - mu * inv_sigma * a_sum.reshape(1, -1, 1))
    if got.shape != want.shape or not np.allclose(got, want, atol=CHECK_ATOL):
        raise RewriteError("the split encoder does not reproduce conv2's output")


@dataclass
class FrontCache:
    """One utterance's front frames: kept between its decodes (the per-utterance ``state``)."""

    digest: str = ""
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    x1: np.ndarray | None = None           # (1, channels, frames) tanh(conv1)
    sums: np.ndarray = field(default_factory=lambda: np.zeros(0))       # per x1 frame
    squares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z: np.ndarray | None = None            # (1, 2·channels, frames) conv2_γ


class EncoderFront:
    """Runs the front on what is new since the cache's last call; thread-safe (no own state)."""

    def __init__(self, session) -> None:
        props = session.get_modelmeta().custom_metadata_map
        try:
            self.stride1, self.kernel1 = int(props["stride1"]), int(props["kernel1"])
            self.stride2, self.kernel2 = int(props["stride2"]), int(props["kernel2"])
            self.channels, self.epsilon = int(props["channels"]), float(props["epsilon"])
            self.out_channels = int(props["out_channels"])
            self.digest = props["digest"]
        except (KeyError, ValueError) as exc:
            raise RewriteError(f"the encoder front lacks its geometry: {exc}") from None
        self._session = session

    def frames1(self, samples: int) -> int:
        return max(0, (samples - self.kernel1) // self.stride1 + 1)

    def frames2(self, frames1: int) -> int:
        return max(0, (frames1 - self.kernel2) // self.stride2 + 1)

    def features(self, audio: np.ndarray, cache: FrontCache, terminate=None):
        """(z, μ, 1/σ) for ``audio`` (1-D float32), reusing and updating ``cache``."""
        n = len(audio)
        if cache.digest != self.digest or cache.x1 is None:
            self._reset(cache)
        m = min(n, len(cache.audio))
        if not np.array_equal(audio[:m], cache.audio[:m]):
            self._reset(cache)                 # not the same utterance's audio: start over
            m = 0
        t1, t2 = self.frames1(n), self.frames2(self.frames1(n))
        if t2 == 0:
            raise ValueError(f"{n} samples are too short for the encoder")
        t1_keep = min(self.frames1(m), cache.x1.shape[2])
        x1, sums, squares = cache.x1[:, :, :t1_keep], cache.sums[:t1_keep], cache.squares[:t1_keep]
        z = cache.z[:, :, :self.frames2(t1_keep)]
        if t1 > t1_keep:
            # conv2_γ resumes where its kept frames end, one frame earlier if the frames in
            # between would be shorter than its kernel.
            t2_from = min(z.shape[2], t2 - 1)
            new_audio = audio[t1_keep * self.stride1:(t1 - 1) * self.stride1 + self.kernel1]
            feeds = {"audio": np.ascontiguousarray(new_audio[None, :], dtype=np.float32),
                     "x1_before": np.ascontiguousarray(x1[:, :, t2_from * self.stride2:])}
            x1_new, z_new = self._session.run(None, feeds, terminate)
            x1_new64 = x1_new[0].astype(np.float64)
            x1 = np.concatenate((x1, x1_new), axis=2)
            z = np.concatenate((z[:, :, :t2_from], z_new), axis=2)
            sums = np.concatenate((sums, x1_new64.sum(axis=0)))
            squares = np.concatenate((squares, np.square(x1_new64).sum(axis=0)))
            cache.audio = np.array(audio, dtype=np.float32)
            cache.x1, cache.z, cache.sums, cache.squares = x1, z, sums, squares
        count = t1 * self.channels
        mu = float(sums.sum()) / count
        var = max(0.0, float(squares.sum()) / count - mu * mu)
        return z, np.array(mu, np.float32), np.array(1.0 / np.sqrt(var + self.epsilon), np.float32)

    def _reset(self, cache: FrontCache) -> None:
        cache.digest = self.digest
        cache.audio = np.zeros(0, np.float32)
        cache.x1 = np.zeros((1, self.channels, 0), np.float32)
        cache.z = np.zeros((1, self.out_channels, 0), np.float32)
        cache.sums = np.zeros(0)
        cache.squares = np.zeros(0)


class WholeEncoder:
    """The encoder as one model (shipped weights, or a layout the split does not know)."""

    def __init__(self, session) -> None:
        self.session = session

    def encode(self, audio: np.ndarray, state: dict | None = None, terminate=None) -> np.ndarray:
        return self.session.run(["last_hidden_state"], {"input_values": audio[None, :]},
                                terminate)[0]


class SplitEncoder:
    """The front on the new audio (its frames kept in ``state["front"]``), then the back."""

    def __init__(self, front: EncoderFront, back) -> None:
        self.front, self.back = front, back

    def encode(self, audio: np.ndarray, state: dict | None = None, terminate=None) -> np.ndarray:
        cache = state.setdefault("front", FrontCache()) if state is not None else FrontCache()
        z, mu, inv_sigma = self.front.features(audio, cache, terminate)
        return self.back.run(["last_hidden_state"], {"front_z": z, "front_mu": mu,
                                                     "front_inv_sigma": inv_sigma}, terminate)[0]


def load(path: Path, session, fronts: dict) -> "WholeEncoder | SplitEncoder":
    """The encoder in ``path`` (a prepared file), split where its layout allows. ``session``
    loads a model file; ``fronts`` (digest → EncoderFront) lets encoders whose convolutions are
    the same share one front, and so one utterance's kept frames."""
    try:
        front_path, back_path = prepared(path)
        back = session(back_path)
        digest = back.get_modelmeta().custom_metadata_map.get("front_digest", "")
        front = fronts.get(digest)
        if front is None:
            front = EncoderFront(session(front_path))
            if front.digest != digest:
                raise RewriteError("the encoder's front and back do not belong together")
            fronts[digest] = front
        return SplitEncoder(front, back)
    except (RewriteError, OSError, ValueError, ImportError) as exc:
        log.warning("running the whole Moonshine encoder (%s)", exc)
    except Exception as exc:                     # noqa: BLE001 - e.g. onnxruntime rejects a part
        log.warning("the split Moonshine encoder did not load (%s): running it whole", exc)
    return WholeEncoder(session(path))
