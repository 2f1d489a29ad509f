"""The proof circuits of the MNIST models against onnxruntime's float
models (issue 28): `vouch model circuit --run` evaluates each circuit on the
held-out images of `scripts/mnist-models`; its argmax must agree with
onnxruntime's on at least 99.5% of them, and every logit must lie within the
error bound the circuit states."""

import json
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

from nodes import BIN, MODELS


def held_out():
    raw = np.fromfile(MODELS / "mnist-test.u8", dtype=np.uint8).reshape(-1, 785)
    return raw[:, 0], raw[:, 1:].astype(np.float32) / 255.0


def vouch(*args):
    out = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("name,shape,count,bits", [
    ("mnist-mlp", (784,), 2000, ()),
    ("mnist-cnn", (1, 28, 28), 2000, ()),
    ("mnist-cnn-wide", (1, 28, 28), 2000, ()),
    # Fewer bits (a smaller circuit, a wider stated bound): still within it.
    ("mnist-cnn", (1, 28, 28), 2000, ("--weight-bits", "10", "--activation-bits", "15")),
])
def test_circuit_argmax_agrees_with_onnxruntime(tmp_path, name, shape, count, bits):
    model = MODELS / f"{name}.onnx"
    labels, pixels = held_out()
    labels, pixels = labels[:count], pixels[:count]
    summary = json.loads(vouch("model", "circuit", str(model), "--input-range", "1", *bits, "--json"))
    assert summary["provable"] and summary["input"]["name"] == "input"
    assert (summary["weight_bits"], summary["activation_bits"]) == ((10, 15) if bits else (16, 24))
    request = tmp_path / "in.json"
    request.write_text(json.dumps({"inputs": {"input": {
        "dtype": "float32", "shape": [count, *shape], "data": pixels.ravel().tolist()}}}))
    ours = json.loads(vouch("model", "circuit", str(model), "--input-range", "1", *bits, "--run", str(request)))
    logits = ours["outputs"]["logits"]
    assert logits["shape"] == [count, 10]
    ours = np.asarray(logits["data"], dtype=np.float64).reshape(count, 10)

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    ref = np.concatenate([
        session.run(None, {"input": pixels[i].reshape(1, *shape)})[0] for i in range(count)
    ]).astype(np.float64)
    agreement = float((ours.argmax(1) == ref.argmax(1)).mean())
    assert agreement >= 0.995, agreement
    worst = float(np.abs(ours - ref).max())
    assert worst <= summary["error_bound"], (worst, summary["error_bound"])
    accuracy = (float((ref.argmax(1) == labels).mean()), float((ours.argmax(1) == labels).mean()))
    assert abs(accuracy[0] - accuracy[1]) <= 0.005, accuracy
    print(f"{name}: agreement {agreement:.4f}, accuracy float {accuracy[0]:.4f} circuit {accuracy[1]:.4f}, "
          f"worst logit error {worst:.2e} (bound {summary['error_bound']:.2e})")


def test_a_model_outside_the_circuit_names_what_it_lacks():
    out = subprocess.run([BIN, "model", "circuit", str(MODELS / "iris.onnx")], capture_output=True, text=True)
    assert out.returncode != 0
    assert "operators a proof does not cover: LinearClassifier" in out.stderr, out.stderr
