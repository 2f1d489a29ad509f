"""Real models through a real node: push each sample model over HTTP, run
it, compare the outputs with onnxruntime (the reference engine), and check
every receipt with the independent implementation in vouch_ref.

Tolerances (tract against onnxruntime on the same inputs):
  float32 models: |ours - ref| <= ATOL + RTOL * |ref| with RTOL=1e-4, ATOL=1e-5
  int8 MiniLM:    ATOL=2e-2 on hidden states (quantized kernels round
                  differently), and cosine similarity of the mean-pooled
                  sentence embedding >= 0.999
Labels and argmaxes must agree exactly.
"""

import io
import json
import pathlib
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import vouch_ref as v
from nodes import MODELS, operator_headers, running

RTOL, ATOL = 1e-4, 1e-5
NPZ = "application/x-npz"


def healthy(url):
    urllib.request.urlopen(url + "/healthz", timeout=1)
    return True


@pytest.fixture(scope="module")
def node():
    with running("node", healthy, 30) as url:
        yield url


def call(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def push(node, file, name, shapes=()):
    query = urllib.parse.urlencode([("name", name)] + [("input_shape", s) for s in shapes])
    status, body = call(f"{node}/v1/hub/models?{query}", "POST", (MODELS / file).read_bytes(),
                        {"content-type": "application/octet-stream", **operator_headers(node)})
    assert status == 201, body
    return body


def to_json(arr):
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": arr.reshape(-1).tolist()}


def infer(node, name, inputs, nonce="py"):
    body = json.dumps({"inputs": {k: to_json(a) for k, a in inputs.items()}, "nonce": nonce}).encode()
    status, resp = call(f"{node}/v1/infer/{name}", "POST", body, {"content-type": "application/json"})
    assert status == 200, resp
    outputs = {k: v.json_tensor_to_array(t) for k, t in resp["outputs"].items()}
    # Independent check of the live receipt: signature, and digests of the
    # exact inputs we sent and outputs we got, computed from numpy arrays.
    v.verify_receipt(resp["receipt"], inputs, outputs)
    assert resp["receipt"]["nonce"] == nonce
    tampered = {k: a.copy() for k, a in outputs.items()}
    first = next(iter(tampered))
    tampered[first].reshape(-1)[0] += 1
    with pytest.raises(v.ReceiptInvalid):
        v.verify_receipt(resp["receipt"], inputs, tampered)
    # The same request as numpy's own files: the same arrays, bit for bit,
    # and a receipt over the same digests.
    arrays, rest = infer_npz(node, name, inputs, nonce)
    assert set(arrays) == set(outputs)
    for k, a in outputs.items():
        assert arrays[k].dtype == a.dtype and arrays[k].shape == a.shape, k
        assert arrays[k].tobytes() == a.tobytes() or np.array_equal(arrays[k], a, equal_nan=True), k
    v.verify_receipt(rest["receipt"], inputs, arrays)
    assert (rest["receipt"]["request"], rest["receipt"]["output"]) == \
        (resp["receipt"]["request"], resp["receipt"]["output"])
    assert rest["receipt"]["nonce"] == nonce and rest["executed_by"]["operator"] == resp["receipt"]["node"]
    return outputs, resp["receipt"]


def infer_npz(node, name, inputs, nonce="py", compressed=False):
    """`POST /v1/infer/NAME` with an .npz body and answer: (outputs, the
    rest of the answer from its vouch.json)."""
    f = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(f, **inputs)
    req = urllib.request.Request(f"{node}/v1/infer/{name}?nonce={urllib.parse.quote(nonce)}", data=f.getvalue(),
                                 method="POST", headers={"content-type": NPZ, "accept": NPZ})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.headers["content-type"] == NPZ
        got = np.load(io.BytesIO(r.read()))
        rest = json.loads(got["vouch.json"])
        assert rest["receipt"]["id"] == r.headers["x-vouch-receipt"]
        return {k: got[k] for k in got.files if k != "vouch.json"}, rest


def reference(model_bytes, inputs, outputs=None):
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(outputs, inputs)))


