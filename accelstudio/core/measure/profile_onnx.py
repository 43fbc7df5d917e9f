"""ONNX Runtime's own per-node trace, read back and mapped onto the layer table's names.

The session is built with the same SessionOptions as the timed one (runtimes.ort_session_options) plus
profiling, whose JSON trace is written into a private temporary folder that is deleted afterwards (never the
working folder). Only the node events inside the recorded calls' "model_run" windows count, so warm-up calls
and session start-up are left out.

ONNX Runtime rewrites the graph before running it, so a traced node's name is not always a node of the file:
fused kernels keep the first node's name ("fused /fc1/Gemm"), copies get "_token_<n>", NCHWc convolutions are
named after the value they produce ("/Relu_output_0_nchwc"), and the quantizer's helpers extend their
layer's node name ("/fc1/Gemm_MatMul_quant_scales_mul"). `NodeMap` undoes these: it strips the suffixes, finds
the node by name or by the value it produces, takes its weighted layer, and for a fused Conv/Gemm/MatMul kernel
named after a later node (the Relu or residual Add it absorbed) walks back through the absorbed nodes to the
weighted node of the same kind; when two candidates remain (a residual Add of two convolutions), the one no
other kernel claimed is taken.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import onnx

from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.op_timing import OpTiming, element_precision, undisturbed
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.progress import CancelToken, check_cancel

INT8_KERNELS = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "QGemm", "DynamicQuantizeMatMul",
                "MatMulIntegerToFloat", "QAttention", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
                "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax",
                "DynamicQuantizeLSTM", "QEmbedLayerNormalization"}
CONVERSIONS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast"}
# nodes a Conv/Gemm/MatMul kernel can absorb after itself (activation, normalization, residual add, bias)
ABSORBABLE = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh", "Gelu", "FastGelu", "Erf", "Add",
              "Sum", "Mul", "Div", "Sub", "BatchNormalization", "Identity", "QuantizeLinear", "DequantizeLinear",
              "Cast", "HardSwish", "Elu", "Softplus"}
WALK_DEPTH = 5
_SUFFIXES = (re.compile(r"_token_\d+$"), re.compile(r"_nchwc$"), re.compile(r"_kernel_time$"))
_EXPORTER_NUMBER = re.compile(r"^_\d+$")
_QUANT_STEM = re.compile(r"(_MatMul)?_quant$")


def profile_onnx(handle: ModelHandle, settings: RuntimeSettings, inputs: dict[str, np.ndarray], calls: int,
                 warmup: int, cancel: CancelToken | None = None) -> tuple[list[OpTiming], int]:
    """Per-node timings of the undisturbed ones of `calls` recorded calls of a profiling session (after
    `warmup` discarded ones), and how many calls they cover."""
    from accelstudio.core.measure.runtimes import onnx_bytes

    data = onnx_bytes(handle, settings.batch)
    model = handle.onnx_model if handle.backend == "onnx" else onnx.load_from_string(data)
    with tempfile.TemporaryDirectory(prefix="accelstudio-profile-") as tmp:
        events = _trace(data, settings, inputs, calls, warmup, Path(tmp), cancel)
    return timings_from_trace(events, model, warmup)


def _trace(data: bytes, settings: RuntimeSettings, inputs, calls: int, warmup: int, folder: Path,
           cancel) -> list[dict]:
    import onnxruntime as ort

    from accelstudio.core.errors import RuntimeUnavailableError
    from accelstudio.core.measure.runtimes import OrtPredictor, ort_session_options, requested_provider

    opts = ort_session_options(settings)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(folder / "ort-profile")
    provider = requested_provider(settings) or "CPUExecutionProvider"
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(data, opts, providers=providers)
    except Exception as exc:  # ORT reports graph problems as several exception types
        raise RuntimeUnavailableError(f"ONNX Runtime cannot create a profiling session: {exc}") from exc
    call = OrtPredictor(session, settings.device, provider).bind(inputs)
    for i in range(warmup + calls):
        if i % 8 == 0:
            check_cancel(cancel)
        call()
    path = Path(session.end_profiling())
    if not path.is_absolute():  # older ORT versions return the name relative to the prefix's folder
        path = folder / path.name
    return json.loads(path.read_text())


def timings_from_trace(events: list[dict], model: onnx.ModelProto, skip_runs: int) -> tuple[list[OpTiming], int]:
    """OpTimings of the node events inside the model_run windows after the first `skip_runs` ones, leaving out
    disturbed calls (op_timing.undisturbed), and the number of calls kept."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[skip_runs:]
    keep = undisturbed([float(e.get("dur", 0)) for e in runs])
    windows = [(e["ts"], e["ts"] + e.get("dur", 0)) for e, k in zip(runs, keep) if k]
    if not windows:
        return [], 0
    nodes: dict[str, dict] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        if not any(lo <= e["ts"] <= hi for lo, hi in windows):
            continue
        key = e["name"][: -len("_kernel_time")]
        rec = nodes.setdefault(key, {"us": 0.0, "n": 0, "args": e.get("args", {})})
        rec["us"] += float(e.get("dur", 0))
        rec["n"] += 1
    mapper = NodeMap(model)
    rows = mapper.rows({k: v["args"].get("op_name", "") for k, v in nodes.items()})
    return [_timing(rows[k], rec) for k, rec in nodes.items()], len(windows)


