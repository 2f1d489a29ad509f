"""Re-check docs/receipt-vectors.json (made by the Rust implementation)
with the independent Python implementation in vouch_ref."""

import copy
import pathlib

import numpy as np
import pytest

import vouch_ref as v

VECTORS = v.load_vectors(pathlib.Path(__file__).parents[2] / "docs" / "receipt-vectors.json")


def pattern(n):
    return bytes(i % 251 for i in range(n))


def test_digests():
    prefixes = {ctx: p for p, ctx in v.CONTEXTS.items()}
    for d in VECTORS["digests"]:
        p = prefixes[d["context"]]
        assert v.fmt(p, v.digest(p, bytes.fromhex(d["data_hex"]))) == d["digest"]


def test_tensors_and_maps():
    arrays = {}
    for t in VECTORS["tensors"]:
        raw = bytes.fromhex(t["data_hex"])
        arr = np.frombuffer(raw, dtype=np.dtype(t["dtype"]).newbyteorder("<")).reshape(t["shape"])
        assert v.encode_tensor(arr, t["dtype"]).hex() == t["encoding_hex"], t["name"]
        arrays[t["name"]] = arr.astype(t["dtype"])
    m = VECTORS["tensor_map"]
    assert v.encode_map(arrays).hex() == m["encoding_hex"]
    assert v.fmt("in", v.digest("in", v.encode_map(arrays))) == m["input_digest"]
    assert v.fmt("out", v.digest("out", v.encode_map(arrays))) == m["output_digest"]


def test_blobs():
    for b in VECTORS["blobs"]:
        assert v.fmt("blob", v.blob_digest(pattern(b["size"]))) == b["digest"]


def test_merkle():
    for m in VECTORS["merkle"]:
        leaves = [v.trace_leaf(i, f"step{i}", [np.array([i], dtype="uint8")]) for i in range(m["len"])]
        assert [v.fmt("leaf", l) for l in leaves] == m["leaves"]
        root = v.merkle_root(leaves)
        assert v.fmt("trace", root) == m["root"]
        for i, proof in enumerate(m["proofs"]):
            path = [v.parse(p, "trace") for p in proof]
            assert v.merkle_verify(root, m["len"], i, leaves[i], path)
            if m["len"] > 1:
                assert not v.merkle_verify(root, m["len"], i, leaves[(i + 1) % m["len"]], path)


def test_manifest_id():
    man = VECTORS["manifest"]
    model_id = v.digest("model", bytes.fromhex(man["encoding_hex"]))
    assert v.fmt("model", model_id) == man["model_id"]


@pytest.mark.parametrize("case", VECTORS["receipts"])
def test_receipts(case):
    r = case["receipt"]
    assert v.receipt_body(r).hex() == case["body_hex"]
    v.verify_receipt(r)


@pytest.mark.parametrize("field,value", [
    ("version", 2), ("nonce", "other"), ("timestamp_ms", 1), ("price", 8), ("seed", 43),
    ("engine", {"name": "tract-onnx", "version": "0.0.0"}),
    ("determinism", {"class": "tolerant", "rtol": 0.5}),
    ("signature", "00" * 64),
])
def test_tampered_receipts_fail(field, value):
    for case in VECTORS["receipts"]:
        r = copy.deepcopy(case["receipt"])
        if r[field] == value:
            continue
        r[field] = value
        with pytest.raises(v.ReceiptInvalid):
            v.verify_receipt(r)
