//! The OpenAI-compatible API: `/v1/chat/completions`, `/v1/completions`
//! (whole or streamed as server-sent events), `/v1/embeddings` and
//! `/v1/models`, with OpenAI-style error objects.
//!
//! Every answer carries its receipt: in the body under `vouch` (with the
//! transcript needed to check it) and in the `x-vouch-receipt` header. A
//! stream's first chunk carries the canonical request under `vouch`, each
//! token chunk its token id, every 16 tokens a chunk with a signed
//! checkpoint of the hash chain, and the last chunk the receipt.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{Value, json};
use vouch_api::chat::assistant_message;
use vouch_engine::llm::ChatMessage;
use vouch_types::llm::{Finish, Sampling, TokenLogprobs, Transcript};

use vouch_network::Node;
use vouch_network::route::Verify;
use vouch_service::error::NodeError;
use vouch_service::llm::{Finished, Generate, LlmEvent, Prompt, Started};
use vouch_service::service::now_ms;

/// An error in OpenAI's shape.
#[derive(Debug)]
pub struct OpenAiError(pub NodeError);

impl From<NodeError> for OpenAiError {
    fn from(e: NodeError) -> OpenAiError {
        OpenAiError(e)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = match status.as_u16() {
            404 => "not_found_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        };
        let param = match &e {
            NodeError::UnsupportedParameter { param, .. } => json!(param),
            _ => Value::Null,
        };
        let body = json!({"error": {
            "message": e.to_string(),
            "type": kind,
            "param": param,
            "code": e.code(),
        }});
        (status, axum::Json(body)).into_response()
    }
}

type OaResult<T> = Result<T, OpenAiError>;

/// The routes, to merge into the node's router; inference is paid for
/// where the node charges (`ledger::charged`).
pub fn routes(node: &Arc<Node>) -> Router<Arc<Node>> {
    let paid = || {
        axum::middleware::from_fn_with_state(node.clone(), crate::ledger::charged::<OpenAiError>)
    };
    Router::new()
        .route("/v1/chat/completions", post(chat).layer(paid()))
        .route("/v1/completions", post(completions).layer(paid()))
        .route("/v1/embeddings", post(embeddings).layer(paid()))
        .route("/v1/models", get(models))
        .route("/v1/audit/llm", post(audit))
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, NodeError> {
    serde_json::from_slice(body).map_err(not_valid)
}

fn not_valid(e: serde_json::Error) -> NodeError {
    NodeError::BadRequest(format!(
        "the request body is not valid JSON for this endpoint: {e}"
    ))
}

/// A chat or completion body, read once: every field checked
/// ([`check_fields`]), then the typed form taken from it.
fn parse_checked<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    own: &[&str],
) -> Result<T, NodeError> {
    let value: Value = parse(body)?;
    check_fields(&value, own)?;
    T::deserialize(value).map_err(not_valid)
}

/// A string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Message content: text, or a list of parts of which text parts count.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    /// An assistant's earlier tool calls.
    #[serde(default)]
    tool_calls: Option<Vec<InToolCall>>,
    /// A tool's answer: the call it answers.
    #[serde(default)]
    tool_call_id: Option<String>,
    /// A participant's name: refused unless empty (templates do not read it).
    #[serde(default)]
    name: Option<String>,
    /// Any other field (OpenAI's own answers carry `refusal`, `audio`,
    /// `annotations`, ... and clients send them back as they are):
    /// accepted when it says nothing (null, empty), refused by name
    /// otherwise.
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InToolCall {
    id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    function: InFunctionCall,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InFunctionCall {
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct Common {
    model: String,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    stop: Option<OneOrMany>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    n: Option<u32>,
    /// Echoed in the receipt (Vouch extension).
    #[serde(default)]
    nonce: Option<String>,
    /// `receipt` (default) or `quorum:N` (Vouch extension).
    #[serde(default)]
    verify: Option<String>,
    /// `text`, `json_object` or `json_schema`.
    #[serde(default)]
    response_format: Option<Value>,
    /// Functions the model may call (chat only).
    #[serde(default)]
    tools: Option<Vec<Value>>,
    /// `none`, `auto`, `required` or a named function.
    #[serde(default)]
    tool_choice: Option<Value>,
    /// Whether an answer may call several tools (default: one).
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
}

#[derive(Deserialize)]
struct ChatBody {
    messages: Vec<InMessage>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<u8>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Deserialize)]
struct CompletionBody {
    prompt: OneOrMany,
    /// Log-probabilities with this many alternatives.
    #[serde(default)]
    logprobs: Option<u8>,
    #[serde(flatten)]
    common: Common,
}

/// Fields both endpoints apply.
const COMMON_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "stop",
    "stream",
    "n",
    "nonce",
    "verify",
    "response_format",
];
/// Fields only a chat applies.
const CHAT_FIELDS: &[&str] = &[
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
];
/// Fields only a completion applies.
const COMPLETION_FIELDS: &[&str] = &["prompt", "logprobs"];

/// Refuses every field this node would not apply: an answer must never
/// look as if a parameter had been honoured when it was not. Fields whose
/// value changes nothing (`presence_penalty: 0`, `logprobs: false`, a
/// `user` tag, usage in streams, which every stream's last chunk carries)
/// pass.
fn check_fields(body: &Value, own: &[&str]) -> Result<(), NodeError> {
    let Value::Object(fields) = body else {
        return Ok(()); // the typed parse says what is wrong
    };
    for (name, value) in fields {
        if COMMON_FIELDS.contains(&name.as_str()) || own.contains(&name.as_str()) {
            continue;
        }
        let neutral = match name.as_str() {
            "user" => value.is_string() || value.is_null(),
            "stream_options" => true,
            "presence_penalty" | "frequency_penalty" => {
                value.is_null() || value.as_f64() == Some(0.0)
            }
            "echo" => value.is_null() || value == &Value::Bool(false),
            "logit_bias" => {
                value.is_null() || value.as_object().is_some_and(serde_json::Map::is_empty)
            }
            "best_of" => value.is_null() || value.as_u64() == Some(1),
            "store" => value.is_null() || value == &Value::Bool(false),
            _ => false,
        };
        if !neutral {
            return Err(unsupported(
                name,
                format!(
                    "`{name}` is not supported by this node, and it refuses rather than ignore it: remove the field{}",
                    match name.as_str() {
                        "presence_penalty" | "frequency_penalty" =>
                            " (penalties are not part of the audited sampler)",
                        "functions" | "function_call" => " and send `tools` / `tool_choice`",
                        _ => "",
                    }
                ),
            ));
        }
    }
    Ok(())
}

fn unsupported(param: &str, message: String) -> NodeError {
    NodeError::UnsupportedParameter {
        param: param.into(),
        message,
    }
}

/// The canonical constraint of a `response_format` (`None` for text).
fn format_constraint(format: &Value) -> Result<Option<String>, NodeError> {
    let bad = |why: &str| {
        NodeError::BadRequest(format!(
            "response_format {why}: send {{\"type\": \"text\"}}, {{\"type\": \"json_object\"}} or {{\"type\": \"json_schema\", \"json_schema\": {{\"name\": …, \"schema\": {{…}}}}}}"
        ))
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}).to_string())),
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .ok_or_else(|| bad("of type json_schema has no json_schema.schema"))?;
            if !schema.is_object() {
                return Err(bad("has a schema that is not a JSON object"));
            }
            Ok(Some(
                json!({"type": "json_schema", "schema": schema}).to_string(),
            ))
        }
        _ => Err(bad("has no known type")),
    }
}

