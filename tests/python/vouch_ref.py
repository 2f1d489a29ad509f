"""An independent implementation of Vouch's v1 canonical encodings and
receipt checks, written from docs/receipts.md with PyPI's blake3 and pynacl.
It shares no code with the Rust implementation."""

import json
import struct

import blake3
import nacl.exceptions
import nacl.signing
import numpy as np

CONTEXTS = {
    "model": "vouch v1 model",
    "in": "vouch v1 input",
    "out": "vouch v1 output",
    "leaf": "vouch v1 trace leaf",
    "trace": "vouch v1 trace node",
    "rcpt": "vouch v1 receipt",
    "blob": "vouch v1 blob",
    "chunk": "vouch v1 blob chunk",
    "tdata": "vouch v1 tensor data",
    "chain": "vouch v1 stream chain",
    "ckpt": "vouch v1 stream checkpoint",
}
DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32",
          "uint64", "int64", "float16", "float32", "float64"]
CHUNK_SIZE = 1 << 20


def digest(prefix: str, data: bytes) -> bytes:
    return blake3.blake3(data, derive_key_context=CONTEXTS[prefix]).digest()


def fmt(prefix: str, raw: bytes) -> str:
    return f"{prefix}:{raw.hex()}"


def parse(s: str, prefix: str) -> bytes:
    p, _, h = s.partition(":")
    if p != prefix or len(h) != 64:
        raise ValueError(f"expected a {prefix}: digest, got {s!r}")
    return bytes.fromhex(h)


def u32(n): return struct.pack("<I", n)
def u64(n): return struct.pack("<Q", n)
def string(s: str) -> bytes:
    b = s.encode()
    return u32(len(b)) + b


def encode_tensor(arr: np.ndarray, dtype: str | None = None) -> bytes:
    dtype = dtype or str(arr.dtype)
    arr = np.array(arr, dtype=np.dtype(dtype).newbyteorder("<"), order="C", copy=True)
    head = bytes([DTYPES.index(dtype) + 1]) + u32(arr.ndim) + b"".join(u64(d) for d in arr.shape)
    if arr.dtype.kind == "f":  # canonical NaN
        arr = arr.copy()
        arr[np.isnan(arr)] = np.nan
    return head + arr.tobytes()


def encode_map(tensors: dict) -> bytes:
    out = u32(len(tensors))
    for name in sorted(tensors, key=lambda n: n.encode()):
        out += string(name) + encode_tensor(tensors[name])
    return out


def json_tensor_to_array(t: dict) -> np.ndarray:
    def num(v):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.get(v, v) if isinstance(v, str) else v
    data = [num(v) for v in t["data"]]
    return np.array(data, dtype=t["dtype"]).reshape(t["shape"])


def blob_digest(data: bytes) -> bytes:
    chunks = [digest("chunk", data[i:i + CHUNK_SIZE]) for i in range(0, len(data), CHUNK_SIZE)]
    return digest("blob", u64(len(data)) + u32(CHUNK_SIZE) + b"".join(chunks))


def trace_output(arr: np.ndarray) -> bytes:
    """One output in a trace leaf: the tensor header, then the tensor-data
    digest of its element bytes (as produced: NaNs are not canonicalised)."""
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    head = bytes([DTYPES.index(str(arr.dtype)) + 1]) + u32(arr.ndim) + b"".join(u64(d) for d in arr.shape)
    return head + digest("tdata", arr.tobytes())


def trace_leaf(index: int, name: str, outputs: list) -> bytes:
    return digest("leaf", u64(index) + string(name) + u32(len(outputs)) + b"".join(trace_output(o) for o in outputs))


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: list) -> bytes:
    if not leaves:
        return digest("trace", b"")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return digest("trace", merkle_root(leaves[:k]) + merkle_root(leaves[k:]))


def merkle_verify(root: bytes, length: int, index: int, leaf: bytes, path: list) -> bool:
    if index >= length:
        return False
    sides, lo, hi, i = [], 0, length, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if i < k:
            sides.append("right")
            hi = lo + k
        else:
            sides.append("left")
            lo, i = lo + k, i - k
    if len(sides) != len(path):
        return False
    acc = leaf
    for sib, side in zip(path, reversed(sides)):
        acc = digest("trace", acc + sib if side == "right" else sib + acc)
    return acc == root


def receipt_body(r: dict) -> bytes:
    out = bytes([r["version"]])
    out += parse(r["model"], "model") + parse(r["request"], "in") + parse(r["output"], "out")
    out += parse(r["trace"]["root"], "trace") + u64(r["trace"]["len"])
    out += string(r["engine"]["name"]) + string(r["engine"]["version"])
    det = r["determinism"]
    out += b"\x00" if det["class"] == "exact" else b"\x01" + struct.pack("<d", det["rtol"])
    out += b"\x00" if r["seed"] is None else b"\x01" + u64(r["seed"])
    node = r["node"]
    if not node.startswith("ed25519:"):
        raise ValueError("node key must be ed25519:HEX")
    out += bytes.fromhex(node[len("ed25519:"):])
    out += string(r["nonce"]) + u64(r["timestamp_ms"]) + u64(r["price"])
    return out


class ReceiptInvalid(Exception):
    pass


