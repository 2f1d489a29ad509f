"""Time onnxruntime (1 intra-op thread, like tract's single-threaded plan)
on the same inputs the Rust node-path bench uses; print JSON."""

import json
import os
import pathlib
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

MODELS = pathlib.Path(os.environ.get("VOUCH_MODELS", pathlib.Path.home() / ".cache/vouch/models"))
BUDGET = float(os.environ.get("VOUCH_BENCH_MS", "3000")) / 1000


def inputs_for(name):
    if name == "iris":
        return {"float_input": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)}
    if name == "magika":
        return {"bytes": np.array([[(i * 7) % 257 for i in range(2048)]], dtype=np.int32)}
    if name in ("minilm-int8", "paraphrase-minilm-l3"):
        seq = 128
        ids = np.array([[101 if i == 0 else 102 if i == seq - 1 else 1000 + (i * 37) % 20000 for i in range(seq)]], dtype=np.int64)
        d = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if name == "minilm-int8":
            d["token_type_ids"] = np.zeros_like(ids)
        return d
    if name == "silero-vad":
        audio = (np.sin(np.arange(512, dtype=np.float32) * 0.17) * 0.3).astype(np.float32)[None, :]
        return {"input": audio, "sr": np.array(16000, dtype=np.int64), "state": np.zeros((2, 1, 128), np.float32)}
    raise KeyError(name)


FILES = {"magika": "magika.onnx", "minilm-int8": "minilm-int8.onnx", "paraphrase-minilm-l3": "paraphrase-minilm-l3.onnx",
         "silero-vad": "silero-vad.onnx", "iris": "iris.onnx"}


def main():
    out = {}
    for name in sys.argv[1:] or FILES:
        m = onnx.load(MODELS / FILES[name])
        if name == "iris":
            dims = m.graph.input[0].type.tensor_type.shape.dim
            dims[0].dim_param, dims[1].dim_value = "N", 4
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        x = inputs_for(name)
        for _ in range(3):
            sess.run(None, x)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < BUDGET or len(times) < 20:
            t = time.perf_counter()
            sess.run(None, x)
            times.append(time.perf_counter() - t)
        out[name] = {"p50_ms": float(np.median(times) * 1e3), "samples": len(times)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