/// The tools a chat offers the model and the constraint its answer
/// obeys: `(tools as JSON, constraint)`; `None` when no tool is offered
/// (`tool_choice: none`, or no tools).
fn tools_constraint(c: &Common) -> Result<Option<(String, String)>, NodeError> {
    let Some(tools) = &c.tools else {
        // `none` and `auto` with no tools change nothing.
        if c.tool_choice
            .as_ref()
            .is_some_and(|t| t != "none" && t != "auto")
        {
            return Err(NodeError::BadRequest(
                "tool_choice is set but no tools are given: send `tools` or remove `tool_choice`"
                    .into(),
            ));
        }
        return Ok(None);
    };
    if tools.is_empty() {
        return Err(NodeError::BadRequest(
            "`tools` is empty: send at least one tool or remove the field".into(),
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let name = t
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        match (t.get("type").and_then(Value::as_str), name) {
            (Some("function"), Some(n)) if !names.contains(&n) => names.push(n),
            (Some("function"), Some(n)) => {
                return Err(NodeError::BadRequest(format!(
                    "tools[{i}] repeats the name `{n}`: each tool needs its own name"
                )));
            }
            _ => {
                return Err(NodeError::BadRequest(format!(
                    "tools[{i}] is not {{\"type\": \"function\", \"function\": {{\"name\": …, \"parameters\": {{…}}}}}}"
                )));
            }
        }
    }
    let called: Vec<&Value> = match c.tool_choice.as_ref().unwrap_or(&json!("auto")) {
        Value::String(s) if s == "none" => return Ok(None),
        Value::String(s) if s == "auto" || s == "required" => tools.iter().collect(),
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some(t) = tools.iter().find(|t| t["function"]["name"] == name) else {
                return Err(NodeError::BadRequest(format!(
                    "tool_choice names function `{name}`, which is not among the tools ({})",
                    names.join(", ")
                )));
            };
            vec![t]
        }
        other => {
            return Err(NodeError::BadRequest(format!(
                "tool_choice {other} is not `none`, `auto`, `required` or {{\"type\": \"function\", \"function\": {{\"name\": …}}}}"
            )));
        }
    };
    let call = |t: &Value| {
        let f = &t["function"];
        let arguments = match f.get("parameters") {
            Some(p @ Value::Object(_)) => p.clone(),
            _ => json!({"type": "object", "properties": {}, "additionalProperties": false}),
        };
        json!({"type": "object",
               "properties": {"name": {"const": f["name"]}, "arguments": arguments},
               "required": ["name", "arguments"], "additionalProperties": false})
    };
    let item = match called.as_slice() {
        [one] => call(one),
        many => json!({"anyOf": many.iter().map(|t| call(t)).collect::<Vec<_>>()}),
    };
    let mut calls = json!({"type": "array", "items": item, "minItems": 1});
    if c.parallel_tool_calls != Some(true) {
        calls["maxItems"] = json!(1);
    }
    let with_calls = json!({"type": "object", "properties": {"tool_calls": calls},
                            "required": ["tool_calls"], "additionalProperties": false});
    let schema = if c.tool_choice.as_ref().is_none_or(|t| t == "auto") {
        json!({"anyOf": [with_calls, {"type": "object",
               "properties": {"response": {"type": "string"}},
               "required": ["response"], "additionalProperties": false}]})
    } else {
        with_calls
    };
    Ok(Some((
        Value::Array(tools.clone()).to_string(),
        json!({"type": "json_schema", "schema": schema}).to_string(),
    )))
}

impl Common {
    /// Generates an answer to `prompt` with these parameters, streamed or
    /// whole, by one node or a quorum.
    async fn answer(
        &self,
        node: Arc<Node>,
        (prompt, logprobs): (Prompt, Option<u8>),
        shape: Shape,
    ) -> OaResult<Response> {
        let mut g = self.generate(prompt)?;
        g.logprobs = logprobs;
        let quorum = self.quorum()?;
        answer(node, g, (self.stream.unwrap_or(false), quorum), shape).await
    }

    /// The verification level asked for (`None` for one execution).
    fn quorum(&self) -> Result<Option<usize>, NodeError> {
        match self
            .verify
            .as_deref()
            .map(str::parse::<Verify>)
            .transpose()?
        {
            Some(Verify::Quorum(n)) if n > 1 => {
                if self.stream == Some(true) {
                    return Err(NodeError::BadRequest(format!(
                        "verify quorum:{n} compares whole answers: send stream: false"
                    )));
                }
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }

    fn generate(&self, prompt: Prompt) -> Result<Generate, NodeError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(NodeError::BadRequest(
                "only n = 1 is supported: send one request per answer".into(),
            ));
        }
        let stop = self.stop.as_ref().map_or_else(Vec::new, |s| match s {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        });
        if stop.len() > 4 {
            return Err(NodeError::BadRequest(format!(
                "{} stop strings given; send at most 4",
                stop.len()
            )));
        }
        let format = match &self.response_format {
            Some(f) => format_constraint(f)?,
            None => None,
        };
        let tools = tools_constraint(self)?;
        if format.is_some() && tools.is_some() {
            return Err(NodeError::BadRequest(
                "response_format and tools both constrain the answer: send one, or tool_choice: none"
                    .into(),
            ));
        }
        let (tools, constraint) = match tools {
            Some((t, c)) => (Some(t), Some(c)),
            None => (None, format),
        };
        let seed = self.seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b) >> 1
        });
        Ok(Generate {
            model: self.model.clone(),
            prompt,
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            stop,
            sampling: Sampling {
                temperature: self.temperature.unwrap_or(1.0),
                top_p: self.top_p.unwrap_or(1.0),
                top_k: self.top_k.unwrap_or(0),
                seed,
            },
            nonce: self.nonce.clone().unwrap_or_default(),
            constraint,
            tools,
            logprobs: None,
        })
    }
}

