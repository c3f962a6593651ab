"""Read an ORT-format model (the flatbuffer ``.ort`` files of the Moonshine wheel) back into an
ONNX ``ModelProto``, so the graph can be rewritten (see ``engines.quantize``).

onnxruntime ships the flatbuffer schema readers (``onnxruntime.tools.ort_format_model``) but no
converter back to ONNX; this walks nodes, attributes (including the ``If`` subgraphs of the merged
decoder), initializers and the graph's typed inputs/outputs.
"""

from __future__ import annotations

from pathlib import Path


def _fbs():
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py import fbs
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import InferenceSession  # noqa: F401
    return fbs


def _s(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else (value or "")


def _tensor(t):
    from onnx import TensorProto

    proto = TensorProto()
    proto.name = _s(t.Name())
    proto.dims.extend(int(t.Dims(i)) for i in range(t.DimsLength()))
    proto.data_type = int(t.DataType())
    if proto.data_type == TensorProto.STRING:
        proto.string_data.extend(t.StringData(i) for i in range(t.StringDataLength()))
    elif t.RawDataLength():
        proto.raw_data = t.RawDataAsNumpy().tobytes()
    return proto


def _value_info(vi):
    from onnx import helper

    name = _s(vi.Name())
    ti = vi.Type()
    if ti is None or ti.ValueType() != 1:        # only tensors appear in these models
        return helper.make_empty_tensor_value_info(name)
    fbs = _fbs()
    tts = fbs.TensorTypeAndShape.TensorTypeAndShape()
    tts.Init(ti.Value().Bytes, ti.Value().Pos)
    shape = tts.Shape()
    dims = None
    if shape is not None:
        dims = []
        for i in range(shape.DimLength()):
            value = shape.Dim(i).Value()
            if value is None or value.DimType() == 0:
                dims.append(None)
            elif value.DimType() == 1:
                dims.append(int(value.DimValue()))
            else:
                dims.append(_s(value.DimParam()))
    return helper.make_tensor_value_info(name, int(tts.ElemType()), dims)


def _attribute(a):
    from onnx import AttributeProto

    proto = AttributeProto()
    proto.name = _s(a.Name())
    kind = int(a.Type())
    proto.type = kind
    if kind == 1:
        proto.f = a.F()
    elif kind == 2:
        proto.i = a.I()
    elif kind == 3:
        proto.s = a.S() or b""
    elif kind == 4:
        proto.t.CopyFrom(_tensor(a.T()))
    elif kind == 5:
        proto.g.CopyFrom(_graph(a.G()))
    elif kind == 6:
        proto.floats.extend(a.Floats(i) for i in range(a.FloatsLength()))
    elif kind == 7:
        proto.ints.extend(int(a.Ints(i)) for i in range(a.IntsLength()))
    elif kind == 8:
        proto.strings.extend(a.Strings(i) for i in range(a.StringsLength()))
    elif kind == 9:
        proto.tensors.extend(_tensor(a.Tensors(i)) for i in range(a.TensorsLength()))
    elif kind == 10:
        proto.graphs.extend(_graph(a.Graphs(i)) for i in range(a.GraphsLength()))
    else:
        raise ValueError(f"attribute {proto.name!r} has an unsupported type {kind}")
    return proto


def _graph(g):
    from onnx import GraphProto, NodeProto

    graph = GraphProto()
    graph.name = "graph"
    infos = {}
    for i in range(g.NodeArgsLength()):
        vi = g.NodeArgs(i)
        infos[_s(vi.Name())] = vi
    initializers = {}
    for i in range(g.InitializersLength()):
        t = _tensor(g.Initializers(i))
        initializers[t.name] = t
    if g.SparseInitializersLength():
        raise ValueError("sparse initializers are not supported")
    graph.initializer.extend(initializers.values())
    nodes = [g.Nodes(i) for i in range(g.NodesLength())]
    for n in sorted((n for n in nodes if n is not None), key=lambda n: n.Index()):
        if int(n.Type()) != 0:
            raise ValueError(f"node {_s(n.Name())!r} is a fused node; only plain graphs convert")
        node = NodeProto()
        node.name = _s(n.Name())
        node.op_type = _s(n.OpType())
        node.domain = _s(n.Domain())
        node.input.extend(_s(n.Inputs(i)) for i in range(n.InputsLength()))
        node.output.extend(_s(n.Outputs(i)) for i in range(n.OutputsLength()))
        node.attribute.extend(_attribute(n.Attributes(i)) for i in range(n.AttributesLength()))
        graph.node.append(node)
    for i in range(g.InputsLength()):
        name = _s(g.Inputs(i))
        if name not in initializers:
            graph.input.append(_value_info(infos[name]))
    for i in range(g.OutputsLength()):
        name = _s(g.Outputs(i))
        graph.output.append(_value_info(infos[name]))
    return graph


def load(path: Path):
    """The ``.ort`` file at ``path`` as an ``onnx.ModelProto`` (same nodes, weights and opsets)."""
    from onnx import helper

    fbs = _fbs()
    data = Path(path).read_bytes()
    if not fbs.InferenceSession.InferenceSession.InferenceSessionBufferHasIdentifier(data, 0):
        raise ValueError(f"{path} is not an ORT-format model")
    session = fbs.InferenceSession.InferenceSession.GetRootAs(data, 0)
    m = session.Model()
    opsets = [helper.make_opsetid(_s(m.OpsetImport(i).Domain()), int(m.OpsetImport(i).Version()))
              for i in range(m.OpsetImportLength())]
    model = helper.make_model(_graph(m.Graph()), opset_imports=opsets,
                              producer_name=_s(m.ProducerName()) or "ort_to_onnx")
    model.ir_version = int(m.IrVersion())
    return model
