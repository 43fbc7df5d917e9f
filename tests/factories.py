"""Build good and hostile model files in a folder, for loader tests and hostile-input tests.

Every function takes the folder to write into (pytest's tmp_path) and returns the path of the file it made.
They are small and fast (milliseconds, except torch.export which takes about a second).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from accelstudio.core.model.architectures import get_architecture
from accelstudio.core.model.examples import get_example

HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not found</body></html>\n"


class TinyConvNet(nn.Module):
    """A small CNN (3 input channels) that is not a bundled architecture."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


class TinyMLP(nn.Module):
    """A small MLP with 8 inputs and 3 outputs."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class MarkerPayload:
    """Pickles to a call of os.mkdir(marker): loading it unsafely creates the marker folder."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


# ---------------------------------------------------------------- good files

def onnx_example(folder: Path, name: str = "digits-mlp") -> Path:
    """A copy of a bundled example's ONNX file."""
    return Path(shutil.copy(get_example(name).onnx_path, folder / f"{name}.onnx"))


def _mlp_graph(weights_as_constants: bool, dynamic: bool = True) -> tuple[onnx.GraphProto, np.ndarray]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    batch = "batch" if dynamic else 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    nodes, inits = [], []
    if weights_as_constants:
        nodes += [helper.make_node("Constant", [], ["W"], value=numpy_helper.from_array(w, "W_value")),
                  helper.make_node("Constant", [], ["B"], value=numpy_helper.from_array(b, "B_value"))]
    else:
        inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    nodes += [helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
              helper.make_node("Add", ["h", "B"], ["z"], name="bias"),
              helper.make_node("Relu", ["z"], ["y"], name="relu")]
    return helper.make_graph(nodes, "mlp", [x], [y], initializer=inits), w


def onnx_mlp(folder: Path, *, opset: int = 13, constant_weights: bool = False, name: str = "mlp.onnx",
             ir_version: int = 7) -> Path:
    """A tiny hand-built ONNX MLP (input x: (batch, 8)), weights as initializers or Constant nodes."""
    graph, _ = _mlp_graph(constant_weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    path = folder / name
    onnx.save_model(model, path)
    return path


def onnx_with_external_data(folder: Path, location: str = "mlp.weights") -> Path:
    """A tiny ONNX MLP whose initializers live in a data file beside it."""
    graph, _ = _mlp_graph(False)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    path = folder / "external.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=0)
    return path


def torchscript_file(folder: Path) -> Path:
    """torch.jit.save of a scripted TinyConvNet (runs code when loaded)."""
    path = folder / "tiny_script.pt"
    torch.jit.save(torch.jit.script(TinyConvNet().eval()), str(path))
    return path


def pt2_file(folder: Path) -> Path:
    """torch.export.save of TinyMLP with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(TinyMLP().eval(), (torch.randn(4, 8),), dynamic_shapes={"x": {0: batch}})
    path = folder / "tiny.pt2"
    torch.export.save(program, str(path))
    return path


def pickled_module_file(folder: Path) -> Path:
    """torch.save of a whole TinyConvNet (a pickle that imports the class)."""
    path = folder / "tiny_module.pt"
    torch.save(TinyConvNet().eval(), path)
    return path


def safetensors_file(folder: Path, architecture: str = "digits-mlp") -> Path:
    """Weights of a freshly built bundled architecture in safetensors form."""
    from safetensors.torch import save_file

    path = folder / f"{architecture}.safetensors"
    save_file(get_architecture(architecture).build().state_dict(), str(path))
    return path


def state_dict_file(folder: Path, architecture: str = "digits-mlp", *, legacy: bool = False,
                    wrap_key: str | None = None) -> Path:
    """torch.save of a bundled architecture's state dict (zip or legacy format, optionally under a key)."""
    sd = get_architecture(architecture).build().state_dict()
    obj = {wrap_key: sd, "epoch": 3} if wrap_key else sd
    path = folder / f"{architecture}{'_legacy' if legacy else ''}.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


# ---------------------------------------------------------------- bad files

def empty_file(folder: Path, name: str = "empty.onnx") -> Path:
    """A 0-byte file."""
    path = folder / name
    path.write_bytes(b"")
    return path


def random_bytes_file(folder: Path, name: str = "random.onnx", size: int = 4096, seed: int = 1) -> Path:
    """Random bytes (not starting like any model format)."""
    data = bytearray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    data[0] = 0xFE  # no accidental ONNX/zip/pickle signature
    path = folder / name
    path.write_bytes(bytes(data))
    return path


def truncated_copy(src: Path, folder: Path, fraction: float = 0.5) -> Path:
    """The first `fraction` of `src`'s bytes, under the same name in `folder`."""
    data = Path(src).read_bytes()
    path = folder / f"truncated_{Path(src).name}"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def text_file(folder: Path, name: str = "page.onnx", content: bytes = HTML_PAGE) -> Path:
    """A text file (an HTML error page by default) under a model-like name."""
    path = folder / name
    path.write_bytes(content)
    return path


def jpeg_like_file(folder: Path, name: str = "photo.jpg") -> Path:
    """Bytes that start like a JPEG image."""
    path = folder / name
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8)
    return path