def close(ours, ref, rtol=RTOL, atol=ATOL):
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    bound = atol + rtol * np.abs(ref.astype(np.float64))
    assert np.all(diff <= bound), f"max abs diff {diff.max()} exceeds tolerance"
    return float(diff.max()) if diff.size else 0.0


def test_iris(node):
    push(node, "iris.onnx", "iris", ["float_input=N,4"])
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.9, 3.1, 1.5, 0.1]],
                    dtype=np.float32)
    ours, _ = infer(node, "iris", {"float_input": rows})
    # The reference runs the same file with the same input-shape fix.
    m = onnx.load(MODELS / "iris.onnx")
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param, dims[1].dim_value = "N", 4
    ref = reference(m.SerializeToString(), {"float_input": rows})
    assert ours["label"].tolist() == ref["label"].tolist() == [0, 2, 1, 0]
    probs = np.array([[p[k] for k in sorted(p)] for p in ref["probabilities"]], dtype=np.float32)
    close(ours["probabilities"], probs)


def magika_features(data: bytes) -> np.ndarray:
    beg = list(data[:1024]) + [256] * (1024 - len(data[:1024]))
    end = list(data[-1024:])
    end = [256] * (1024 - len(end)) + end
    return np.array([beg + end], dtype=np.int32)


def test_magika(node):
    push(node, "magika.onnx", "magika", ["bytes=1,2048"])
    model = (MODELS / "magika.onnx").read_bytes()
    labels = json.loads((MODELS / "magika.config.json").read_text())["target_labels_space"]
    for sample in [pathlib.Path(__file__).read_bytes(), json.dumps({"a": list(range(300))}).encode()]:
        x = magika_features(sample)
        ours, _ = infer(node, "magika", {"bytes": x})
        ref = reference(model, {"bytes": x})
        close(ours["target_label"], ref["target_label"])
        assert ours["target_label"].argmax() == ref["target_label"].argmax()
    assert labels[int(ours["target_label"].argmax())] == "json"


TOKENS = np.array([[101, 1996, 3007, 1997, 2605, 2003, 3000, 1012, 102]], dtype=np.int64)