fn messages(input: Vec<InMessage>) -> Result<Vec<ChatMessage>, NodeError> {
    if input.is_empty() {
        return Err(NodeError::BadRequest(
            "`messages` is empty: send at least one message".into(),
        ));
    }
    input
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let content = match m.content {
                None => String::new(),
                Some(Content::Text(t)) => t,
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for p in parts {
                        match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                            (Some("text"), Some(t)) => text.push_str(t),
                            (kind, _) => {
                                return Err(NodeError::BadRequest(format!(
                                    "message {i} has a content part of type {kind:?}; only text parts are supported"
                                )));
                            }
                        }
                    }
                    text
                }
            };
            let said = |v: &Value| match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            };
            if let Some((field, _)) = m.other.iter().find(|(_, v)| said(v)) {
                return Err(unsupported(
                    &format!("messages[{i}].{field}"),
                    format!("message {i} has `{field}`, which this node does not read: remove it"),
                ));
            }
            if m.name.as_deref().is_some_and(|n| !n.is_empty()) {
                return Err(unsupported(
                    "name",
                    format!("message {i} has a `name`, which chat templates do not read: remove it or put it in the content"),
                ));
            }
            let tool_calls = m
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    if c.kind.as_deref().is_some_and(|k| k != "function") {
                        return Err(NodeError::BadRequest(format!(
                            "message {i} has a tool call of type {:?}; only function calls exist",
                            c.kind
                        )));
                    }
                    Ok(vouch_types::llm::ToolCall {
                        id: c.id,
                        name: c.function.name,
                        arguments: c.function.arguments,
                    })
                })
                .collect::<Result<Vec<_>, NodeError>>()?;
            Ok(ChatMessage {
                role: m.role,
                content,
                tool_calls,
                tool_call_id: m.tool_call_id,
            })
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Chat,
    Completion,
}

