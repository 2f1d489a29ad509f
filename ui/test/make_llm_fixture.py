"""Writes ui/test/llm-fixture.json: a generated answer (request, tokens,
texts, checkpoint, receipt) encoded and signed in Python with
tests/python/vouch_ref.py (PyPI blake3 + pynacl), following
docs/receipts.md "Generated text". The JavaScript verifier is tested
against it, so the two implementations must agree byte for byte.

Run: "$(scripts/python-env.sh)" ui/test/make_llm_fixture.py
"""

import json
import pathlib
import struct
import sys

import nacl.signing
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
import vouch_ref as v  # noqa: E402

v.CONTEXTS.update({"chain": "vouch v1 stream chain", "ckpt": "vouch v1 stream checkpoint"})
TAG = "vouch llm v1"


def f64(x):
    return struct.pack("<d", x)


def encode_request(q):
    out = v.string(TAG) + bytes([{"chat": 1, "completion": 2}[q["mode"]]]) + v.string(q["prompt"])
    out += v.u32(q["max_tokens"]) + v.u32(len(q["stop"])) + b"".join(v.string(s) for s in q["stop"])
    s = q["sampling"]
    return out + f64(s["temperature"]) + f64(s["top_p"]) + v.u32(s["top_k"]) + v.u64(s["seed"])


def tool_response(key, node, model):
    """A chat answer with a tool call, as the node shapes it: the message is
    read from the signed text (docs/receipts.md, "Tools")."""
    request = {
        "mode": "chat", "prompt": "<|im_start|>user\nWeather?<|im_end|>\n", "max_tokens": 64, "stop": [],
        "sampling": {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "seed": 3},
        "messages": [{"role": "user", "content": "Weather?"}],
        "template": v.fmt("blob", v.digest("blob", b"a template")),
        "constraint": '{"type":"json_schema","schema":{"type":"object"}}',
        "tools": '[{"type":"function","function":{"name":"weather"}}]',
    }
    rd = v.llm_request_digest(request)
    texts = ['{"tool_calls": [{"name": "weather", ', '"arguments": {"city": "Paris", ', '"t": 20.0}}]}', ""]
    tokens = [11, 12, 13, 2]
    chain = v.Chain(rd)
    for t, x in zip(tokens, texts):
        chain.push(t, x)
    leaves = [v.trace_leaf(i, "token", [np.array([t], dtype="int32")]) for i, t in enumerate(tokens)]
    receipt = {
        "version": 1, "model": v.fmt("model", model), "request": v.fmt("in", rd),
        "output": v.fmt("out", chain.output("stop")),
        "trace": {"root": v.fmt("trace", v.merkle_root(leaves)), "len": len(tokens)},
        "engine": {"name": "llama.cpp", "version": "b1234"},
        "determinism": {"class": "tolerant", "rtol": 0.02},
        "seed": 3, "node": node, "nonce": "", "timestamp_ms": 1790000000000, "price": 0,
    }
    rid = v.digest("rcpt", v.receipt_body(receipt))
    receipt = {"id": v.fmt("rcpt", rid), **receipt, "signature": key.sign(rid).signature.hex()}
    said = json.loads("".join(texts))
    calls = [{"id": f"call_{rd.hex()[:16]}_{i}", "type": "function",
              "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], separators=(",", ":"))}}
             for i, c in enumerate(said["tool_calls"])]
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls},
                     "finish_reason": "tool_calls", "logprobs": None}],
        "vouch": {"receipt": receipt, "transcript": {"request": request, "tokens": tokens, "texts": texts,
                                                     "finish_reason": "stop"}},
    }


