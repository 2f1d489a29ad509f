"""The official `openai` Python client against a running node with a real
LLM (SmolLM2-135M-Instruct, GGUF, llama.cpp) and a real embedding model
(MiniLM int8 + its tokenizer): chat, streaming chat, completions,
embeddings, errors. Every answer's receipt is checked with the independent
implementation in vouch_ref, and the stream's hash chain and checkpoints
as they arrive.

Embeddings are compared with onnxruntime + the reference `tokenizers`
package (mask-aware mean pooling, L2 normalisation): cosine >= 0.999.
"""

import json
import urllib.request

import numpy as np
import onnxruntime as ort
import openai
import pytest
from tokenizers import Tokenizer

import vouch_ref as v
from nodes import MODELS, running

LLM = "smollm2-135m"
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
QUESTION = {"role": "user", "content": "What is the capital of France?"}


def serving_samples(url):
    with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
        ids = [m["id"] for m in json.loads(r.read())["data"]]
    return LLM in ids and "minilm-int8" in ids


@pytest.fixture(scope="module")
def url():
    with running("up", serving_samples, 120, "with the sample models") as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def check_answer(raw: dict, messages=None):
    """The receipt verifies and signs exactly this transcript and text, and,
    for a chat, exactly the `messages` sent (a provider that rewrote an
    instruction would sign other ones)."""
    receipt, tr = raw["vouch"]["receipt"], raw["vouch"]["transcript"]
    v.verify_receipt(receipt)
    v.verify_transcript(receipt, tr)
    if messages is not None:
        assert tr["request"]["messages"] == messages, tr["request"]
        assert tr["request"]["template"].startswith("blob:")
    choice = raw["choices"][0]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    assert text == "".join(tr["texts"])
    assert choice["finish_reason"] == tr["finish_reason"]
    return receipt, tr


def test_models_lists_the_llm(client):
    ids = [m.id for m in client.models.list().data]
    assert LLM in ids and "minilm-int8" in ids


def test_greedy_chat_answers_paris_with_a_receipt(client):
    raw = client.chat.completions.with_raw_response.create(
        model=LLM, messages=[SYSTEM, QUESTION], temperature=0, max_tokens=32)
    resp = raw.parse()
    assert "Paris" in resp.choices[0].message.content
    assert resp.usage.completion_tokens > 0 and resp.usage.prompt_tokens > 0
    body = json.loads(raw.http_response.text)
    receipt, _ = check_answer(body, [SYSTEM, QUESTION])
    assert json.loads(raw.headers["x-vouch-receipt"]) == receipt


def test_same_seed_same_answer_and_both_verify(client):
    kw = dict(model=LLM, messages=[QUESTION], temperature=0.9, top_p=0.95, seed=42, max_tokens=24)
    a = json.loads(client.chat.completions.with_raw_response.create(**kw).http_response.text)
    b = json.loads(client.chat.completions.with_raw_response.create(**kw).http_response.text)
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
    ra, _ = check_answer(a)
    rb, _ = check_answer(b)
    assert ra["seed"] == rb["seed"] == 42
    assert ra["output"] == rb["output"] and ra["id"] != rb["id"]


def check_stream(stream, node):
    """Checks a streamed chat as it arrives: the hash chain over tokens,
    every checkpoint signed by `node`, and the receipt at the end signing
    that chain for the model announced first. Returns (text, receipt)."""
    text, chain, request, model_id, checkpoints, receipt = "", None, None, None, 0, None
    for chunk in stream:
        extra = chunk.model_extra.get("vouch") or {}
        if "request" in extra:
            request, model_id = extra["request"], extra["model_id"]
            chain = v.Chain(v.llm_request_digest(request))
        if "token" in extra:
            piece = chunk.choices[0].delta.content or ""
            text += piece
            chain.push(extra["token"], piece)
        if "checkpoint" in extra:
            v.verify_checkpoint(extra["checkpoint"], node, model_id,
                                v.llm_request_digest(request), chain)
            checkpoints += 1
        if "receipt" in extra:
            receipt = extra["receipt"]
            v.verify_receipt(receipt)
            assert receipt["output"] == v.fmt("out", chain.output(extra["finish_reason"]))
            assert receipt["model"] == model_id
    assert receipt is not None
    assert checkpoints == (chain.n - 1) // 16
    return text, receipt


