"""Real-world ONNX models as users download them: PaddleOCR's classifier,
detector and recognizer from the rapidocr-onnxruntime wheel, and NudeNet's
YOLOv8 detector from the nudenet wheel (pinned versions and SHA-256,
cached in ~/.cache/vouch/coverage).

Each is pushed as it comes (symbolic and unknown input sizes, which tract
cannot analyse symbolically: the node plans it per request shape) and with
concrete input shapes (`--input-shape`). Both run the same random input; the
answers must equal each other bit for bit, with the same trace, and match
onnxruntime. The model pushed as it comes then runs a second shape, again
against onnxruntime, and refuses a shape its graph cannot take with a 400
that says so.

With VOUCH_COVERAGE_TABLE set to a path, each model's row of
docs/onnx-coverage.md is appended to it (scripts/onnx-coverage).
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import urllib.parse
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nodes import operator_headers, running
from test_models import call, healthy, to_json

CACHE = pathlib.Path.home() / ".cache/vouch/coverage"
WHEELS = {
    "rapidocr-onnxruntime==1.4.4": ("rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
                                    "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"),
    "nudenet==3.4.2": ("nudenet-3.4.2-py3-none-any.whl",
                       "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331"),
}

# name, wheel, file in it, the shape both pushes run, a second shape, a
# shape the graph cannot take (the detectors' feature pyramids need sides
# that are multiples of 32)
MODELS = [
    ("cls", "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
     (1, 3, 48, 192), (2, 3, 48, 96), None),
    ("det", "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
     (1, 3, 320, 320), (1, 3, 256, 160), (1, 3, 100, 100)),
    ("rec", "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
     (1, 3, 48, 320), (1, 3, 48, 160), None),
    ("nudenet", "nudenet==3.4.2", "nudenet/320n.onnx", (1, 3, 320, 320), (1, 3, 256, 192), (1, 3, 100, 100)),
]
ATOL, RTOL = 1e-4, 1e-4


def fetch(spec, file):
    """`file` from the wheel `spec` names, downloaded once and checked."""
    wheel, digest = WHEELS[spec]
    path = CACHE / wheel
    sha = lambda: hashlib.sha256(path.read_bytes()).hexdigest()  # noqa: E731
    if not path.exists() or sha() != digest:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(CACHE), spec],
                       check=True)
    assert sha() == digest, f"{path} has the wrong SHA-256"
    out = CACHE / file
    if not out.exists():
        with zipfile.ZipFile(path) as z:
            z.extract(file, CACHE)
    return out


@pytest.fixture(scope="module")
def node():
    with running("node", healthy, 30) as url:
        yield url


def push(node, path, name, shape=None, input_name="x"):
    query = [("name", name)]
    if shape:
        query.append(("input_shape", f"{input_name}=" + ",".join(map(str, shape))))
    return call(f"{node}/v1/hub/models?{urllib.parse.urlencode(query)}", "POST", path.read_bytes(),
                {"content-type": "application/octet-stream", **operator_headers(node)})


def infer(node, name, inputs):
    body = json.dumps({"inputs": {k: to_json(v) for k, v in inputs.items()}}).encode()
    return call(f"{node}/v1/infer/{name}", "POST", body, {"content-type": "application/json"})


def output(body):
    out = next(iter(body["outputs"].values()))
    return np.array(out["data"], dtype=np.float32).reshape(out["shape"])


def check_close(ours, ref, what):
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} against onnxruntime's {ref.shape}"
    bad = np.abs(ours - ref) > ATOL + RTOL * np.abs(ref)
    assert not bad.any(), f"{what}: {bad.sum()} values differ, max {np.abs(ours - ref).max():.2e}"
    return float(np.abs(ours - ref).max())


@pytest.mark.parametrize("name,wheel,file,shape,second,unfit", MODELS, ids=[m[0] for m in MODELS])
def test_models_as_they_come_run_at_every_request_shape(node, name, wheel, file, shape, second, unfit):
    path = fetch(wheel, file)
    (input,) = onnx.load(str(path)).graph.input
    declared = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
                for d in input.type.tensor_type.shape.dim]
    run = lambda model, x: infer(node, model, {input.name: x})  # noqa: E731
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)

    status, raw = push(node, path, f"{name}-raw")
    assert status == 201, raw
    status, shaped = push(node, path, name, shape, input.name)
    assert status == 201, shaped

    x = rng.standard_normal(shape).astype(np.float32)
    ref = session.run(None, {input.name: x})[0]
    status, a = run(f"{name}-raw", x)
    assert status == 200, a
    status, b = run(name, x)
    assert status == 200, b
    # The plan built for this shape is the plan a push with it builds.
    assert np.array_equal(output(a), output(b))
    assert a["receipt"]["trace"] == b["receipt"]["trace"]
    diff = check_close(output(a), ref, f"{name} at {shape}")

    y = rng.standard_normal(second).astype(np.float32)
    status, c = run(f"{name}-raw", y)
    assert status == 200, c
    diff2 = check_close(output(c), session.run(None, {input.name: y})[0], f"{name} at {second}")

    if unfit is not None:
        status, err = run(f"{name}-raw", np.zeros(unfit, dtype=np.float32))
        assert status == 400, err
        assert f"cannot run at input shapes {input.name}=[" in err["error"]["message"], err
        # And the model still serves.
        status, again = run(f"{name}-raw", x)
        assert status == 200 and np.array_equal(output(again), output(a)), again

    # A model planned per request shape declares no output shape.
    how = "loads" if raw["schema"]["outputs"][0]["shape"] else "loads; planned per request shape"
    table = os.environ.get("VOUCH_COVERAGE_TABLE")
    if table:
        with open(table, "a") as f:
            f.write(f"| {name} ({wheel}: {pathlib.Path(file).stem}) | {declared} | {how} "
                    f"| loads as {input.name}={list(shape)}; same answer and trace "
                    f"| max abs diff {diff:.1e} at {list(shape)}, {diff2:.1e} at {list(second)} |\n")