async fn chat(State(node): State<Arc<Node>>, body: Bytes) -> OaResult<Response> {
    let body: ChatBody = parse_checked(&body, CHAT_FIELDS)?;
    let logprobs = match (body.logprobs, body.top_logprobs) {
        // How many is checked with the rest of the request
        // (`Generate::check`).
        (Some(true), n) => Some(n.unwrap_or(0)),
        (_, Some(_)) => {
            return Err(NodeError::BadRequest("top_logprobs needs logprobs: true".into()).into());
        }
        _ => None,
    };
    body.common
        .answer(
            node,
            (Prompt::Chat(messages(body.messages)?), logprobs),
            Shape::Chat,
        )
        .await
}

async fn completions(State(node): State<Arc<Node>>, body: Bytes) -> OaResult<Response> {
    let body: CompletionBody = parse_checked(&body, COMPLETION_FIELDS)?;
    let mut prompts = body.prompt.into_vec();
    if prompts.len() != 1 {
        return Err(NodeError::BadRequest(format!(
            "{} prompts given; send exactly one prompt per request",
            prompts.len()
        ))
        .into());
    }
    body.common
        .answer(
            node,
            (Prompt::Text(prompts.remove(0)), body.logprobs),
            Shape::Completion,
        )
        .await
}

fn completion_id(receipt_hex: &str) -> String {
    format!("cmpl-{}", &receipt_hex[..24])
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

async fn answer(
    node: Arc<Node>,
    g: Generate,
    (stream, quorum): (bool, Option<usize>),
    shape: Shape,
) -> OaResult<Response> {
    let model = g.model.clone();
    if let Some(n) = quorum {
        let q = node.quorum_generate(g, n).await?;
        let peers = |ps: &[vouch_p2p::Peer]| -> Vec<String> {
            ps.iter().map(ToString::to_string).collect()
        };
        let extra = json!({
            "executor": q.executor.to_string(),
            "route": peers(&q.route),
            "receipts": q.receipts,
            "quorum": {"wanted": q.wanted, "agreed": q.agreed, "dissent": peers(&q.dissent)},
        });
        return Ok(whole(&q.chosen, model, shape, extra));
    }
    let started = node.route_generate(g).await?;
    if stream {
        return Ok(Sse::new(sse(started, model, shape)).into_response());
    }
    let route = route_json(&started);
    let f = started.finish().await?;
    let extra = json!({"executor": route.last(), "route": route});
    Ok(whole(&f, model, shape, extra))
}

/// A whole (not streamed) answer, with its receipt and transcript and
/// `extra` under `vouch`.
fn whole(f: &Finished, model: String, shape: Shape, extra: Value) -> Response {
    let text = f.texts.concat();
    let choice = match shape {
        Shape::Chat => {
            let (message, finish) = assistant_message(&f.request, &text, f.finish);
            json!({"index": 0, "message": message, "finish_reason": finish,
                   "logprobs": logprobs_json(shape, listed(&f.logprobs, f.finish))})
        }
        Shape::Completion => json!({"index": 0, "text": text, "finish_reason": f.finish.as_str(),
                                    "logprobs": logprobs_json(shape, listed(&f.logprobs, f.finish))}),
    };
    let object = match shape {
        Shape::Chat => "chat.completion",
        Shape::Completion => "text_completion",
    };
    let mut body = json!({
        "id": completion_id(&f.receipt.id.to_hex()),
        "object": object,
        "created": now_ms() / 1000,
        "model": model,
        "system_fingerprint": format!("{} {}", f.receipt.body.engine.name, f.receipt.body.engine.version),
        "choices": [choice],
        "usage": usage(f.prompt_tokens, f.tokens.len()),
        "vouch": {"receipt": f.receipt, "transcript": f.transcript()},
    });
    if let (Some(vouch), Value::Object(extra)) = (body["vouch"].as_object_mut(), extra) {
        vouch.extend(extra);
    }
    with_receipt(&f.receipt, body)
}

/// The tokens whose log-probabilities an answer lists: all but a final
/// end-of-generation token (no bytes), which OpenAI does not list. The
/// transcript keeps them all.
fn listed(lps: &[TokenLogprobs], finish: Finish) -> &[TokenLogprobs] {
    match lps.split_last() {
        Some((last, rest)) if finish == Finish::Stop && last.bytes.is_empty() => rest,
        _ => lps,
    }
}

/// Log-probabilities in OpenAI's shape for `shape` (`null` when none were
/// asked for).
fn logprobs_json(shape: Shape, lps: &[TokenLogprobs]) -> Value {
    if lps.is_empty() {
        return Value::Null;
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match shape {
        Shape::Chat => {
            let content: Vec<Value> = lps
                .iter()
                .map(|lp| {
                    let top: Vec<Value> = lp
                        .top
                        .iter()
                        .map(|a| json!({"token": text(&a.bytes), "logprob": a.logprob, "bytes": a.bytes}))
                        .collect();
                    json!({"token": text(&lp.bytes), "logprob": lp.logprob, "bytes": lp.bytes,
                           "top_logprobs": top})
                })
                .collect();
            json!({"content": content, "refusal": null})
        }
        Shape::Completion => {
            let mut offset = 0;
            let (mut tokens, mut values, mut tops, mut offsets) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for lp in lps {
                let t = text(&lp.bytes);
                offsets.push(offset);
                offset += t.chars().count();
                tokens.push(t);
                values.push(lp.logprob);
                let top: serde_json::Map<String, Value> = lp
                    .top
                    .iter()
                    .map(|a| (text(&a.bytes), json!(a.logprob)))
                    .collect();
                tops.push(top);
            }
            json!({"tokens": tokens, "token_logprobs": values, "top_logprobs": tops,
                   "text_offset": offsets})
        }
    }
}

/// The nodes a generation went through, as peer id strings.
fn route_json(started: &Started) -> Vec<String> {
    started.route.iter().map(ToString::to_string).collect()
}

fn with_receipt(receipt: &vouch_types::Receipt, body: Value) -> Response {
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    if let Ok(v) = serde_json::to_string(receipt)
        .map_err(|_| ())
        .and_then(|s| HeaderValue::from_str(&s).map_err(|_| ()))
    {
        resp.headers_mut().insert("x-vouch-receipt", v);
    }
    if let Ok(v) = HeaderValue::from_str(&receipt.id.to_string()) {
        resp.headers_mut().insert("x-vouch-receipt-id", v);
    }
    resp
}

fn sse(
    started: Started,
    model: String,
    shape: Shape,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let created = now_ms() / 1000;
    let object = match shape {
        Shape::Chat => "chat.completion.chunk",
        Shape::Completion => "text_completion",
    };
    let id = completion_id(&started.request.digest().to_hex());
    let chunk = move |choices: Value, vouch: Value| {
        json!({"id": id, "object": object, "created": created, "model": model,
               "choices": choices, "vouch": vouch})
    };
    let first_choice = match shape {
        Shape::Chat => {
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])
        }
        Shape::Completion => json!([{"index": 0, "text": "", "finish_reason": null}]),
    };
    let first = chunk(
        first_choice,
        json!({"request": started.request, "model_id": started.model_id,
               "executor": started.route.last().map(ToString::to_string),
               "route": route_json(&started)}),
    );
    let prompt_tokens = started.prompt_tokens;
    // With tools offered, the answer is JSON to be read as a whole: token
    // chunks carry its text under `vouch` (for the chain) and the content
    // or tool calls come in one chunk at the end.
    let tools = shape == Shape::Chat && started.request.tools.is_some();
    let events = started.events;
    let head = stream::iter([Ok::<Event, Infallible>(
        Event::default().data(first.to_string()),
    )]);
    let body = stream::unfold(
        (events, chunk, 0usize, false),
        move |(mut events, chunk, mut n, done)| async move {
            if done {
                return None;
            }
            let ev = events.recv().await;
            let (data, done): (Vec<String>, bool) = match ev {
                Some(LlmEvent::Token { token, text, .. }) if tools => {
                    n += 1;
                    let choice = json!([{"index": 0, "delta": {}, "finish_reason": null}]);
                    (vec![chunk(choice, json!({"token": token, "text": text})).to_string()], false)
                }
                Some(LlmEvent::Token { token, text, logprobs }) => {
                    n += 1;
                    let lp = logprobs_json(shape, logprobs.as_slice());
                    let choice = match shape {
                        Shape::Chat => json!([{"index": 0, "delta": {"content": text}, "finish_reason": null, "logprobs": lp}]),
                        Shape::Completion => json!([{"index": 0, "text": text, "finish_reason": null, "logprobs": lp}]),
                    };
                    (vec![chunk(choice, json!({"token": token})).to_string()], false)
                }
                Some(LlmEvent::Checkpoint(ck)) => {
                    (vec![chunk(json!([]), json!({"checkpoint": ck})).to_string()], false)
                }
                Some(LlmEvent::Done(f)) => {
                    let mut finish = f.finish.as_str();
                    let mut out = Vec::new();
                    if tools {
                        let (mut message, reason) = assistant_message(&f.request, &f.texts.concat(), f.finish);
                        finish = reason;
                        if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
                            for (i, c) in calls.iter_mut().enumerate() {
                                c["index"] = json!(i);
                            }
                        }
                        let delta = match message.get("tool_calls") {
                            Some(calls) => json!({"tool_calls": calls}),
                            None => json!({"content": message["content"]}),
                        };
                        out.push(chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}]), json!({})).to_string());
                    }
                    let choice = match shape {
                        Shape::Chat => json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
                        Shape::Completion => json!([{"index": 0, "text": "", "finish_reason": finish}]),
                    };
                    let mut last = chunk(choice, json!({"receipt": f.receipt, "finish_reason": f.finish}));
                    last["usage"] = usage(prompt_tokens, n);
                    out.push(last.to_string());
                    (out, true)
                }
                Some(LlmEvent::Failed(e)) => (
                    vec![json!({"error": {"message": e.to_string(), "type": "server_error", "code": e.code()}})
                        .to_string()],
                    true,
                ),
                None => return None,
            };
            let mut out: Vec<Result<Event, Infallible>> = data
                .into_iter()
                .map(|d| Ok(Event::default().data(d)))
                .collect();
            if done {
                out.push(Ok(Event::default().data("[DONE]")));
            }
            Some((stream::iter(out), (events, chunk, n, done)))
        },
    );
    head.chain(body.flatten())
}