def test_streaming_chat_checks_as_it_arrives(client, url):
    with urllib.request.urlopen(url + "/healthz") as r:
        node = json.loads(r.read())["node"]
    stream = client.chat.completions.create(
        model=LLM, messages=[SYSTEM, QUESTION], temperature=0, max_tokens=40, stream=True)
    text, _ = check_stream(stream, node)
    assert "Paris" in text


def test_completion_and_stream(client):
    raw = client.completions.with_raw_response.create(
        model=LLM, prompt="The capital of France is", temperature=0, max_tokens=8)
    body = json.loads(raw.http_response.text)
    check_answer(body)
    assert "Paris" in body["choices"][0]["text"]
    pieces = [c.choices[0].text for c in client.completions.create(
        model=LLM, prompt="The capital of France is", temperature=0, max_tokens=8, stream=True)
        if c.choices]
    assert "".join(pieces) == body["choices"][0]["text"]


def test_stop_strings_end_the_answer(client):
    resp = client.completions.create(model=LLM, prompt="Count: one, two, three,",
                                     temperature=0, max_tokens=30, stop=[","])
    assert "," not in resp.choices[0].text
    assert resp.choices[0].finish_reason == "stop"


def test_errors_are_openai_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[QUESTION])
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=LLM, messages=[QUESTION], max_tokens=100000)
    assert "context holds" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="minilm-int8", messages=[QUESTION])
    assert "does not generate text" in str(e.value)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=LLM, messages=[QUESTION], temperature=-1)


def reference_tokenizer():
    """MiniLM's tokenizer as the node uses it: no padding, no truncation."""
    tok = Tokenizer.from_file(str(MODELS / "minilm.tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def reference_embeddings(texts):
    tok = reference_tokenizer()
    sess = ort.InferenceSession(str(MODELS / "minilm-int8.onnx"))
    out = []
    for t in texts:
        enc = tok.encode(t)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.array([enc.type_ids], dtype=np.int64)}
        hidden = sess.run(None, feeds)[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out.append(pooled[0] / np.linalg.norm(pooled[0]))
    return np.array(out)


def run_inputs(texts):
    """The encoder's inputs for one run: each text tokenized alone, padded
    with zeros to the run's longest."""
    encs = [reference_tokenizer().encode(t) for t in texts]
    seq = max(len(e.ids) for e in encs)
    def pad(rows):
        return np.array([r + [0] * (seq - len(r)) for r in rows], dtype=np.int64)
    return {"input_ids": pad([e.ids for e in encs]),
            "attention_mask": pad([e.attention_mask for e in encs]),
            "token_type_ids": pad([e.type_ids for e in encs])}


def test_embeddings_match_onnxruntime_and_rank_paraphrases(client):
    long = "The stock market fell today, " + "and then it fell some more, " * 12 + "until it stopped."
    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell today.", long]
    raw = client.embeddings.with_raw_response.create(model="minilm-int8", input=texts)  # the client asks for base64
    resp = raw.parse()
    ours = np.array([d.embedding for d in resp.data])
    ref = reference_embeddings(texts)
    cos = (ours * ref).sum(1)
    assert (cos >= 0.999).all(), cos
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    sim = ours @ ours.T
    assert sim[0, 1] > sim[0, 2] + 0.2, sim
    assert resp.usage.prompt_tokens > 0
    # The long text runs apart from the short ones (no padding them to its
    # length); each run's receipt binds exactly its texts' tokens.
    vouch = json.loads(raw.http_response.text)["vouch"]
    runs, receipts = vouch["runs"], vouch["receipts"]
    assert sorted(i for run in runs for i in run) == [0, 1, 2, 3]
    assert [3] in runs and len(receipts) == len(runs) >= 2
    for run, receipt in zip(runs, receipts):
        v.verify_receipt(receipt, inputs=run_inputs([texts[i] for i in run]))
    assert raw.headers["x-vouch-receipt-id"] == ",".join(r["id"] for r in receipts)
    with pytest.raises(v.ReceiptInvalid):
        v.verify_receipt(receipts[0], inputs=run_inputs([texts[i] for i in runs[-1]]))
    floats = client.embeddings.create(model="minilm-int8", input="hello", encoding_format="float")
    assert len(floats.data[0].embedding) == 384


def get(url, path):
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return json.loads(r.read())


def lists_the_llm(url):
    return LLM in [m["id"] for m in get(url, "/v1/models")["data"]]


def test_a_node_without_the_model_routes_to_a_provider(url):
    """A second node joins the first over libp2p with no model of its own:
    the same client, pointed at it, gets the provider's answers, signed by
    the provider, streamed with the provider's checkpoints."""
    bootstrap = get(url, "/v1/network/nodes")["listen"][0]
    provider = get(url, "/healthz")["node"]
    # The gateway routes the name only to a model an operator it admits published.
    with running("node", lists_the_llm, 60, "and heard of the LLM",
                 args=("--bootstrap", bootstrap, "--audit-rate", "0", "--admit", provider)) as gateway:
        listed = next(m for m in get(gateway, "/v1/models")["data"] if m["id"] == LLM)
        assert listed["vouch"]["local"] is False and listed["vouch"]["format"] == "gguf"
        client = openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model=LLM, messages=[SYSTEM, QUESTION], temperature=0, max_tokens=32)
        body = json.loads(raw.http_response.text)
        # Relayed by the gateway: still exactly our messages.
        receipt, _ = check_answer(body, [SYSTEM, QUESTION])
        assert "Paris" in body["choices"][0]["message"]["content"]
        assert receipt["node"] == provider
        assert body["vouch"]["route"][-1] == body["vouch"]["executor"] != body["vouch"]["route"][0]

        stream = client.chat.completions.create(
            model=LLM, messages=[QUESTION], temperature=0.7, seed=3, max_tokens=40, stream=True)
        _, receipt = check_stream(stream, provider)
        assert receipt["node"] == provider

        # A tool call with log-probabilities, routed: the provider runs the
        # constraint, and the gateway checks it signs the request asked.
        weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string", "maxLength": 24}},
            "required": ["city"], "additionalProperties": False}}}
        raw = client.chat.completions.with_raw_response.create(
            model=LLM, messages=[QUESTION], tools=[weather], tool_choice="required", temperature=0,
            max_tokens=48, logprobs=True, top_logprobs=1)
        body = json.loads(raw.http_response.text)
        assert body["vouch"]["receipt"]["node"] == provider
        call = body["choices"][0]["message"]["tool_calls"][0]["function"]
        assert call["name"] == "get_weather" and "city" in json.loads(call["arguments"])
        tr = body["vouch"]["transcript"]
        v.verify_transcript(body["vouch"]["receipt"], tr)
        assert len(tr["logprobs"]) == len(tr["tokens"]) and json.loads(tr["request"]["tools"]) == [weather]

        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="no-such-model", messages=[QUESTION])


