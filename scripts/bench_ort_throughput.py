"""onnxruntime's side of scripts/bench-threads: MiniLM (int8) at batch
8 x 128 tokens, the inputs of bench_ort.py in 8 rows, requests per second
from 1 and from N clients (N: the cores; each a thread sending one request
after another to one session, as onnxruntime is meant to be shared), with
onnxruntime's default threading and with one intra-op thread. Prints one
JSON line.

    python scripts/bench_ort_throughput.py [SECONDS]
"""

import json
import os
import sys
import threading
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
from bench_ort import MODELS, inputs_for  # noqa: E402

ROWS = 8


def session(threads):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(MODELS / "minilm-int8.onnx"), opts, providers=["CPUExecutionProvider"])


def throughput(sess, x, clients, budget):
    done = [0] * clients
    start = time.perf_counter()

    def client(i):
        while time.perf_counter() - start < budget:
            sess.run(None, x)
            done[i] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


def main():
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    one = inputs_for("minilm-int8")
    x = {k: np.repeat(v, ROWS, axis=0) for k, v in one.items()}
    cores = os.cpu_count()
    out = {}
    for name, threads, clients in [
        ("1 client, default threading", 0, 1),
        ("1 client, 1 thread", 1, 1),
        ("N clients, default threading", 0, cores),
        ("N clients, 1 thread each", 1, cores),
    ]:
        sess = session(threads)
        for _ in range(2):
            sess.run(None, x)
        out[name] = throughput(sess, x, clients, budget)
    out["cores"] = cores
    print(json.dumps(out))


if __name__ == "__main__":
    main()
