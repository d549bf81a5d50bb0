"""Open an ONNX file safely: never follow external data, then run onnx's full check.

External data locations are file paths chosen by whoever wrote the model (``../../etc/...``,
absolute paths, symlinks, hard links: CVE-2022-25882, CVE-2024-27318 and later bypasses). We
ship single-file models, so a model that references external data at all is refused. Imports
onnx only, so serving can use it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import onnx

from pokedex.errors import PokedexError


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in a graph: initializers, sparse ones, and those of its nodes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    """Tensors held in node attributes (Constant values...), subgraphs (If, Loop) included."""
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            if attr.HasField("sparse_tensor"):
                yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for sub in attr.graphs:
                yield from _graph_tensors(sub)


def external_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of the tensors of ``model`` that point at external data."""
    tensors = [*_graph_tensors(model.graph)]
    for function in model.functions:
        tensors.extend(_node_tensors(function.node))
    return [
        t.name for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data
    ]


def load_onnx_checked(path: Path) -> onnx.ModelProto:
    """Load an ONNX file without following external data, refuse any, run the full check."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError family
        raise PokedexError(f"{path}: not a readable ONNX model: {exc}") from exc
    external = external_tensors(model)
    if external:
        names = ", ".join(external[:3])
        raise PokedexError(f"{path}: refusing an ONNX model with external data ({names})")
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise PokedexError(f"{path}: ONNX check failed: {str(exc).splitlines()[0]}") from exc
    return model