# Agents: structured outputs and tool calls (issue 31). Every answer obeys
# its schema whatever the seed, its receipt binds the constraint (checked
# with vouch_ref's own encoding), and the tool calls are read from the text
# the receipt binds.

import copy
import os
import pathlib
import subprocess
import sys

import jsonschema
import pydantic

from nodes import BIN, operator_headers

SCHEMAS = [
    {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                      "population": {"type": "integer", "minimum": 0}},
     "required": ["city", "population"], "additionalProperties": False},
    {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]},
                                      "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
     "required": ["answer", "confidence"], "additionalProperties": False},
    {"type": "object", "properties": {"colours": {"type": "array", "minItems": 2, "maxItems": 3,
                                                  "items": {"type": "string", "maxLength": 12}}},
     "required": ["colours"], "additionalProperties": False},
]
PROMPTS = ["Name a large city and its population.", "Is Paris in France?", "Name some colours."]

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                                    "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The local time in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}},
                   "required": ["city"], "additionalProperties": False}}}
ASK_WEATHER = {"role": "user", "content": "What is the weather in Paris?"}


def bound_constraint(tr):
    return json.loads(tr["request"]["constraint"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_json_schema_answers_validate_for_every_schema_and_seed(client, seed):
    for schema, prompt in zip(SCHEMAS, PROMPTS):
        messages = [{"role": "user", "content": prompt}]
        raw = client.chat.completions.with_raw_response.create(
            model=LLM, messages=messages, max_tokens=96, seed=seed,
            temperature=0 if seed == 0 else 0.9,
            response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}})
        body = json.loads(raw.http_response.text)
        _, tr = check_answer(body, messages)
        assert body["choices"][0]["finish_reason"] == "stop", body["choices"][0]
        jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), schema)
        assert bound_constraint(tr) == {"type": "json_schema", "schema": schema}


class City(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=24)
    country: str = pydantic.Field(max_length=24)


def test_the_clients_own_parse_helper_gets_a_typed_answer(client):
    parsed = client.chat.completions.parse(
        model=LLM, messages=[{"role": "user", "content": "Name a city in Italy."}],
        temperature=0, max_tokens=64, response_format=City)
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City) and city.name and city.country