def main():
    vectors = v.load_vectors(ROOT / "docs" / "receipt-vectors.json")
    key = nacl.signing.SigningKey(bytes.fromhex(vectors["signing_key_seed_hex"]))
    node = "ed25519:" + key.verify_key.encode().hex()
    request = {
        "mode": "chat",
        "prompt": "<|user|>\nBonjour — 你好 🌍 \"quoted\"\n<|assistant|>\n",
        "max_tokens": 128,
        "stop": ["\n\n", "User:"],
        "sampling": {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 2**63 + 5},
    }
    rd = v.digest("in", encode_request(request))
    model = v.digest("model", b"a model manifest")
    texts = ["Par", "is", "", " é", "t", "é", " 🌍", ""] + [f" w{i}" for i in range(8)] + [" end", ".", ""]
    tokens = [1000 + 37 * i for i in range(len(texts) - 1)] + [2]
    link = v.digest("chain", rd)
    links = []
    checkpoints = []
    for i, (t, x) in enumerate(zip(tokens, texts)):
        link = v.digest("chain", link + v.u32(t) + v.string(x))
        links.append(v.fmt("chain", link))
        n = i + 1
        if n % 16 == 0 and n != len(tokens):
            d = v.digest("ckpt", model + rd + v.u64(n) + link)
            checkpoints.append({"after_token": n, "checkpoint": {
                "tokens": n, "chain": v.fmt("chain", link), "signature": key.sign(d).signature.hex()},
                "digest": v.fmt("ckpt", d)})
    n = len(tokens)
    output = v.digest("out", v.string(TAG) + link + v.u64(n) + v.string("stop"))
    leaves = [v.trace_leaf(i, "token", [np.array([t], dtype="int32")]) for i, t in enumerate(tokens)]
    receipt = {
        "version": 1,
        "model": v.fmt("model", model),
        "request": v.fmt("in", rd),
        "output": v.fmt("out", output),
        "trace": {"root": v.fmt("trace", v.merkle_root(leaves)), "len": n},
        "engine": {"name": "llama.cpp", "version": "b1234"},
        "determinism": {"class": "tolerant", "rtol": 0.02},
        "seed": request["sampling"]["seed"],
        "node": node,
        "nonce": "",
        "timestamp_ms": 1790000000000,
        "price": 0,
    }
    rid = v.digest("rcpt", v.receipt_body(receipt))
    receipt = {"id": v.fmt("rcpt", rid), **receipt, "signature": key.sign(rid).signature.hex()}
    v.verify_receipt(receipt)
    transcript = {"request": request, "tokens": tokens, "texts": texts, "finish_reason": "stop"}
    if hasattr(v, "llm_request_bytes"):  # vouch_ref's own LLM encoding, when it has one
        assert v.llm_request_bytes(request) == encode_request(request)
        v.verify_transcript(receipt, transcript)
        chain = v.Chain(rd)
        for t, x in zip(tokens[:16], texts[:16]):
            chain.push(t, x)
        v.verify_checkpoint(checkpoints[0]["checkpoint"], node, receipt["model"], rd, chain)
    # A chat with a constraint, tools and tool messages: the encoding's
    # extension, as tests/python/vouch_ref.py writes it.
    extended = {
        **request,
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "name": "weather", "arguments": "{\"city\": \"Paris\"}"}]},
            {"role": "tool", "content": "18 °C", "tool_call_id": "call_1"},
        ],
        "template": v.fmt("blob", v.digest("blob", b"a template")),
        "constraint": '{"schema":{"type":"object"},"type":"json_schema"}',
        "tools": '[{"function":{"name":"weather"},"type":"function"}]',
        "logprobs": 2,
    }
    # Log-probabilities bound in the chain: one link after the request.
    logprobs = {"logprob": -0.25, "bytes": list(" Paris".encode()),
                "top": [{"token": 7, "logprob": -0.25, "bytes": list(" Paris".encode())},
                        {"token": 9, "logprob": -1.625, "bytes": [0xe2, 0x80]}]}
    lp_chain = v.Chain(v.llm_request_digest(extended))
    lp_chain.push(7, " Paris", logprobs)
    fixture_tool = tool_response(key, node, model)
    fixture = {
        "about": "Made by ui/test/make_llm_fixture.py with tests/python/vouch_ref.py; see docs/receipts.md.",
        "request": request,
        "request_encoding_hex": encode_request(request).hex(),
        "request_digest": v.fmt("in", rd),
        "model_id": v.fmt("model", model),
        "tokens": tokens,
        "texts": texts,
        "links": links,
        "output_length": v.fmt("out", v.digest("out", v.string(TAG) + link + v.u64(n) + v.string("length"))),
        "leaves": [v.fmt("leaf", l) for l in leaves],
        "checkpoints": checkpoints,
        "finish_reason": "stop",
        "receipt": receipt,
        "extended_request": extended,
        "extended_request_digest": v.fmt("in", v.llm_request_digest(extended)),
        "logprobs": logprobs,
        "logprobs_link": v.fmt("chain", lp_chain.link),
        "tool_response": fixture_tool,
    }
    path = pathlib.Path(__file__).with_name("llm-fixture.json")
    path.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(path)


main()