def _timing(row: str, rec: dict) -> OpTiming:
    args = rec["args"]
    op = args.get("op_name", "")
    return OpTiming(row=row, op_type=op, total_us=rec["us"], occurrences=rec["n"],
                    precision=node_precision(op, args), provider=args.get("provider", ""),
                    conversion=op in CONVERSIONS)


def node_precision(op: str, args: dict) -> str:
    """What one traced kernel computed in: int8 for integer kernels, else its float inputs' element type
    (its outputs' for a conversion), int8 for data movement of int8 tensors, "other" otherwise."""
    if op in INT8_KERNELS:
        return "int8"
    if op in ("Shape", "Size"):  # reads only the header of its input
        return "other"
    key = "output_type_shape" if op in CONVERSIONS else "input_type_shape"
    found = [element_precision(next(iter(t), "")) for t in args.get(key, []) if isinstance(t, dict)]
    found = [p for p in found if p is not None]
    floats = [p for p in found if p in ("fp32", "fp16", "bf16")]
    if floats:
        return floats[0]
    return found[0] if found else "other"


def kernel_family(op: str) -> str | None:
    """"conv" or "matmul" for kernels that do a layer's arithmetic (fused and quantized forms too)."""
    if "Conv" in op:
        return "conv"
    if "MatMul" in op or "Gemm" in op or op in ("Attention", "QAttention"):
        return "matmul"
    return None


class NodeMap:
    """Traced node names -> profile row names (layer names where a layer matches) for one ONNX graph."""

    def __init__(self, model: onnx.ModelProto):
        from accelstudio.core.model.onnx_layers import weighted_nodes

        graph = model.graph
        self.by_name = {n.name: n for n in graph.node if n.name}
        self.producer = {out: n for n in graph.node for out in n.output if out}
        self.layer_of: dict[int, str] = {}
        self.stems: list[tuple[str, str]] = []  # (node-name stem, layer) for the quantizer's helper nodes
        for w in weighted_nodes(model):
            self.layer_of[id(w.node)] = w.name
            if w.node.name:
                self.stems.append((_QUANT_STEM.sub("", w.node.name), w.name))
        self.stems.sort(key=lambda s: -len(s[0]))

    def rows(self, ops: dict[str, str]) -> dict[str, str]:
        """Row name per traced node name (`ops` maps a traced name to its kernel's op type)."""
        out: dict[str, str] = {}
        ambiguous: dict[str, list[str]] = {}
        for key, op in ops.items():
            row, candidates = self._resolve(key, op)
            out[key] = row
            if len(candidates) > 1:
                ambiguous[key] = candidates
        claimed = set(out.values())
        for key, candidates in ambiguous.items():  # a residual Add of two convolutions: the unclaimed one
            free = [c for c in candidates if c not in claimed]
            if free:
                out[key] = free[0]
                claimed.add(free[0])
        return out

    def _resolve(self, key: str, op: str) -> tuple[str, list[str]]:
        base = _strip(key)
        node = self.by_name.get(base) or self.producer.get(base) or self._enclosing(base)
        if node is None:
            return self._stem_layer(base) or key, []
        layer = self.layer_of.get(id(node))
        family = kernel_family(op)
        if layer is not None and (family is None or kernel_family(node.op_type) == family):
            return layer, []
        if family is not None:
            candidates = self._walk_back(node, family)
            if candidates:
                return candidates[0], candidates
        return self._stem_layer(node.name or base) or node.name or base, []

    def _enclosing(self, name: str) -> onnx.NodeProto | None:
        """The node a rewrite named by extending its path ("/attn/MatMul/MatMulScaleFusion/" from "/attn/MatMul")."""
        parts = name.rstrip("/").split("/")
        while len(parts) > 2:
            parts.pop()
            node = self.by_name.get("/".join(parts))
            if node is not None:
                return node
        return None

    def _stem_layer(self, name: str) -> str | None:
        for stem, layer in self.stems:
            rest = name[len(stem):]
            if name.startswith(stem) and rest.startswith("_") and not _EXPORTER_NUMBER.match(rest):
                return layer
        return None

    def _walk_back(self, node: onnx.NodeProto, family: str) -> list[str]:
        """Weighted nodes of `family` whose output reaches `node` through absorbable nodes only."""
        found: list[str] = []
        frontier, seen = [node], {id(node)}
        for _ in range(WALK_DEPTH):
            nxt = []
            for n in frontier:
                if n.op_type not in ABSORBABLE:
                    continue
                for value in n.input:
                    src = self.producer.get(value)
                    if src is None or id(src) in seen:
                        continue
                    seen.add(id(src))
                    layer = self.layer_of.get(id(src))
                    if layer is not None and kernel_family(src.op_type) == family:
                        found.append(layer)
                    else:
                        nxt.append(src)
            frontier = nxt
        return found


def _strip(name: str) -> str:
    name = name.removeprefix("fused ")
    changed = True
    while changed:
        changed = False
        for pattern in _SUFFIXES:
            new = pattern.sub("", name)
            if new != name and new:
                name, changed = new, True
    return name