def test_json_object_answers_parse(client):
    for seed in (1, 2):
        raw = client.chat.completions.with_raw_response.create(
            model=LLM, messages=[{"role": "user", "content": "Describe a cat as a JSON object."}],
            max_tokens=64, seed=seed, temperature=0.8, response_format={"type": "json_object"})
        body = json.loads(raw.http_response.text)
        _, tr = check_answer(body)
        assert bound_constraint(tr) == {"type": "json_object"}
        text = body["choices"][0]["message"]["content"]
        assert text.startswith("{")
        if body["choices"][0]["finish_reason"] == "stop":
            assert isinstance(json.loads(text), dict)


def tool_call_check(raw_body, tools):
    """The receipt signs the transcript; the tool calls are what its text
    says; each call's arguments validate against its tool's schema."""
    receipt, tr = raw_body["vouch"]["receipt"], raw_body["vouch"]["transcript"]
    v.verify_receipt(receipt)
    v.verify_transcript(receipt, tr)
    assert json.loads(tr["request"]["tools"]) == tools
    said = json.loads("".join(tr["texts"]))
    calls = raw_body["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == \
        [(c["name"], c["arguments"]) for c in said["tool_calls"]]
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    for c in calls:
        jsonschema.validate(json.loads(c["function"]["arguments"]), by_name[c["function"]["name"]])
    return calls


def test_a_forced_tool_call_validates_and_streams_the_same(client):
    tools = [WEATHER, TIME]
    for choice in ("required", {"type": "function", "function": {"name": "get_time"}}):
        # One seed for both: the call ids derive from the request digest.
        kw = dict(model=LLM, messages=[ASK_WEATHER], tools=tools, tool_choice=choice,
                  temperature=0, seed=7, max_tokens=64)
        raw = client.chat.completions.with_raw_response.create(**kw)
        body = json.loads(raw.http_response.text)
        assert body["choices"][0]["finish_reason"] == "tool_calls", body["choices"][0]
        calls = tool_call_check(body, tools)
        assert len(calls) == 1
        if isinstance(choice, dict):
            assert calls[0]["function"]["name"] == "get_time"
        message = raw.parse().choices[0].message
        assert message.content is None and message.tool_calls[0].id == calls[0]["id"]
        # The same request streamed: the same call, assembled from deltas
        # as the client does, and the chain over the tokens checks.
        streamed, finish, chain, receipt = {}, None, None, None
        for chunk in client.chat.completions.create(**kw, stream=True):
            extra = chunk.model_extra.get("vouch") or {}
            if "request" in extra:
                chain = v.Chain(v.llm_request_digest(extra["request"]))
            if "token" in extra:
                chain.push(extra["token"], extra["text"])
            if "receipt" in extra:
                receipt = extra["receipt"]
            for c in chunk.choices:
                finish = c.finish_reason or finish
                for d in c.delta.tool_calls or []:
                    s = streamed.setdefault(d.index, {"id": d.id, "name": d.function.name, "arguments": ""})
                    s["arguments"] += d.function.arguments or ""
        assert finish == "tool_calls"
        assert [(s["id"], s["name"], s["arguments"]) for s in streamed.values()] == \
            [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls]
        assert receipt["output"] == v.fmt("out", chain.output("stop"))
        assert receipt["output"] == body["vouch"]["receipt"]["output"]


def test_tool_results_feed_back_and_are_bound(client):
    tools = [WEATHER]
    first = client.chat.completions.create(
        model=LLM, messages=[ASK_WEATHER], tools=tools, tool_choice="required", temperature=0, max_tokens=64)
    call = first.choices[0].message.tool_calls[0]
    # The client's message object as it is (refusal and annotations null).
    messages = [ASK_WEATHER, first.choices[0].message.model_dump(),
                {"role": "tool", "tool_call_id": call.id, "content": "18 °C and sunny"}]
    raw = client.chat.completions.with_raw_response.create(
        model=LLM, messages=messages, tools=tools, temperature=0, max_tokens=48)
    body = json.loads(raw.http_response.text)
    receipt, tr = body["vouch"]["receipt"], body["vouch"]["transcript"]
    v.verify_transcript(receipt, tr)
    sent = tr["request"]["messages"]
    assert sent[1]["tool_calls"] == [{"id": call.id, "name": "get_weather", "arguments": call.function.arguments}]
    assert sent[2] == {"role": "tool", "content": "18 °C and sunny", "tool_call_id": call.id}
    # With tool_choice auto the model may answer or call again; either way
    # the message is what the bound text says.
    message = body["choices"][0]["message"]
    said = json.loads("".join(tr["texts"]))
    if message.get("tool_calls"):
        assert body["choices"][0]["finish_reason"] == "tool_calls"
    else:
        assert message["content"] == said["response"]


def test_a_saved_tool_call_verifies_offline_and_an_edit_does_not(client, tmp_path):
    raw = client.chat.completions.with_raw_response.create(
        model=LLM, messages=[ASK_WEATHER], tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=64)
    body = json.loads(raw.http_response.text)
    saved = tmp_path / "answer.json"
    saved.write_text(json.dumps(body))
    ok = subprocess.run([BIN, "verify", str(saved)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    edited = copy.deepcopy(body)
    edited["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"city": "Berlin", "unit": "celsius"}'
    saved.write_text(json.dumps(edited))
    bad = subprocess.run([BIN, "verify", str(saved)], capture_output=True, text=True)
    assert bad.returncode != 0 and "tool_calls" in bad.stderr, bad.stderr


def test_fields_the_node_would_not_apply_are_refused_by_name(client):
    for field, value in [("presence_penalty", 0.5), ("frequency_penalty", 1.0),
                         ("logit_bias", {"42": 5}), ("echo", True)]:
        create = client.completions.create if field == "echo" else client.chat.completions.create
        with pytest.raises(openai.BadRequestError) as e:
            create(model=LLM, max_tokens=1, **{field: value},
                   **({"prompt": "Hi"} if field == "echo" else {"messages": [QUESTION]}))
        err = e.value.body
        assert err["code"] == "unsupported_parameter" and err["param"] == field, err
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=LLM, messages=[{**QUESTION, "audio": {"id": "a1"}}], max_tokens=1)
    assert e.value.body["param"] == "messages[0].audio", e.value.body
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=LLM, messages=[QUESTION], max_tokens=1, n=2)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=LLM, messages=[QUESTION], max_tokens=1,
                                       response_format={"type": "json_schema", "json_schema": {
                                           "name": "x", "schema": {"type": "bogus"}}})
    assert "schema" in str(e.value)


def test_the_readmes_agent_example_runs(url, tmp_path):
    example = pathlib.Path(__file__).parents[2] / "examples" / "agent.py"
    run = subprocess.run([sys.executable, str(example), url], cwd=tmp_path, capture_output=True,
                         text=True, env=dict(os.environ, VOUCH_BIN=BIN), timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "structured: {" in run.stdout and "tool call: get_weather" in run.stdout
    assert (tmp_path / "city.json").exists() and (tmp_path / "call.json").exists()


def test_logprobs_are_bound_and_match_the_nodes_recomputation(client, url):
    raw = client.chat.completions.with_raw_response.create(
        model=LLM, messages=[QUESTION], temperature=0, max_tokens=12, logprobs=True, top_logprobs=3)
    resp, body = raw.parse(), json.loads(raw.http_response.text)
    receipt, tr = check_answer(body, [QUESTION])
    assert tr["request"]["logprobs"] == 3 and len(tr["logprobs"]) == len(tr["tokens"])
    content = resp.choices[0].logprobs.content
    assert len(content) >= len(tr["tokens"]) - 1
    for entry, lp, token in zip(content, tr["logprobs"], tr["tokens"]):
        assert entry.logprob == pytest.approx(lp["logprob"]) and entry.logprob <= 0
        assert bytes(entry.bytes) == bytes(lp["bytes"])
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob), "greedy picks the likeliest"
        assert lp["top"][0]["token"] == token
    # The node's own audit recomputes them from one forward pass.
    req = urllib.request.Request(url + "/v1/audit/llm", method="POST",
                                 data=json.dumps({"receipt": receipt, "transcript": tr}).encode(),
                                 headers={"content-type": "application/json", **operator_headers(url)})
    with urllib.request.urlopen(req) as r:
        check = json.loads(r.read())
    assert check["ok"], check
    # Any edit breaks the receipt: the values are in the hash chain.
    edited = copy.deepcopy(tr)
    edited["logprobs"][0]["top"][1]["logprob"] -= 0.25
    with pytest.raises(v.ReceiptInvalid):
        v.verify_transcript(receipt, edited)
    # Completions: OpenAI's older shape.
    c = client.completions.create(model=LLM, prompt="The capital of France is", temperature=0,
                                  max_tokens=4, logprobs=2)
    assert len(c.choices[0].logprobs.tokens) == len(c.choices[0].logprobs.token_logprobs) >= 1
    assert all(len(t) <= 2 for t in c.choices[0].logprobs.top_logprobs)