def sparse_huge_onnx(folder: Path, size: int = 2**31 + 10) -> Path:
    """A sparse file of `size` bytes named .onnx: costs no disk, must be refused on size alone."""
    path = folder / "huge.onnx"
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def onnx_without_graph(folder: Path) -> Path:
    """Bytes that parse as a ModelProto with an IR version but no graph."""
    path = folder / "nograph.onnx"
    path.write_bytes(b"\x08\x07")
    return path


def onnx_custom_op(folder: Path) -> Path:
    """A model using an operator from an unknown custom domain."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Mystery", ["x"], ["y"], domain="com.example.custom")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), ir_version=8,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.custom", 1)])
    path = folder / "custom_op.onnx"
    onnx.save_model(model, path)
    return path


def onnx_future_opset(folder: Path) -> Path:
    """A model that declares an opset newer than the installed onnx knows."""
    graph, _ = _mlp_graph(False)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx.defs.onnx_opset_version() + 5)],
                              ir_version=7)
    path = folder / "future.onnx"
    onnx.save_model(model, path)
    return path


EXTERNAL_DATA_ATTACKS = ("dotdot", "absolute", "symlink", "missing", "offset", "subgraph_dotdot")


def hostile_external_onnx(folder: Path, attack: str) -> Path:
    """An ONNX model in folder/model/ whose external data reference is hostile (see EXTERNAL_DATA_ATTACKS).

    The "outside" file, folder/secret.bin, holds bytes that would give the tensor a valid size.
    """
    model_dir = folder / "model"
    model_dir.mkdir(exist_ok=True)
    graph, w = _mlp_graph(False)
    secret = folder / "secret.bin"
    secret.write_bytes(w.tobytes())
    inside = model_dir / "weights.bin"
    location, offset = "weights.bin", 0
    if attack in ("dotdot", "subgraph_dotdot"):
        location = "../secret.bin"
    elif attack == "absolute":
        location = str(secret.resolve())
    elif attack == "symlink":
        inside.symlink_to(secret.resolve())
    elif attack == "missing":
        location = "missing.bin"
    elif attack == "offset":
        inside.write_bytes(w.tobytes())
        offset = w.nbytes + 64
    else:
        raise ValueError(f"unknown attack {attack}")
    tensor = graph.initializer[0]
    if attack == "subgraph_dotdot":
        tensor = _move_weight_into_subgraph(graph)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(w.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    path = model_dir / f"{attack}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _move_weight_into_subgraph(graph: onnx.GraphProto) -> onnx.TensorProto:
    """Produce W from an If node whose branches hold W as a Constant; return that branch tensor."""
    w_init = graph.initializer[0]
    out = helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w_init.dims))
    branch = lambda n: helper.make_graph([helper.make_node("Constant", [], ["W"], value=w_init)], n, [], [out])  # noqa
    cond = numpy_helper.from_array(np.array(True), "cond")
    graph.node.insert(0, helper.make_node("If", ["cond"], ["W"], then_branch=branch("then"),
                                          else_branch=branch("else")))
    del graph.initializer[0]
    graph.initializer.append(cond)
    return graph.node[0].attribute[0].g.node[0].attribute[0].t


def malicious_pickle_file(folder: Path, marker: Path, fmt: str = "zip") -> Path:
    """A file whose unpickling would create `marker` (a folder). fmt: raw, raw0 (protocol 0), zip, legacy."""
    payload = MarkerPayload(marker)
    path = folder / f"evil_{fmt}.pt"
    if fmt == "raw":
        path.write_bytes(pickle.dumps(payload, protocol=4))
    elif fmt == "raw0":
        path.write_bytes(pickle.dumps(payload, protocol=0))
    elif fmt in ("zip", "legacy"):
        torch.save({"weight": torch.zeros(3), "payload": payload}, path, _use_new_zipfile_serialization=fmt == "zip")
    else:
        raise ValueError(f"unknown format {fmt}")
    return path


SAFETENSORS_ATTACKS = ("huge_header", "bad_json", "out_of_bounds", "unknown_dtype", "overlap", "not_object")


def hostile_safetensors(folder: Path, attack: str) -> Path:
    """A .safetensors file with a hostile header (see SAFETENSORS_ATTACKS)."""
    data = np.arange(4, dtype=np.float32).tobytes()
    entry = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    header: object = {"w": entry}
    if attack == "out_of_bounds":
        header = {"w": {**entry, "data_offsets": [1 << 40, (1 << 40) + 16]}}
    elif attack == "unknown_dtype":
        header = {"w": {**entry, "dtype": "X99"}}
    elif attack == "overlap":
        data = data * 2
        header = {"w": entry, "v": {**entry, "data_offsets": [8, 24]}}
    elif attack == "not_object":
        header = [1, 2, 3]
    raw = json.dumps(header).encode()
    if attack == "bad_json":
        raw = b'{"w": {"dtype": "F32", "shape": [4], '
    length = struct.pack("<Q", len(raw))
    if attack == "huge_header":
        length = struct.pack("<Q", 1 << 62)
    elif attack not in SAFETENSORS_ATTACKS:
        raise ValueError(f"unknown attack {attack}")
    path = folder / f"{attack}.safetensors"
    path.write_bytes(length + raw + data)
    return path


def state_dict_shape_exceeds_storage(folder: Path) -> Path:
    """A torch.save zip whose tensor claims 64 elements over a 16-element storage."""
    good = folder / "good_sd.pt"
    torch.save({"w": torch.arange(16.0)}, good)
    path = folder / "shape_exceeds_storage.pt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("data.pkl"):
                assert b"K\x00K\x10\x85" in data, "unexpected pickle layout"
                data = data.replace(b"K\x00K\x10\x85", b"K\x00K\x40\x85")  # size (16,) -> (64,)
            zout.writestr(info, data)
    good.unlink()
    return path


def zip_bomb_pt(folder: Path, inflated: int = 64 * 1024**2) -> Path:
    """A torch-looking zip whose deflated member expands to `inflated` bytes of zeros."""
    path = folder / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb/data.pkl", pickle.dumps({}, protocol=2))
        with z.open("bomb/data/0", "w") as f:
            chunk = bytes(1 << 20)
            for _ in range(inflated >> 20):
                f.write(chunk)
    return path


def not_a_torch_zip(folder: Path, name: str = "archive.pt") -> Path:
    """A zip archive with unrelated content under a .pt name."""
    path = folder / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    return path


# ---------------------------------------------------------------- files that misbehave past loading

def _save_small_onnx(nodes, folder: Path, name: str, initializers=(), out_dims=("N", 4), opset: int = 13) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_dims))
    model = helper.make_model(helper.make_graph(nodes, name, [x], [y], list(initializers)),
                              opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    onnx.checker.check_model(model)
    path = folder / f"{name}.onnx"
    onnx.save_model(model, path)
    return path


def onnx_einsum_crasher(folder: Path) -> Path:
    """Input x: (N, 4). Passes onnx.checker and session creation; ONNX Runtime 1.32 segfaults in run()
    (an Einsum whose second input name is empty)."""
    node = helper.make_node("Einsum", ["x", ""], ["y"], equation="ij,jk->ik", name="einsum")
    return _save_small_onnx([node], folder, "einsum_crash", out_dims=("N", "K"))


def onnx_constant_of_shape_bomb(folder: Path, shape: tuple[int, ...] = (100_000, 100_000, 100)) -> Path:
    """Input x: (N, 4). A ConstantOfShape asks for a float tensor of `shape` (default 4 TB), reduced to a scalar
    and added to x: a memory bomb that only goes off when the graph runs."""
    dims = numpy_helper.from_array(np.array(shape, np.int64), "bomb_shape")
    nodes = [helper.make_node("ConstantOfShape", ["bomb_shape"], ["big"],
                              value=numpy_helper.from_array(np.array([1.0], np.float32))),
             helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
             helper.make_node("Add", ["x", "total"], ["y"])]
    return _save_small_onnx(nodes, folder, "constant_of_shape_bomb", [dims])


def onnx_endless_loop(folder: Path) -> Path:
    """Input x: (N, 4). A Loop with a trip count of 2**62 and an always-true condition: it never ends."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]), helper.make_node("Identity", ["v"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["N", 4])])
    inits = [numpy_helper.from_array(np.array(2**62, np.int64), "trips"),
             numpy_helper.from_array(np.array(True), "always")]
    return _save_small_onnx([helper.make_node("Loop", ["trips", "always", "x"], ["y"], body=body)], folder,
                            "endless_loop", inits)