def verify_receipt(r: dict, inputs: dict | None = None, outputs: dict | None = None) -> None:
    """Raises ReceiptInvalid unless the receipt is intact and signed, and
    (when given) names exactly these numpy inputs and outputs."""
    if r.get("version") != 1:
        raise ReceiptInvalid(f"unknown version {r.get('version')}")
    body = receipt_body(r)
    rid = digest("rcpt", body)
    if fmt("rcpt", rid) != r["id"]:
        raise ReceiptInvalid("id does not match the body")
    key = nacl.signing.VerifyKey(bytes.fromhex(r["node"][len("ed25519:"):]))
    try:
        key.verify(rid, bytes.fromhex(r["signature"]))
    except nacl.exceptions.BadSignatureError as e:
        raise ReceiptInvalid("bad signature") from e
    if inputs is not None and fmt("in", digest("in", encode_map(inputs))) != r["request"]:
        raise ReceiptInvalid("inputs do not match")
    if outputs is not None and fmt("out", digest("out", encode_map(outputs))) != r["output"]:
        raise ReceiptInvalid("outputs do not match")


LLM_TAG = "vouch llm v1"


def llm_request_bytes(req: dict) -> bytes:
    """The canonical LLM request (docs/receipts.md, "Generated text")."""
    s = req["sampling"]
    out = string(LLM_TAG) + bytes([{"chat": 1, "completion": 2}[req["mode"]]])
    out += string(req["prompt"]) + u32(req["max_tokens"]) + u32(len(req["stop"]))
    out += b"".join(string(x) for x in req["stop"])
    out += struct.pack("<d", float(s["temperature"])) + struct.pack("<d", float(s["top_p"]))
    out += u32(s["top_k"]) + u64(s["seed"])
    # A chat's messages and template digest, when the request names them.
    messages, template = req.get("messages") or [], req.get("template")
    # A constraint, tools or tool messages extend the encoding.
    extended = req.get("constraint") is not None or req.get("tools") is not None \
        or req.get("logprobs") is not None or any(
        m.get("tool_calls") or m.get("tool_call_id") is not None for m in messages)
    if messages or template is not None or extended:
        out += u32(len(messages))
        out += b"".join(string(m["role"]) + string(m["content"]) for m in messages)
        out += parse(template, "blob") if template is not None else bytes(32)
    if extended:
        out += string(req.get("constraint") or "") + string(req.get("tools") or "")
        out += bytes([0 if req.get("logprobs") is None else req["logprobs"] + 1])
        for m in messages:
            calls = m.get("tool_calls") or []
            out += u32(len(calls))
            out += b"".join(string(c["id"]) + string(c["name"]) + string(c["arguments"]) for c in calls)
            out += string(m.get("tool_call_id") or "")
    return out


def llm_request_digest(req: dict) -> bytes:
    return digest("in", llm_request_bytes(req))


class Chain:
    """The running hash chain over a token stream."""

    def __init__(self, request_digest: bytes):
        self.link = digest("chain", request_digest)
        self.n = 0

    def push(self, token: int, text: str, logprobs: dict | None = None):
        extra = b""
        if logprobs is not None:  # f32 logprob || bytes || u8 n || (u32 token || f32 logprob || bytes)*n
            blob = lambda b: u32(len(b)) + bytes(b)
            extra = struct.pack("<f", logprobs["logprob"]) + blob(logprobs["bytes"])
            top = logprobs.get("top", [])
            extra += bytes([len(top)]) + b"".join(
                u32(a["token"]) + struct.pack("<f", a["logprob"]) + blob(a["bytes"]) for a in top)
        self.link = digest("chain", self.link + u32(token) + string(text) + extra)
        self.n += 1

    def output(self, finish_reason: str) -> bytes:
        return digest("out", string(LLM_TAG) + self.link + u64(self.n) + string(finish_reason))


def verify_checkpoint(ck: dict, node: str, model: str, request: bytes, chain: Chain) -> None:
    if ck["tokens"] != chain.n or ck["chain"] != fmt("chain", chain.link):
        raise ReceiptInvalid(f"checkpoint at {ck['tokens']} does not match the tokens received")
    msg = digest("ckpt", parse(model, "model") + request + u64(ck["tokens"]) + chain.link)
    key = nacl.signing.VerifyKey(bytes.fromhex(node[len("ed25519:"):]))
    try:
        key.verify(msg, bytes.fromhex(ck["signature"]))
    except nacl.exceptions.BadSignatureError as e:
        raise ReceiptInvalid("bad checkpoint signature") from e


def verify_transcript(r: dict, tr: dict) -> None:
    """Raises ReceiptInvalid unless the receipt signs exactly this request,
    seed, tokens and released texts."""
    request = llm_request_digest(tr["request"])
    if fmt("in", request) != r["request"]:
        raise ReceiptInvalid("the request does not match the receipt")
    if r["seed"] != tr["request"]["sampling"]["seed"]:
        raise ReceiptInvalid("the seed does not match the receipt")
    if len(tr["tokens"]) != len(tr["texts"]):
        raise ReceiptInvalid("tokens and texts differ in length")
    logprobs = tr.get("logprobs") or []
    if len(logprobs) != (len(tr["tokens"]) if tr["request"].get("logprobs") is not None else 0):
        raise ReceiptInvalid("log-probabilities do not match the tokens")
    chain = Chain(request)
    for i, (t, text) in enumerate(zip(tr["tokens"], tr["texts"])):
        chain.push(t, text, logprobs[i] if logprobs else None)
    if fmt("out", chain.output(tr["finish_reason"])) != r["output"]:
        raise ReceiptInvalid("the answer does not match the receipt")


def load_vectors(path):
    with open(path) as f:
        return json.load(f)