#[derive(Deserialize)]
struct AuditBody {
    receipt: vouch_types::Receipt,
    transcript: Transcript,
}

/// Checks a chat or completion receipt by teacher forcing.
async fn audit(State(node): State<Arc<Node>>, body: Bytes) -> OaResult<Response> {
    let body: AuditBody = parse(&body)?;
    let check = node.check_llm(&body.receipt, &body.transcript).await?;
    Ok((StatusCode::OK, axum::Json(check)).into_response())
}

#[derive(Deserialize)]
struct EmbeddingBody {
    model: String,
    input: OneOrMany,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

async fn embeddings(State(node): State<Arc<Node>>, body: Bytes) -> OaResult<Response> {
    let body: EmbeddingBody = parse(&body)?;
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(NodeError::BadRequest(format!(
                "encoding_format `{other}` is not supported: use `float` or `base64`"
            ))
            .into());
        }
    };
    let e = node
        .embed(
            &body.model,
            body.input.into_vec(),
            body.nonce.unwrap_or_default(),
        )
        .await?;
    let data: Vec<Value> = e
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64_encode(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": e.tokens, "total_tokens": e.tokens},
        "vouch": {"receipts": e.receipts, "runs": e.runs},
    });
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    let ids: Vec<String> = e.receipts.iter().map(|r| r.id.to_string()).collect();
    if let Ok(v) = HeaderValue::from_str(&ids.join(",")) {
        resp.headers_mut().insert("x-vouch-receipt-id", v);
    }
    Ok(resp)
}