def onnx_external_length_past_end(folder: Path) -> Path:
    """Like hostile_external_onnx(folder, "offset") but the declared length runs past the data file's end."""
    path = hostile_external_onnx(folder, "offset")
    model = onnx.load_model(str(path), load_external_data=False)
    tensor = model.graph.initializer[0]
    for entry in tensor.external_data:
        if entry.key == "offset":
            entry.value = "0"
        elif entry.key == "length":
            entry.value = str(int(entry.value) + 64)
    out = path.with_name("length.onnx")
    out.write_bytes(model.SerializeToString())
    path.unlink()
    return out


class _CallPayload:
    """Pickles to a call of `fn(*args)`."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


CRASHER_ACTIONS = ("abort", "segfault", "stdout_garbage")


def crashing_pickle_file(folder: Path, action: str) -> Path:
    """A raw pickle that, once trusted, aborts the process (os.abort), segfaults it (ctypes.string_at(0)) or
    writes garbage to file descriptor 1 (and then is not a model). Without trust it must never run."""
    import ctypes

    calls = {"abort": (os.abort, ()), "segfault": (ctypes.string_at, (0,)),
             "stdout_garbage": (os.write, (1, b'garbage\n{"type": "result", "run": {"status": "done"}}\n\xff\n'))}
    if action not in calls:
        raise ValueError(f"unknown action {action}")
    path = folder / f"crash_{action}.pkl"
    path.write_bytes(pickle.dumps(_CallPayload(*calls[action]), protocol=4))
    return path


def _crc32_of_zeros(n_mib: int) -> int:
    """zlib.crc32 of n_mib MiB of zero bytes, computed with GF(2) matrix powers instead of hashing them all."""
    import zlib

    mib = bytes(1 << 20)
    # Feeding zeros is linear on the inverted register: column j is the image of bit j.
    cols = [~zlib.crc32(mib, ~(1 << j) & 0xFFFFFFFF) & 0xFFFFFFFF for j in range(32)]

    def apply(matrix: list[int], vec: int) -> int:
        out, j = 0, 0
        while vec:
            if vec & 1:
                out ^= matrix[j]
            vec >>= 1
            j += 1
        return out

    state, power = 0xFFFFFFFF, cols
    while n_mib:
        if n_mib & 1:
            state = apply(power, state)
        power = [apply(power, c) for c in power]
        n_mib >>= 1
    return ~state & 0xFFFFFFFF


def zip_bomb_pt_gigabytes(folder: Path, gib: int = 3) -> Path:
    """A torch-looking zip (a few MB) whose deflated member truly expands to `gib` GiB of zeros (valid CRC).

    Built without compressing gigabytes: after a full flush, each MiB of zeros deflates to the same bytes."""
    import zlib

    if not 1 <= gib <= 3:
        raise ValueError("gib must be 1-3 (no ZIP64 here)")
    n_mib = gib * 1024
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(bytes(1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "deflate output not periodic"
    tail = co.flush(zlib.Z_FINISH)
    pkl = pickle.dumps({}, protocol=2)
    members = [("bomb/data.pkl", 0, zlib.crc32(pkl), len(pkl), len(pkl), [pkl]),
               ("bomb/data/0", 8, _crc32_of_zeros(n_mib), len(block) * n_mib + len(tail), n_mib << 20,
                None)]
    path = folder / "gigabomb.pt"
    central = []
    with open(path, "wb") as f:
        for name, method, crc, csize, usize, chunks in members:
            offset = f.tell()
            raw = name.encode()
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, csize, usize, len(raw), 0))
            f.write(raw)
            if chunks is None:
                for _ in range(n_mib):
                    f.write(block)
                f.write(tail)
            else:
                f.writelines(chunks)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, csize,
                                       usize, len(raw), 0, 0, 0, 0, 0, offset) + raw)
        start = f.tell()
        for entry in central:
            f.write(entry)
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), f.tell() - start, start, 0))
    return path


# -- a small BERT-like encoder exported with dynamic axes (inspection, FLOPs, size prediction) ----------------

class TinyEncoder(nn.Module):
    """A BERT-like sentence encoder: token + position embeddings (Gather), attention written with MatMul and
    Softmax, LayerNorm, a GELU feed-forward, residual Adds, mean pooling. `analytic_matmul_flops` counts the
    FLOPs of its matrix products at a (batch, seq) shape the way the inspection must count them."""

    def __init__(self, vocab: int = 1000, dim: int = 64, heads: int = 4, layers: int = 2, ffn: int = 128,
                 max_len: int = 128):
        super().__init__()
        self.dim, self.heads, self.layers_n, self.ffn = dim, heads, layers, ffn
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "qkv": nn.Linear(dim, 3 * dim), "out": nn.Linear(dim, dim), "norm1": nn.LayerNorm(dim),
            "up": nn.Linear(dim, ffn), "down": nn.Linear(ffn, dim), "norm2": nn.LayerNorm(dim)})
            for _ in range(layers))
        self.head = nn.Linear(dim, dim)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        batch, seq = input_ids.shape
        positions = torch.arange(seq, device=input_ids.device).unsqueeze(0)
        h = self.tok(input_ids) + self.pos(positions)
        d = self.dim // self.heads
        for block in self.blocks:
            q, k, v = block["qkv"](h).split(self.dim, dim=-1)
            q, k, v = (t.reshape(batch, seq, self.heads, d).transpose(1, 2) for t in (q, k, v))
            att = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5, dim=-1)
            mixed = (att @ v).transpose(1, 2).reshape(batch, seq, self.dim)
            h = block["norm1"](h + block["out"](mixed))
            h = block["norm2"](h + block["down"](torch.nn.functional.gelu(block["up"](h))))
        return self.head(h.mean(dim=1))

    def analytic_matmul_flops(self, batch: int, seq: int) -> int:
        """2 x multiply-accumulates of every Linear and of the two attention products at (batch, seq)."""
        tokens, dim = batch * seq, self.dim
        per_block = (dim * 3 * dim + dim * dim + dim * self.ffn + self.ffn * dim) * tokens
        per_block += 2 * batch * self.heads * seq * seq * (dim // self.heads)  # q @ k^T and att @ v
        return 2 * (self.layers_n * per_block + batch * dim * dim)


def tiny_encoder_onnx(folder: Path, name: str = "encoder.onnx", seed: int = 0, **sizes) -> tuple[Path, TinyEncoder]:
    """Export a TinyEncoder with dynamic (batch, sequence) axes with the legacy exporter; returns (path, module)."""
    torch.manual_seed(seed)
    module = TinyEncoder(**sizes).eval()
    path = folder / name
    ids = torch.randint(0, module.tok.num_embeddings, (2, 16))
    torch.onnx.export(module, (ids,), str(path), dynamo=False, input_names=["input_ids"],
                      output_names=["embedding"], opset_version=17,
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "embedding": {0: "batch"}})
    return path, module


# ---------------------------------------------------------------- a BERT-like sentence encoder

OUTLIER_SCALE = 20.0


class _BertLayer(nn.Module):
    """A post-norm BERT layer: explicit q/k/v/out attention with an additive padding mask, GELU MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / self.head_dim ** 0.5 + mask_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        x = self.norm1(x + self.out(ctx))
        return self.norm2(x + self.fc2(nn.functional.gelu(self.fc1(x))))


