"""An MDLM-shaped encoder as an ONNX graph, written with onnx's helper API (no PyTorch), for
onnxruntime-web's side of scripts/bench-browser: token embedding + learned positions, N x
[pre-LN, fused QKV, bidirectional softmax attention, out-proj, residual, pre-LN, Linear ->
GELU(tanh) -> Linear, residual], final LN, untied head with bias. The layer shape of
../shared/bench/onnxruntime-web/model.py, random N(0, 0.02) weights (seeded); batch 1, L fixed.

    python3 onnx_model.py SHAPE L OUT.onnx      SHAPE: small (6 x 384, 8192 tokens) | owt (12 x 768, 50258)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHAPES = {"small": (6, 384, 6, 1536, 8192), "owt": (12, 768, 12, 3072, 50258)}


def build(shape, length, seed=0):
    layers, d, heads, ffn, vocab = SHAPES[shape]
    hd = d // heads
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def weight(name, *dims, value=None):
        a = value if value is not None else (rng.standard_normal(dims, dtype=np.float32) * 0.02)
        inits.append(numpy_helper.from_array(np.asarray(a, dtype=a.dtype), name))
        return name

    def const(name, values, dtype=np.int64):
        return weight(name, value=np.asarray(values, dtype=dtype))

    n = iter(range(1 << 30))

    def op(kind, inputs, **attrs):
        out = f"t{next(n)}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(x, name, i, o):
        return op("Add", [op("MatMul", [x, weight(name + ".w", i, o)]), weight(name + ".b", value=np.zeros(o, np.float32))])

    def norm(x, name):
        g = weight(name + ".g", value=np.ones(d, np.float32))
        b = weight(name + ".b", value=np.zeros(d, np.float32))
        return op("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-5)

    tok = weight("tok", vocab, d)
    pos = weight("pos", 1, length, d)
    x = op("Add", [op("Gather", [tok, "input_ids"]), pos])
    qkv_shape = const("qkv_shape", [1, length, 3, heads, hd])
    out_shape = const("out_shape", [1, length, d])
    scale = weight("scale", value=np.asarray(1.0 / np.sqrt(hd), np.float32))
    half, one = weight("half", value=np.float32(0.5)), weight("one", value=np.float32(1.0))
    c0, c1 = weight("c0", value=np.float32(np.sqrt(2 / np.pi))), weight("c1", value=np.float32(0.044715))
    for i in range(layers):
        p = f"b{i}"
        qkv = op("Transpose", [op("Reshape", [linear(norm(x, p + ".ln1"), p + ".qkv", d, 3 * d), qkv_shape])], perm=[2, 0, 3, 1, 4])
        q, k, v = (op("Gather", [qkv, const(f"{p}.i{j}", j)], axis=0) for j in range(3))
        att = op("Softmax", [op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])]), scale])], axis=-1)
        o = op("Reshape", [op("Transpose", [op("MatMul", [att, v])], perm=[0, 2, 1, 3]), out_shape])
        x = op("Add", [x, linear(o, p + ".proj", d, d)])
        h = linear(norm(x, p + ".ln2"), p + ".fc1", d, ffn)
        # GELU(tanh): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        inner = op("Mul", [c0, op("Add", [h, op("Mul", [c1, op("Mul", [h, op("Mul", [h, h])])])])])
        h = op("Mul", [op("Mul", [half, h]), op("Add", [one, op("Tanh", [inner])])])
        x = op("Add", [x, linear(h, p + ".fc2", ffn, d)])
    logits = linear(norm(x, "ln_f"), "head", d, vocab)
    nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    graph = helper.make_graph(
        nodes,
        f"mdlm-{shape}-{length}",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, length])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, length, vocab])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    shape, length, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    onnx.save(build(shape, length), out)
