"""The API as documented: live answers of a real node validated against its
own `/openapi.json` with an independent JSON Schema implementation
(`jsonschema`). Every object schema that lists properties is made strict
(no other properties allowed), so a field the node sends and the document
does not name fails here, as does a field the document requires and the
node leaves out, or a wrong type."""

import copy
import json
import time
import urllib.parse

import jsonschema
import pytest

from nodes import MODELS, operator_headers, running
from test_models import call, healthy, push

IRIS_INPUT = {"float_input": {"dtype": "float32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}}


def strict(schema):
    """A copy of `schema` where every object that lists its properties
    allows no others."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def node():
    with running("node", healthy, 30) as url:
        push(node=url, file="iris.onnx", name="iris", shapes=["float_input=N,4"])
        yield url


@pytest.fixture(scope="module")
def doc(node):
    status, doc = call(f"{node}/openapi.json")
    assert status == 200
    return doc


def check(doc, method, template, status, body):
    """Validates `body` against the schema the document gives for
    `method template` answering `status`."""
    op = doc["paths"][template][method]
    response = op["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    root = strict({"components": doc["components"], **schema})
    jsonschema.Draft202012Validator(root).validate(body)


def test_every_json_answer_is_the_documented_shape(node, doc):
    s, b = call(f"{node}/healthz")
    check(doc, "get", "/healthz", s, b)
    s, b = call(f"{node}/v1/operator", headers=operator_headers(node))
    check(doc, "get", "/v1/operator", s, b)
    s, b = call(f"{node}/v1/hub/models")
    check(doc, "get", "/v1/hub/models", s, b)
    s, b = call(f"{node}/v1/hub/models/iris")
    check(doc, "get", "/v1/hub/models/{name}", s, b)
    body = json.dumps({"inputs": IRIS_INPUT, "nonce": "openapi", "verify": "receipt"}).encode()
    s, answer = call(f"{node}/v1/infer/iris", "POST", body, {"content-type": "application/json"})
    check(doc, "post", "/v1/infer/{name}", s, answer)
    rid = answer["receipt"]["id"]
    s, b = call(f"{node}/v1/receipts/{rid}")
    check(doc, "get", "/v1/receipts/{id}", s, b)
    s, b = call(f"{node}/v1/receipts/{rid}/trace/0")
    check(doc, "get", "/v1/receipts/{id}/trace/{index}", s, b)
    s, b = call(f"{node}/v1/network/nodes")
    check(doc, "get", "/v1/network/nodes", s, b)
    s, b = call(f"{node}/v1/network/evidence")
    check(doc, "get", "/v1/network/evidence", s, b)
    s, b = call(f"{node}/v1/hub/models/iris/pin")
    check(doc, "get", "/v1/hub/models/{name}/pin", s, b)
    s, b = call(f"{node}/v1/receipts", "POST", json.dumps(answer["receipt"]).encode(),
                {"content-type": "application/json"})
    check(doc, "post", "/v1/receipts", s, b)
    s, b = call(f"{node}/v1/hub/gc", "POST", b"", operator_headers(node))
    check(doc, "post", "/v1/hub/gc", s, b)


def test_ledger_answers_are_the_documented_shape(node, doc, tmp_path):
    """`vouch up` runs a ledger chain: its routes answer as documented."""
    with running("up", healthy, 60, args=("--models", str(tmp_path), "--price", "5")) as up:
        s, b = call(f"{up}/v1/ledger/status")
        check(doc, "get", "/v1/ledger/status", s, b)
        key = b["validators"][0]["operator"]
        s, b = call(f"{up}/v1/ledger/params")
        assert s == 200 and b["audit_rate_ppm"] == 50000, b
        check(doc, "get", "/v1/ledger/params", s, b)
        s, b = call(f"{up}/v1/ledger/economics")
        assert s == 200 and b["nakamoto_coefficient"]["stake"] == 1, b
        check(doc, "get", "/v1/ledger/economics", s, b)
        s, b = call(f"{up}/v1/ledger/proposals")
        assert s == 200 and b == [], b
        check(doc, "get", "/v1/ledger/proposals", s, b)
        s, b = call(f"{up}/healthz")
        check(doc, "get", "/healthz", s, b)
        deadline = time.time() + 60
        while call(f"{up}/v1/ledger/status")[1]["height"] < 1:
            assert time.time() < deadline, "no block within a minute"
            time.sleep(0.1)
        s, b = call(f"{up}/v1/ledger/blocks/1")
        assert s == 200 and b["height"] == 1, b
        check(doc, "get", "/v1/ledger/blocks/{height}", s, b)
        s, b = call(f"{up}/v1/ledger/blocks/99999999")
        assert s == 404, b
        check(doc, "get", "/v1/ledger/blocks/{height}", s, b)
        s, b = call(f"{up}/v1/payments/{key}")
        assert s == 200 and b["price"] == 5 and b["held"] is None, b
        check(doc, "get", "/v1/payments/{client}", s, b)
        body = json.dumps({"inputs": IRIS_INPUT}).encode()
        s, b = call(f"{up}/v1/infer/iris", "POST", body, {"content-type": "application/json"})
        assert s == 402 and b["error"]["code"] == "payment_required", b
        check(doc, "post", "/v1/infer/{name}", s, b)
        s, b = call(f"{up}/v1/ledger/operators")
        check(doc, "get", "/v1/ledger/operators", s, b)
        s, b = call(f"{up}/v1/ledger/accounts/{key}")
        check(doc, "get", "/v1/ledger/accounts/{key}", s, b)
        s, b = call(f"{up}/v1/ledger/tx", "POST", json.dumps({"tx": "00"}).encode(),
                    {"content-type": "application/json"})
        assert s == 400, b
        check(doc, "post", "/v1/ledger/tx", s, b)
        s, b = call(f"{up}/v1/ledger/tx/{'0' * 64}")
        assert s == 404, b
        check(doc, "get", "/v1/ledger/tx/{id}", s, b)
        s, b = call(f"{up}/v1/ledger/tx/nothex")
        assert s == 400, b
        check(doc, "get", "/v1/ledger/tx/{id}", s, b)
    # A node without a chain says so, in the documented shape.
    s, b = call(f"{node}/v1/ledger/status")
    assert s == 404, b
    check(doc, "get", "/v1/ledger/status", s, b)


def test_errors_are_the_documented_shape(node, doc):
    s, b = call(f"{node}/v1/hub/models/nosuch")
    assert s == 404
    check(doc, "get", "/v1/hub/models/{name}", s, b)
    bad = json.dumps({"inputs": {"float_input": {"dtype": "float32", "shape": [1, 3], "data": [1, 2, 3]}}}).encode()
    s, b = call(f"{node}/v1/infer/iris", "POST", bad, {"content-type": "application/json"})
    assert s in (400, 422), b
    check(doc, "post", "/v1/infer/{name}", s, b)


def test_a_field_the_document_does_not_name_fails_the_check(node, doc):
    """The check itself can fail: an answer with one field more, or one
    required field less, is refused."""
    s, b = call(f"{node}/v1/hub/models/iris")
    extra = copy.deepcopy(b)
    extra["undocumented"] = 1
    with pytest.raises(jsonschema.ValidationError):
        check(doc, "get", "/v1/hub/models/{name}", s, extra)
    body = json.dumps({"inputs": IRIS_INPUT}).encode()
    s, answer = call(f"{node}/v1/infer/iris", "POST", body, {"content-type": "application/json"})
    missing = copy.deepcopy(answer)
    del missing["receipt"]["signature"]
    with pytest.raises(jsonschema.ValidationError):
        check(doc, "post", "/v1/infer/{name}", s, missing)


def test_a_request_the_document_allows_is_accepted(node, doc):
    """The request schemas say what the node takes: every property the
    InferRequest schema names is one the node accepts."""
    props = doc["components"]["schemas"]["InferRequest"]["properties"]
    assert {"inputs", "nonce", "verify"} <= set(props), props
    query = urllib.parse.urlencode({"version": "1"})
    s, b = call(f"{node}/v1/hub/models/iris?{query}")
    assert s == 200, b
    assert MODELS.exists()