def mean_pool(hidden, mask):
    m = mask[..., None].astype(np.float64)
    pooled = (hidden * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_minilm_int8(node):
    push(node, "minilm-int8.onnx", "minilm-int8")
    inputs = {"input_ids": TOKENS, "attention_mask": np.ones_like(TOKENS), "token_type_ids": np.zeros_like(TOKENS)}
    ours, _ = infer(node, "minilm-int8", inputs)
    ref = reference((MODELS / "minilm-int8.onnx").read_bytes(), inputs)
    close(ours["last_hidden_state"], ref["last_hidden_state"], rtol=0, atol=2e-2)
    a = mean_pool(ours["last_hidden_state"], inputs["attention_mask"])
    b = mean_pool(ref["last_hidden_state"], inputs["attention_mask"])
    assert float((a * b).sum()) >= 0.999


def test_paraphrase_minilm(node):
    push(node, "paraphrase-minilm-l3.onnx", "paraphrase-minilm-l3")
    inputs = {"input_ids": TOKENS, "attention_mask": np.ones_like(TOKENS)}
    ours, _ = infer(node, "paraphrase-minilm-l3", inputs)
    ref = reference((MODELS / "paraphrase-minilm-l3.onnx").read_bytes(), inputs)
    assert set(ours) == set(ref)
    for name in ref:
        close(ours[name], ref[name], rtol=1e-3, atol=1e-4)


def test_silero(node):
    push(node, "silero-vad.onnx", "silero-vad")
    t = np.arange(512, dtype=np.float32) / 16000
    state = np.zeros((2, 1, 128), dtype=np.float32)
    model = (MODELS / "silero-vad.onnx").read_bytes()
    for chunk in [0.3 * np.sin(2 * np.pi * 440 * t), np.zeros(512)]:
        inputs = {"input": chunk.astype(np.float32)[None, :], "sr": np.array(16000, dtype=np.int64), "state": state}
        ours, _ = infer(node, "silero-vad", inputs)
        ref = reference(model, inputs)
        close(ours["output"], ref["output"])
        close(ours["stateN"], ref["stateN"])
        state = ours["stateN"]


def test_same_request_same_digests(node):
    push(node, "iris.onnx", "iris-again", ["float_input=N,4"])
    x = {"float_input": np.array([[5.0, 3.4, 1.5, 0.2]], dtype=np.float32)}
    _, r1 = infer(node, "iris-again", x, nonce="a")
    _, r2 = infer(node, "iris-again", x, nonce="b")
    assert r1["output"] == r2["output"] and r1["trace"] == r2["trace"] and r1["id"] != r2["id"]
    # Every leaf of the trace, revealed, checks against the root with the
    # independent Merkle code; a wrong leaf or index does not.
    root, length = v.parse(r1["trace"]["root"], "trace"), r1["trace"]["len"]
    assert length > 1
    for index in range(length):
        status, entry = call(f"{node}/v1/receipts/{r1['id']}/trace/{index}")
        assert status == 200 and entry["len"] == length and entry["index"] == index
        leaf, path = v.parse(entry["leaf"], "leaf"), [v.parse(p, "trace") for p in entry["path"]]
        assert v.merkle_verify(root, length, index, leaf, path)
        assert not v.merkle_verify(root, length, (index + 1) % length, leaf, path) or length == 1
        assert not v.merkle_verify(root, length, index, bytes(32), path)
    status, _ = call(f"{node}/v1/receipts/{r1['id']}/trace/{length}")
    assert status == 404


def test_npz_inputs_compressed_and_refusals(node):
    push(node, "iris.onnx", "iris-npz", ["float_input=N,4"])
    x = {"float_input": np.array([[5.0, 3.4, 1.5, 0.2]], dtype=np.float32)}
    plain, _ = infer_npz(node, "iris-npz", x)
    packed, _ = infer_npz(node, "iris-npz", x, compressed=True)
    assert plain["label"].tolist() == packed["label"].tolist() == [0]
    # JSON in, .npz out (or the reverse) is fine; a broken archive, a
    # Fortran-ordered array or a stray member is refused with what to do.
    f = io.BytesIO()
    np.savez(f, float_input=np.asfortranarray(np.ones((3, 4), dtype=np.float32)))
    status, body = call(f"{node}/v1/infer/iris-npz", "POST", f.getvalue(), {"content-type": NPZ})
    assert status == 400 and "np.ascontiguousarray" in body["error"]["message"], body
    status, body = call(f"{node}/v1/infer/iris-npz", "POST", b"PK nonsense", {"content-type": NPZ})
    assert status == 400 and "np.savez" in body["error"]["message"], body
    f = io.BytesIO()
    np.savez(f, **x)
    import zipfile
    with zipfile.ZipFile(f, "a") as z:
        z.writestr("notes.txt", "hi")
    status, body = call(f"{node}/v1/infer/iris-npz", "POST", f.getvalue(), {"content-type": NPZ})
    assert status == 400 and "notes.txt" in body["error"]["message"], body
    # A small deflated body that would unpack past the node's body limit
    # (64 MiB): refused, not unpacked.
    f = io.BytesIO()
    np.savez_compressed(f, float_input=np.zeros(80 << 20, dtype=np.uint8))
    assert len(f.getvalue()) < 1 << 20
    status, body = call(f"{node}/v1/infer/iris-npz", "POST", f.getvalue(), {"content-type": NPZ})
    assert status == 400 and "unpacks to more than" in body["error"]["message"], body
    status, _ = call(f"{node}/healthz")
    assert status == 200
