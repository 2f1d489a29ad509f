//! The OpenAPI 3.1 document served at `/openapi.json`. Written by hand
//! beside the router; a test checks that every route is documented.

use serde_json::{Value, json};

fn error_responses(codes: &[u16]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        m.insert(
            c.to_string(),
            json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(m)
}

fn ok(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn merge(a: Value, b: Value) -> Value {
    let (Value::Object(mut a), Value::Object(b)) = (a, b) else {
        return Value::Null;
    };
    a.extend(b);
    Value::Object(a)
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn voucher_header() -> Value {
    json!({"name": "Vouch-Voucher", "in": "header", "required": false, "description": "Where the node charges (a ledger chain and a price): the payment, `ed25519:<client key> <cumulative amount> <128 hex digits of signature>` (docs/ledger.md, Paying for requests); a missing or bad one is a 402 `payment_required`, one the client's escrow does not cover a 402 `insufficient_funds`. A paid answer names the amount in `Vouch-Charged`", "schema": {"type": "string"}})
}

fn version_param() -> Value {
    json!({"name": "version", "in": "query", "required": false, "description": "model version (default: newest)", "schema": {"type": "string"}})
}

/// The document.
pub fn document() -> Value {
    let mut doc = paths_and_schemas();
    // A model's detail is the model's fields and its versions, side by
    // side (one object, as `ModelDetail` flattens them).
    let mut detail = doc["components"]["schemas"]["Model"].clone();
    detail["properties"]["versions"] = json!({"type": "array", "items": {"type": "string"}});
    doc["components"]["schemas"]["ModelDetail"] = detail;
    // Operator actions (`guard`): the admin token as a bearer token.
    doc["components"]["securitySchemes"] = json!({"adminToken": {
        "type": "http", "scheme": "bearer",
        "description": "the node's admin token: the `admin-token` file in its data directory"
    }});
    for (method, path) in crate::guard::OPERATOR_ROUTES {
        let op = &mut doc["paths"][path][method.to_ascii_lowercase()];
        op["security"] = json!([{"adminToken": []}]);
        let responses = op["responses"].take();
        op["responses"] = merge(responses, error_responses(&[401, 403]));
    }
    doc
}

fn paths_and_schemas() -> Value {
    json!({
      "openapi": "3.1.0",
      "info": {
        "title": "Vouch node API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Model hub and receipted inference. Every answer carries a receipt signed by the node's operator key; see docs/receipts.md."
      },
      "paths": {
        "/healthz": {"get": {"summary": "Liveness and identity", "responses": {"200": ok("node is up", "Health")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/v1/operator": {"get": {"summary": "Whether the bearer token is this node's admin token (clients check before streaming an upload)", "responses": {"200": {"description": "it is", "content": {"application/json": {"schema": {"type": "object", "properties": {"operator": {"type": "boolean"}, "node": {"type": "string"}}}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/v1/hub/models": {
          "get": {"summary": "List every model version", "responses": {"200": ok("models", "ModelList")}},
          "post": {
            "summary": "Upload a model; the engine must load it before it is accepted",
            "parameters": [
              {"name": "name", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"}},
              {"name": "version", "in": "query", "required": false, "description": "default: next integer version", "schema": {"type": "string"}},
              {"name": "license", "in": "query", "required": false, "schema": {"type": "string"}},
              {"name": "input_shape", "in": "query", "required": false, "description": "override a declared input shape, NAME=DIM,DIM (repeatable)", "schema": {"type": "string"}},
              {"name": "provable", "in": "query", "required": false, "description": "`true` or the largest input magnitude (e.g. `1`): compile the model to a circuit for `verify: proof` and name it in the manifest; a model with operators a proof does not cover is refused, naming them", "schema": {"type": "string"}},
              {"name": "weight_bits", "in": "query", "required": false, "description": "with `provable`: bits the circuit's integer weights keep, 4 to 16 (default 16); fewer make a smaller circuit and a wider stated error bound", "schema": {"type": "integer"}},
              {"name": "activation_bits", "in": "query", "required": false, "description": "with `provable`: bits activations keep after each Relu, 8 to 24 (default 24)", "schema": {"type": "integer"}}
            ],
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": merge(json!({"201": ok("registered", "Model")}), error_responses(&[400, 409, 413, 422, 500, 507]))
          }
        },
        "/v1/hub/models/{name}": {"get": {
          "summary": "Show a model (newest version unless `version` is given)",
          "parameters": [path_param("name", "model name"), version_param()],
          "responses": merge(json!({"200": ok("model", "ModelDetail")}), error_responses(&[404]))
        }, "delete": {
          "summary": "Delete a model version: no longer served or announced; its blobs go at the next garbage collection unless another model uses them; receipts naming it stay verifiable",
          "parameters": [path_param("name", "model name"), {"name": "version", "in": "query", "required": true, "schema": {"type": "string"}}],
          "responses": merge(json!({"200": ok("the deleted model", "ModelInfo")}), error_responses(&[400, 401, 403, 404]))
        }},
        "/v1/hub/models/{name}/pin": {
          "post": {
            "summary": "Pin a model: fetch it from peers if this node lacks it, and ask peers to fetch it until `replicas` nodes serve it",
            "parameters": [path_param("name", "model name"), version_param(), {"name": "replicas", "in": "query", "required": false, "description": "nodes that should serve it (default 1: this one)", "schema": {"type": "integer", "minimum": 1}}],
            "responses": merge(json!({"202": ok("pinned; fetching in the background", "PinStatus")}), error_responses(&[400, 404, 503]))
          },
          "get": {
            "summary": "Where a pinned model stands: served here, fetch progress, nodes serving it",
            "parameters": [path_param("name", "model name"), version_param()],
            "responses": merge(json!({"200": ok("status", "PinStatus")}), error_responses(&[404, 503]))
          }
        },
        "/v1/network/nodes": {"get": {
          "summary": "This node and its peers: what each serves and this node's record of it",
          "responses": merge(json!({"200": ok("nodes", "NetworkNodes")}), error_responses(&[503]))
        }},
        "/v1/network/evidence": {"get": {
          "summary": "Evidence this node recorded: quorum disagreements, and disputes it built or checked (each re-checkable offline with `vouch verify-dispute`), a page at a time",
          "parameters": [{"name": "after", "in": "query", "required": false, "description": "the `seq` of the last record of the previous page (the `next` it gave)", "schema": {"type": "integer", "minimum": 0}}, {"name": "limit", "in": "query", "required": false, "description": "records per page (default and most 1000)", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
          "responses": {"200": {"description": "records, oldest first; `next` when there may be more", "content": {"application/json": {"schema": {"type": "object", "properties": {"evidence": {"type": "array", "items": {"type": "object", "properties": {"seq": {"type": "integer"}, "kind": {"type": "string", "enum": ["quorum_disagreement", "dispute", "llm_dispute", "withheld"]}, "recorded_ms": {"type": "integer"}}}}, "next": {"type": "integer"}}}}}}}
        }},
        "/v1/hub/blobs/{digest}": {"get": {
          "summary": "Fetch a blob by digest; re-hashed before it is sent",
          "parameters": [path_param("digest", "blob:<64 hex>")],
          "responses": merge(json!({"200": {"description": "the bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}), error_responses(&[400, 404, 500]))
        }},
        "/v1/infer/{name}": {"post": {
          "summary": "Run a model and get the outputs with a signed receipt. Tensors as JSON, or as numpy's .npz both ways (`Content-Type` / `Accept: application/x-npz`: `np.savez` in, `np.load` out, the receipt and the rest of the answer in the archive's `vouch.json` member)",
          "parameters": [path_param("name", "model name"), version_param(), voucher_header(),
            {"name": "nonce", "in": "query", "required": false, "description": "with an .npz body: the nonce to bind (a JSON body carries its own)", "schema": {"type": "string"}},
            {"name": "verify", "in": "query", "required": false, "description": "with an .npz body: `receipt` (default), `audit`, `quorum:N` or `proof`", "schema": {"type": "string"}}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}, "application/x-npz": {"schema": {"type": "string", "format": "binary"}}}},
          "responses": merge(json!({"200": {"description": "outputs and receipt", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferResponse"}}, "application/x-npz": {"schema": {"type": "string", "format": "binary"}}}}}), error_responses(&[400, 402, 404, 413, 422, 500]))
        }},
        "/v1/hub/gc": {"post": {
          "summary": "Collect garbage now (the node also does hourly): blobs no model uses (an hour after they were written), fetches from peers stopped for a day, receipts past --receipt-retention-days",
          "responses": merge(json!({"200": {"description": "{blobs, blob_bytes, partials, partial_bytes, receipts}: what was freed", "content": {"application/json": {"schema": {"type": "object"}}}}}), error_responses(&[401, 403, 500]))
        }},
        "/v1/receipts": {"post": {
          "summary": "Report a receipt a node signed (for example one an executor answered you directly): this node checks it, gossips it to the network's auditors once, and audits it when drawn. Public",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}}},
          "responses": merge(json!({"202": {"description": "{id, gossiped (false when reported here before), audited_here}", "content": {"application/json": {"schema": {"type": "object", "required": ["id", "gossiped", "audited_here"], "properties": {"id": {"type": "string"}, "gossiped": {"type": "boolean"}, "audited_here": {"type": "boolean"}}}}}}}), error_responses(&[400, 404, 413, 503]))
        }},
        "/v1/ledger/status": {"get": {
          "summary": "The ledger chain this node validates: id, height, time and state root of the last applied block, validators, supply",
          "responses": merge(json!({"200": ok("the chain", "LedgerStatus")}), error_responses(&[404]))
        }},
        "/v1/ledger/operators": {"get": {
          "summary": "Registered operators on the ledger: stake, unbonding, slashed, offer",
          "responses": merge(json!({"200": {"description": "operators", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerOperator"}}}}}}), error_responses(&[404]))
        }},
        "/v1/ledger/accounts/{key}": {"get": {
          "summary": "One account on the ledger (an unknown key has nothing)",
          "parameters": [path_param("key", "ed25519:<64 hex>")],
          "responses": merge(json!({"200": ok("the account", "LedgerAccount")}), error_responses(&[400, 404]))
        }},
        "/v1/ledger/tx": {"post": {
          "summary": "A signed ledger transaction (docs/ledger.md) into this validator's pool; a block applies it or records why not",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["tx"], "additionalProperties": false, "properties": {"tx": {"type": "string", "description": "the transaction's bytes in hex"}}}}}},
          "responses": merge(json!({"202": ok("taken into the pool", "TxAccepted")}), error_responses(&[400, 404, 503]))
        }},
        "/v1/ledger/operator-tx": {"post": {
          "summary": "Operator action: this node signs a governance transaction (propose or vote) with its operator key, submits it and waits for its block (vouch propose|vote --by-node)",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["body"], "additionalProperties": false, "properties": {"body": {"type": "string", "description": "the transaction body's bytes in hex (docs/ledger.md, Transactions: the tag and its fields)"}}}}}},
          "responses": merge(json!({"200": {"description": "applied", "content": {"application/json": {"schema": {"type": "object", "required": ["id", "height", "signer"], "additionalProperties": false, "properties": {"id": {"type": "string"}, "height": {"type": "integer"}, "signer": {"type": "string"}}}}}}}), error_responses(&[400, 401, 403, 404, 503]))
        }},
        "/v1/ledger/blocks/{height}": {"get": {
          "summary": "One applied block: digest, parent, time, the state root after it and its transactions (signer, nonce, kind, outcome; the state root and outcomes while this node keeps the block in memory)",
          "parameters": [path_param("height", "1, 2, ...")],
          "responses": merge(json!({"200": ok("the block", "LedgerBlock")}), error_responses(&[400, 404]))
        }},
        "/v1/ledger/params": {"get": {
          "summary": "The ledger's parameters in force, by name (each changes only by a vote: vouch propose, vouch vote)",
          "responses": merge(json!({"200": {"description": "name to value", "content": {"application/json": {"schema": {"type": "object", "additionalProperties": {"type": "integer"}}}}}}), error_responses(&[404]))
        }},
        "/v1/ledger/proposals": {"get": {
          "summary": "Every governance proposal: its changes, votes, tally and status (voting, passed with its activation height, rejected, activated)",
          "responses": merge(json!({"200": {"description": "proposals, oldest first", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Proposal"}}}}}}), error_responses(&[404]))
        }},
        "/v1/ledger/disputes": {"get": {
          "summary": "Convictions not yet final (what they hold, the appeal window, an appeal's panel and votes) and the last 256 settled, each with its ruling: final (not appealed), upheld, overturned or undecided (docs/ledger.md, Appeals)",
          "responses": merge(json!({"200": {"description": "pending and settled convictions", "content": {"application/json": {"schema": {"type": "object", "required": ["pending", "settled"], "properties": {
            "pending": {"type": "array", "items": {"type": "object", "required": ["receipt", "executor", "auditor", "referee", "faulty", "held", "bounty", "convicted_at", "appeal_until", "appeal"]}},
            "settled": {"type": "array", "items": {"type": "object", "required": ["receipt", "ruling"], "properties": {"receipt": {"type": "string"}, "ruling": {"type": "string", "enum": ["final", "upheld", "overturned", "undecided"]}}}}
          }}}}}}), error_responses(&[404]))
        }},
        "/v1/ledger/draw": {"get": {
          "summary": "The pool the audit and referee draws of a receipt run over on this ledger (docs/receipts.md, Draws): every staked operator but the executor's, by its current key, weighted by its bonded stake, and the receipt's beacon (the first block stamped beacon_delay_ms after it). 503 until that block is applied; 404 once it is older than the dispute window",
          "parameters": [
            {"name": "executor", "in": "query", "required": true, "description": "the receipt's signer, ed25519:<64 hex>", "schema": {"type": "string"}},
            {"name": "timestamp_ms", "in": "query", "required": true, "description": "the receipt's timestamp_ms", "schema": {"type": "integer"}}
          ],
          "responses": merge(json!({"200": {"description": "the pool", "content": {"application/json": {"schema": {"type": "object", "required": ["beacon", "weights"], "properties": {"beacon": {"type": "string", "description": "32 bytes in hex"}, "weights": {"type": "array", "items": {"type": "object", "required": ["key", "weight"], "properties": {"key": {"type": "string"}, "weight": {"type": "integer"}}}}}}}}}}), error_responses(&[400, 404, 503]))
        }},
        "/v1/ledger/economics": {"get": {
          "summary": "Fee flows and concentration: fees settled and their split (operators, auditors' pool, treasury), what each operator earned, the share of the top 1/3/10 operators in fees and stake, and the Nakamoto coefficients of fees, stake, validator power and requests paid, with what the auditors' pool paid for audits",
          "responses": merge(json!({"200": ok("the economics", "Economics")}), error_responses(&[404]))
        }},
        "/v1/payments/{client}": {"get": {
          "summary": "What the client needs to pay this node's next inference request: the price, the chain and operator vouchers are signed for, the client's escrow, what was settled, the newest voucher this node holds from it (trust its amount only under your own signature) and the least cumulative amount the next voucher may carry",
          "parameters": [path_param("client", "ed25519:<64 hex>")],
          "responses": merge(json!({"200": ok("the client's account with this node", "PaymentState")}), error_responses(&[400, 404]))
        }},
        "/v1/ledger/tx/{id}": {"get": {
          "summary": "Where a transaction was applied and its outcome (the ledger may reject a transaction's action: `ok` false, `error` says why)",
          "parameters": [path_param("id", "64 hex digits")],
          "responses": merge(json!({"200": ok("the outcome", "TxOutcome")}), error_responses(&[400, 404]))
        }},
        "/v1/receipts/{id}/trace": {"get": {
          "summary": "What happened to one request, as this node knows it: the receipt, the executor and its public record on the ledger (stake, slashes, contact, paid audits) and uptime as this node saw it, the drawn auditors, this node's audits of it, the disputes and quorum disagreements naming it, and whether the ledger convicted on it (vouch trace)",
          "parameters": [path_param("id", "rcpt:<64 hex>")],
          "responses": merge(json!({"200": {"description": "the trace", "content": {"application/json": {"schema": {"type": "object", "required": ["receipt", "executor", "executor_uptime", "drawn_auditors", "audited_here", "evidence", "ledger"], "properties": {
            "receipt": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Receipt"}]},
            "executor": {"type": ["string", "null"]},
            "executor_uptime": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["minutes_seen", "minutes_observed"], "description": "the executor's uptime as this node saw its announcements (null for this node itself or a peer never heard)", "properties": {"minutes_seen": {"type": "integer"}, "minutes_observed": {"type": "integer"}}}]},
            "drawn_auditors": {"type": ["array", "null"], "items": {"type": "string"}},
            "audited_here": {"type": "array", "items": {"type": "string"}},
            "evidence": {"type": "array", "items": {"type": "object"}},
            "ledger": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["convicted", "executor"], "properties": {"convicted": {"type": "boolean"}, "executor": {"type": ["object", "null"]}}}]}
          }}}}}}), error_responses(&[400, 404]))
        }},
        "/v1/receipts/{id}": {"get": {
          "summary": "A receipt this node signed",
          "parameters": [path_param("id", "rcpt:<64 hex>")],
          "responses": merge(json!({"200": ok("receipt", "Receipt")}), error_responses(&[400, 404]))
        }},
        "/v1/receipts/{id}/proof": {"get": {
          "summary": "The proof behind a proven answer (verify `proof`) this node gave: the manifest, the circuit's digest and the proof, as the answer carried them (the node keeps its last 4,096)",
          "parameters": [path_param("id", "rcpt:<64 hex>")],
          "responses": merge(json!({"200": {"description": "the proof", "content": {"application/json": {"schema": {"type": "object", "required": ["manifest", "circuit", "proof"]}}}}}), error_responses(&[400, 404]))
        }},
        "/v1/receipts/{id}/trace/{index}": {"get": {
          "summary": "Reveal one trace entry of a receipt with its Merkle path",
          "parameters": [path_param("id", "rcpt:<64 hex>"), path_param("index", "leaf index")],
          "responses": merge(json!({"200": ok("trace entry", "TraceEntry")}), error_responses(&[400, 404]))
        }},
        "/": {"get": {"summary": "The chat UI (verifies each answer's receipt in the browser)", "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/ui/app.js": {"get": {"summary": "The chat UI's script (bundled verifier)", "responses": {"200": {"description": "JavaScript", "content": {"text/javascript": {"schema": {"type": "string"}}}}}}},
        "/explorer": {"get": {"summary": "The network explorer: chain, validators, operators, disputes (re-checked in the browser), proposals, fees and concentration per epoch", "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/explorer/explorer.js": {"get": {"summary": "The explorer's script (bundled verifier)", "responses": {"200": {"description": "JavaScript", "content": {"text/javascript": {"schema": {"type": "string"}}}}}}},
        "/v1/hub/blobs": {"post": {
          "summary": "Store a blob (e.g. a tokenizer.json) and get its digest; push a model with `tokenizer=DIGEST` to attach it",
          "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
          "responses": merge(json!({"201": {"description": "stored", "content": {"application/json": {"schema": {"type": "object", "properties": {"digest": {"type": "string"}, "size": {"type": "integer"}}}}}}}), error_responses(&[413, 500, 507]))
        }},
        "/v1/chat/completions": {"post": {
          "summary": "OpenAI-compatible chat (SSE with `stream: true`); the receipt and transcript are under `vouch`, the receipt also in `x-vouch-receipt`. A model this node does not serve is generated by a provider on the network (`vouch.executor`, `vouch.route`). A field the node would not apply is refused with 400 `unsupported_parameter` naming it",
          "parameters": [voucher_header()],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["model", "messages"], "properties": {
            "nonce": {"type": "string", "maxLength": 256, "description": "Vouch extension: echoed in the receipt"},
            "verify": {"type": "string", "description": "Vouch extension: `receipt` (default) or `quorum:N` (N operators; not with `stream`)"},
            "response_format": {"type": "object", "description": "`{\"type\": \"text\"}`, `{\"type\": \"json_object\"}` or `{\"type\": \"json_schema\", \"json_schema\": {\"name\", \"schema\"}}`: decoding is constrained to the schema, the receipt binds it, audits replay the mask"},
            "tools": {"type": "array", "items": {"type": "object"}, "description": "functions the model may call: `{\"type\": \"function\", \"function\": {\"name\", \"description\", \"parameters\"}}`; calls come back as `tool_calls`, arguments constrained to `parameters`"},
            "tool_choice": {"description": "`auto` (default with tools), `none`, `required`, or `{\"type\": \"function\", \"function\": {\"name\"}}`"},
            "parallel_tool_calls": {"type": "boolean", "description": "true: an answer may call several tools (default: at most one)"},
            "logprobs": {"type": "boolean", "description": "each token's log-probability under the model (bound in the receipt's hash chain, recomputed by audits)"},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20, "description": "with logprobs: the likeliest alternatives per token"}
          }}}}},
          "responses": merge(json!({"200": {"description": "a chat.completion, or a text/event-stream of chunks ending with the receipt", "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": {"type": "string"}}}}}), error_responses(&[400, 402, 404, 422, 500, 502, 503]))
        }},
        "/v1/completions": {"post": {
          "summary": "OpenAI-compatible text completion (SSE with `stream: true`)",
          "parameters": [voucher_header()],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["model", "prompt"]}}}},
          "responses": merge(json!({"200": {"description": "a text_completion, or a text/event-stream", "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": {"type": "string"}}}}}), error_responses(&[400, 402, 404, 422, 500]))
        }},
        "/v1/embeddings": {"post": {
          "summary": "OpenAI-compatible embeddings (mean-pooled, L2-normalised; float or base64)",
          "parameters": [voucher_header()],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["model", "input"]}}}},
          "responses": merge(json!({"200": {"description": "a list of embeddings with the receipt under `vouch`", "content": {"application/json": {"schema": {"type": "object"}}}}}), error_responses(&[400, 402, 404, 422, 500]))
        }},
        "/v1/models": {"get": {"summary": "OpenAI-compatible model list", "responses": {"200": {"description": "models", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/v1/audit/llm": {"post": {
          "summary": "Check a chat or completion answer: receipt and transcript offline, then every token by teacher forcing with the model the receipt names",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["receipt", "transcript"]}}}},
          "responses": merge(json!({"200": {"description": "{ok, tokens, failed_at, reason, seconds, tolerance (the smallest rtol at which every token passes here), beyond (tokens beyond the tolerance here), rule (the statistical rule applied: tolerance, exceed_rate, hard, threshold), checked_by}", "content": {"application/json": {"schema": {"type": "object"}}}}}), error_responses(&[400, 404, 500]))
        }}
      },
      "components": {"schemas": {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
        "Tensor": {"type": "object", "required": ["dtype", "shape", "data"], "properties": {
          "dtype": {"type": "string", "enum": ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64"]},
          "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
          "data": {"type": "array", "description": "flat, row-major; non-finite floats as \"NaN\", \"Infinity\", \"-Infinity\"", "items": {"type": ["number", "boolean", "string"]}}
        }},
        "InferRequest": {"type": "object", "required": ["inputs"], "additionalProperties": false, "properties": {
          "inputs": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Tensor"}},
          "nonce": {"type": "string", "maxLength": 256},
          "verify": {"type": "string", "description": "`receipt` (default), `audit`, `quorum:N` (N distinct operators run it; a majority must agree), or `proof` (a model pushed with `provable`: the answer comes with a zero-knowledge proof anyone checks with the model's circuit file)"}
        }},
        "InferResponse": {"type": "object", "required": ["outputs", "receipt"], "properties": {
          "outputs": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Tensor"}},
          "receipt": {"$ref": "#/components/schemas/Receipt"},
          "executed_by": {"type": "object", "required": ["peer", "operator"], "properties": {"peer": {"type": "string"}, "operator": {"type": "string"}, "admitted": {"type": "boolean", "description": "whether the answering node admits the executor: on a ledger chain, a registered operator with at least the minimum stake (false: an operator it does not admit served, as routing allows when no admitted one can)"}}},
          "route": {"type": "array", "items": {"type": "string"}, "description": "peer ids the request went through: this node, then the executor when another"},
          "receipts": {"type": "array", "items": {"$ref": "#/components/schemas/Receipt"}, "description": "with quorum:N, every receipt behind the answer, dissenters included"},
          "quorum": {"type": "object", "required": ["wanted", "agreed", "dissent"], "properties": {
            "wanted": {"type": "integer"}, "agreed": {"type": "integer"},
            "dissent": {"type": "array", "items": {"type": "object", "required": ["peer", "operator", "receipt"], "properties": {"peer": {"type": "string"}, "operator": {"type": "string"}, "receipt": {"type": "string"}}}}
          }},
          "proof": {"type": "object", "required": ["manifest", "circuit", "proof"], "description": "with verify `proof`: what the answer is checked with, beside the circuit file (GET /v1/hub/blobs/{circuit})", "properties": {
            "manifest": {"type": "string", "description": "the model's canonical manifest bytes, base64: their digest is the receipt's model id"},
            "circuit": {"type": "string", "description": "blob digest of the circuit file the manifest names"},
            "proof": {"type": "object", "required": ["outputs", "snark"], "properties": {
              "outputs": {"type": "array", "items": {"type": "string"}, "description": "the circuit's exact integer outputs, as decimal strings"},
              "snark": {"type": "string", "description": "the Spartan proof (nova-snark DirectSNARK, bincode), base64"}}}
          }}
        }},
        "Receipt": {"type": "object", "required": ["id", "version", "model", "request", "output", "trace", "engine", "determinism", "seed", "node", "nonce", "timestamp_ms", "price", "signature"], "properties": {
          "id": {"type": "string"}, "version": {"type": "integer"}, "model": {"type": "string"},
          "request": {"type": "string"}, "output": {"type": "string"},
          "trace": {"type": "object", "properties": {"root": {"type": "string"}, "len": {"type": "integer"}}},
          "engine": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
          "determinism": {"type": "object", "properties": {"class": {"type": "string", "enum": ["exact", "tolerant"]}, "rtol": {"type": "number"}}},
          "seed": {"type": ["integer", "null"]}, "node": {"type": "string"}, "nonce": {"type": "string"},
          "timestamp_ms": {"type": "integer"}, "price": {"type": "integer"}, "signature": {"type": "string"}
        }},
        "Spec": {"type": "object", "properties": {"name": {"type": "string"}, "dtype": {"type": ["string", "null"]}, "shape": {"type": ["array", "null"], "items": {"type": ["integer", "string"]}}}},
        "Model": {"type": "object", "properties": {
          "id": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "string"}, "format": {"type": "string"},
          "files": {"type": "array", "items": {"type": "object", "properties": {"role": {"type": "string"}, "digest": {"type": "string"}, "size": {"type": "integer"}}}},
          "schema": {"type": "object", "properties": {"inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Spec"}}, "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Spec"}}}},
          "license": {"type": "string"}, "publisher": {"type": "string"}, "signature": {"type": "string"}, "created_ms": {"type": "integer"}
        }},
        "ModelList": {"type": "object", "properties": {"models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}},
        "LedgerStatus": {"type": "object", "required": ["chain_id", "height", "time_ms", "state_root", "epoch", "epoch_end", "validators", "supply", "burned", "beacon"], "properties": {
          "beacon": {"type": "string", "description": "The last block's beacon, 32 bytes in hex (docs/ledger.md, Beacons)"},
          "epoch": {"type": "integer", "description": "The current epoch: its validator set was fixed at the end of the epoch before, from stake"},
          "epoch_end": {"type": "integer", "description": "The height of the epoch's last block"},
          "chain_id": {"type": "string"}, "height": {"type": "integer"}, "time_ms": {"type": "integer"}, "state_root": {"type": "string"},
          "validators": {"type": "array", "items": {"type": "object", "required": ["operator", "power"], "properties": {"operator": {"type": "string"}, "power": {"type": "integer"}}}},
          "supply": {"type": "integer"}, "burned": {"type": "integer"}
        }},
        "LedgerOperator": {"type": "object", "required": ["operator", "account", "keys", "stake", "unbonding", "slashed", "price", "contact", "addresses", "models", "audits", "audit_credit", "requests_paid"], "properties": {
          "operator": {"type": "string", "description": "the key it signs receipts with now"}, "account": {"type": "string"},
          "keys": {"type": "array", "description": "every receipt-signing key it has had, with the height it signs from", "items": {"type": "object", "required": ["from_height", "key"], "properties": {"from_height": {"type": "integer"}, "key": {"type": "string"}}}},
          "stake": {"type": "integer"}, "unbonding": {"type": "array", "items": {"type": "object", "properties": {"at": {"type": "integer"}, "amount": {"type": "integer"}}}},
          "slashed": {"type": "integer"}, "price": {"type": "integer"}, "contact": {"type": "string"}, "addresses": {"type": "array", "items": {"type": "string"}},
          "models": {"type": "array", "description": "the models it declares it serves (`model:` ids): the audit draw runs over the operators declaring a receipt's model", "items": {"type": "string"}},
          "audits": {"type": "object", "required": ["performed", "passed", "earned"], "description": "paid audits: performed as auditor, its receipts that passed, what the auditors' pool paid it", "properties": {"performed": {"type": "integer"}, "passed": {"type": "integer"}, "earned": {"type": "integer"}}},
          "audit_credit": {"type": "integer", "description": "what the auditors' pool may still pay for audits of its receipts (its share of this operator's settled fees, less audits paid)"},
          "requests_paid": {"type": "integer", "description": "requests it was paid for over the epochs the ledger keeps (settlements over its price then)"}
        }},
        "LedgerBlock": {"type": "object", "required": ["height", "digest", "parent", "time_ms", "state_root", "txs"], "properties": {
          "height": {"type": "integer"}, "digest": {"type": "string"}, "parent": {"type": "string"}, "time_ms": {"type": "integer"},
          "state_root": {"type": ["string", "null"]},
          "txs": {"type": "array", "items": {"type": "object", "required": ["id", "ok", "error"], "properties": {
            "id": {"type": "string"}, "signer": {"type": "string"}, "nonce": {"type": "integer"}, "kind": {"type": "string"},
            "undecodable": {"type": "string"}, "ok": {"type": ["boolean", "null"]}, "error": {"type": ["string", "null"]}}}}
        }},
        "Proposal": {"type": "object", "required": ["id", "proposer", "changes", "spends", "releases", "proposed", "voting_ends", "votes", "tally", "status", "activates", "activated"], "properties": {
          "id": {"type": "integer"}, "proposer": {"type": "string"},
          "changes": {"type": "array", "items": {"type": "object", "required": ["name", "value"], "properties": {"name": {"type": "string"}, "value": {"type": "integer"}}}},
          "spends": {"type": "array", "items": {"type": "object", "required": ["to", "amount"], "properties": {"to": {"type": "string"}, "amount": {"type": "integer"}}}},
          "releases": {"type": "array", "items": {"type": "object", "required": ["version", "digest", "allowed"], "properties": {"version": {"type": "string"}, "digest": {"type": "string"}, "allowed": {"type": "boolean"}}}},
          "proposed": {"type": "integer"}, "voting_ends": {"type": "integer"},
          "votes": {"type": "array", "items": {"type": "object", "required": ["operator", "yes"], "properties": {"operator": {"type": "string"}, "yes": {"type": "boolean"}}}},
          "tally": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["yes", "no", "total_stake"], "properties": {"yes": {"type": "integer"}, "no": {"type": "integer"}, "total_stake": {"type": "integer"}}}]},
          "status": {"type": "string", "enum": ["voting", "passed", "rejected", "activated", "failed"]},
          "activates": {"type": ["integer", "null"]}, "activated": {"type": ["integer", "null"]}
        }},
        "Economics": {"type": "object", "required": ["height", "fees", "fee_split", "treasury", "auditors_pool", "burned", "supply", "operators", "fees_share", "stake_share", "nakamoto_coefficient", "epochs"], "properties": {
          "epochs": {"type": "array", "description": "The last 64 finished epochs, oldest first, then the current one so far (its stake and power concentration filled in when it ends)", "items": {"$ref": "#/components/schemas/EpochEconomics"}},
          "height": {"type": "integer"}, "fees": {"type": "integer"},
          "fee_split": {"type": "object", "required": ["operator_bp", "auditors_bp", "treasury_bp"], "properties": {"operator_bp": {"type": "integer"}, "auditors_bp": {"type": "integer"}, "treasury_bp": {"type": "integer"}}},
          "treasury": {"type": "integer"}, "auditors_pool": {"type": "integer"}, "burned": {"type": "integer"}, "supply": {"type": "integer"},
          "operators": {"type": "array", "items": {"type": "object", "required": ["operator", "account", "earned", "stake", "slashed", "audit_earned"], "properties": {"operator": {"type": "string"}, "account": {"type": "string"}, "earned": {"type": "integer"}, "stake": {"type": "integer"}, "slashed": {"type": "integer"}, "audit_earned": {"type": "integer", "description": "what the auditors' pool paid it for audits"}}}},
          "fees_share": {"$ref": "#/components/schemas/TopShares"}, "stake_share": {"$ref": "#/components/schemas/TopShares"},
          "nakamoto_coefficient": {"type": "object", "required": ["fees", "stake", "validator_power", "served_requests"], "properties": {"fees": {"type": "integer"}, "stake": {"type": "integer"}, "validator_power": {"type": "integer"}, "served_requests": {"type": "integer", "description": "the fewest operators that together were paid for over half of the requests (settlements over the price)"}}}
        }},
        "EpochEconomics": {"type": "object", "required": ["epoch", "first_height", "last_height", "fees", "slashed", "earned", "served", "audit_pay", "fees_share", "stake_share", "nakamoto_coefficient"], "properties": {
          "epoch": {"type": "integer"}, "first_height": {"type": "integer"}, "last_height": {"type": "integer"},
          "fees": {"type": "integer", "description": "Payments settled in the epoch, before the split"},
          "slashed": {"type": "integer"},
          "earned": {"type": "array", "items": {"type": "object", "required": ["account", "amount"], "properties": {"account": {"type": "string"}, "amount": {"type": "integer"}}}},
          "served": {"type": "array", "description": "requests paid in the epoch, by operator: each settlement over the operator's price then", "items": {"type": "object", "required": ["account", "amount"], "properties": {"account": {"type": "string"}, "amount": {"type": "integer"}}}},
          "audit_pay": {"type": "array", "description": "what the auditors' pool paid for audits in the epoch, by auditor", "items": {"type": "object", "required": ["account", "amount"], "properties": {"account": {"type": "string"}, "amount": {"type": "integer"}}}},
          "fees_share": {"$ref": "#/components/schemas/TopShares"}, "stake_share": {"$ref": "#/components/schemas/TopShares"},
          "nakamoto_coefficient": {"type": "object", "required": ["fees", "stake", "validator_power", "served_requests"], "properties": {"fees": {"type": "integer"}, "stake": {"type": "integer"}, "validator_power": {"type": "integer"}, "served_requests": {"type": "integer", "description": "the fewest operators that together were paid for over half of the requests (settlements over the price)"}}}
        }},
        "TopShares": {"type": "object", "required": ["top1", "top3", "top10"], "properties": {"top1": {"type": "number"}, "top3": {"type": "number"}, "top10": {"type": "number"}}},
        "PaymentState": {"type": "object", "required": ["chain_id", "operator", "price", "escrow", "redeemed", "held", "next"], "additionalProperties": false, "properties": {
          "chain_id": {"type": "string"}, "operator": {"type": "string"}, "price": {"type": "integer"},
          "escrow": {"type": "integer"}, "redeemed": {"type": "integer"}, "next": {"type": "integer"},
          "held": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["client", "cumulative", "signature"], "additionalProperties": false, "properties": {
            "client": {"type": "string"}, "cumulative": {"type": "integer"}, "signature": {"type": "string"}}}]}
        }},
        "LedgerAccount": {"type": "object", "required": ["key", "balance", "escrow", "nonce"], "properties": {
          "key": {"type": "string"}, "balance": {"type": "integer"}, "escrow": {"type": "integer"}, "nonce": {"type": "integer"}
        }},
        "TxAccepted": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "TxOutcome": {"type": "object", "required": ["id", "height", "ok", "error"], "properties": {
          "id": {"type": "string"}, "height": {"type": "integer"}, "ok": {"type": "boolean"}, "error": {"type": ["string", "null"]}
        }},
        "TraceEntry": {"type": "object", "properties": {
          "receipt": {"type": "string"}, "index": {"type": "integer"}, "len": {"type": "integer"}, "step": {"type": ["string", "null"]},
          "leaf": {"type": "string"}, "path": {"type": "array", "items": {"type": "string"}}, "root": {"type": "string"}
        }},
        "PinStatus": {"type": "object", "required": ["id", "name", "version", "local", "providers", "wanted"], "properties": {
          "id": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "string"}, "local": {"type": "boolean"},
          "fetch": {"type": "object", "properties": {"total_bytes": {"type": "integer"}, "done_bytes": {"type": "integer"}, "state": {"type": "string", "enum": ["fetching", "loading", "done", "failed"]}, "error": {"type": "string"}}},
          "providers": {"type": "array", "items": {"type": "string"}}, "wanted": {"type": "integer"}
        }},
        "NetworkNodes": {"type": "object", "required": ["listen", "nodes", "requests", "nakamoto_coefficient", "hedged"], "properties": {
          "listen": {"type": "array", "items": {"type": "string"}},
          "nodes": {"type": "array", "items": {"type": "object", "required": ["peer", "connected", "share", "local", "models", "price", "capacity", "record"], "properties": {
            "peer": {"type": "string"}, "operator": {"type": "string"}, "http": {"type": "string"}, "connected": {"type": "boolean"},
            "share": {"type": "number", "description": "its share of the requests this node routed"}, "local": {"type": "boolean"},
            "models": {"type": "array", "items": {"type": "string"}}, "price": {"type": "integer"}, "capacity": {"type": "integer"}, "software": {"type": "string"},
            "record": {"type": "object", "properties": {
              "chunks_ok": {"type": "integer"}, "bad_data": {"type": "integer"}, "failures": {"type": "integer"}, "served": {"type": "integer"},
              "latency_us": {"type": "integer"}, "disagreements": {"type": "integer"}, "audits_passed": {"type": "integer"}, "audits_failed": {"type": "integer"},
              "refused": {"type": "integer"}, "withheld": {"type": "integer"}
            }},
            "uptime": {"type": "object", "required": ["minutes_seen", "minutes_observed", "ratio"], "description": "its uptime as this node saw it: the minutes of the last day in which a fresh signed announcement of it arrived (peers announce every 10 s), of the minutes since it was first heard; absent for this node itself", "properties": {
              "minutes_seen": {"type": "integer"}, "minutes_observed": {"type": "integer"}, "ratio": {"type": "number"}
            }}
          }}},
          "requests": {"type": "integer", "description": "requests this node routed"},
          "nakamoto_coefficient": {"type": "integer", "description": "the fewest operators that together served over half of them"},
          "hedged": {"type": "integer", "description": "requests hedged with a second provider"}
        }},
        "Health": {"type": "object", "properties": {"status": {"type": "string"}, "node": {"type": "string"}, "version": {"type": "string"}, "models": {"type": "integer"}, "audit_rate": {"type": "number", "description": "the share of others' receipts this node audits now (with a ledger chain: the ledger's audit_rate_ppm)"}, "release_allowed": {"type": "boolean", "description": "whether the ledger allows this node's software release (peers stop routing to one a vote retired)"}}}
      }}
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc = super::document();
        let src = [include_str!("http.rs"), include_str!("openai.rs")].concat();
        for line in src
            .lines()
            .filter(|l| l.trim_start().starts_with(".route(\""))
        {
            let path = line.split('"').nth(1).unwrap();
            assert!(
                doc["paths"].get(path).is_some(),
                "route {path} is missing from the OpenAPI document"
            );
        }
        for (method, path) in crate::guard::OPERATOR_ROUTES {
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            assert_eq!(
                op["security"][0]["adminToken"],
                serde_json::json!([]),
                "{path}"
            );
            assert!(op["responses"]["401"].is_object(), "{path}");
        }
    }
}