async fn models(State(node): State<Arc<Node>>) -> OaResult<Response> {
    let externals = node.config().externals.iter().map(|e| {
        json!({
            "id": e.name,
            "object": "model",
            "created": 0,
            "owned_by": node.public_key().to_string(),
            "vouch": {"model_id": e.id(), "format": "external", "attested": false,
                      "url": e.url, "remote_model": e.remote},
        })
    });
    let local = node.list_models()?;
    let names: std::collections::HashSet<&str> = local
        .iter()
        .map(|r| r.signed.manifest.name.as_str())
        .collect();
    // Models only peers serve: requests for them are routed.
    let mut remote: Vec<Value> = Vec::new();
    for m in node.network_models().into_values() {
        let o = &m.offer;
        if names.contains(o.name.as_str()) || remote.iter().any(|r| r["id"] == o.name.as_str()) {
            continue;
        }
        remote.push(json!({
            "id": o.name,
            "object": "model",
            "created": 0,
            "owned_by": "network",
            "vouch": {"model_id": o.id, "version": o.version, "format": o.format,
                      "attested": true, "providers": m.providers.len(), "local": false},
        }));
    }
    let data: Vec<Value> = local
        .iter()
        .map(|r| {
            let m = &r.signed.manifest;
            json!({
                "id": m.name,
                "object": "model",
                "created": r.created_ms / 1000,
                "owned_by": m.publisher.to_string(),
                "vouch": {"model_id": r.id(), "version": m.version, "format": m.format.name(),
                          "attested": true, "local": true},
            })
        })
        .chain(externals)
        .chain(remote)
        .collect();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json!({"object": "list", "data": data}).to_string(),
    )
        .into_response())
}

/// Standard base64 with padding (RFC 4648), as OpenAI's clients decode it.
fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