class TinyBertEncoder(nn.Module):
    """A BERT-like sentence encoder as sentence-transformers exports them: token and position embedding
    gathers, embedding LayerNorm, post-norm layers of explicit multi-head attention (MatMul + Softmax) with the
    padding mask added to the scores as a large negative number, GELU MLPs, residual Adds, and mean pooling over
    the unmasked tokens. A few embedding channels carry large values (outlier features, as trained models')."""

    def __init__(self, vocab: int = 1000, dim: int = 64, heads: int = 4, depth: int = 2, max_len: int = 128,
                 seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(_BertLayer(dim, heads) for _ in range(depth))
        with torch.no_grad():  # outlier channels in the embedding table and in every LayerNorm's scale
            self.tokens.weight[:, :3] *= OUTLIER_SCALE
            for norm in [m for m in self.modules() if isinstance(m, nn.LayerNorm)]:
                norm.weight[:3] = OUTLIER_SCALE

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.norm(self.tokens(input_ids) + self.positions(pos))
        keep = attention_mask.to(torch.float32)
        mask_bias = (1.0 - keep)[:, None, None, :] * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, mask_bias)
        return (x * keep[:, :, None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1.0)


def bert_like_onnx(folder: Path, seed: int = 0) -> Path:
    """TinyBertEncoder exported with dynamic batch and sequence axes: inputs `input_ids` and `attention_mask`
    (int64 [batch, seq]), output `embedding` [batch, 64]."""
    model = TinyBertEncoder(seed=seed).eval()
    path = folder / "bert_like.onnx"
    ids, mask = bert_inputs(2, seq=16, seed=seed)
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(model, (torch.from_numpy(ids), torch.from_numpy(mask)), str(path),
                      input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return path


def bert_inputs(n: int, seq: int = 16, seed: int = 1, vocab: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """`n` padded sequences for TinyBertEncoder with a fixed seed: token ids and an attention mask whose
    sequences have 4 to `seq` real tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, (n, seq)).astype(np.int64)
    lengths = rng.integers(min(4, seq), seq + 1, n)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return ids * mask, mask


def onnx_unmerged_batch_dims(folder: Path, width: int = 1024) -> Path:
    """A MatMul with a width x width float32 weight (4 MiB by default) whose output is added to a second input
    declared with another symbolic batch name ('N' vs 'M'): ONNX Runtime's symbolic shape inference cannot merge
    the two, gives up, and then saves 'sym_shape_infer_temp.onnx' plus a '<uuid>.data' file holding every
    initializer of 1 KiB or more into the current working directory."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((width, width)).astype(np.float32), "W")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])
    x2 = helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["M", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="proj"),
             helper.make_node("Add", ["h", "x2"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "unmerged_batch_dims", [x, x2], [y], [w])
    path = folder / "unmerged_batch_dims.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path
