//! External engines: a model served by another OpenAI-compatible server
//! (llama.cpp's server, vLLM, Ollama, another Vouch node) by URL.
//!
//! The node forwards the request, relays the answer as it streams, and
//! signs the transcript like any generation, so the operator is accountable
//! for what it returned. But nothing proves which model the server ran: the
//! receipt says so by naming the engine [`UNATTESTED`], its model id commits
//! only to the endpoint (URL and remote model name), every chunk stands in
//! the hash chain with the token id [`NO_TOKEN`], and auditors refuse to
//! re-execute it.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use vouch_engine::EngineError;
use vouch_engine::llm::TokenEvent;
use vouch_types::llm::{Finish, LlmRequest, Mode};
use vouch_types::{Determinism, EngineInfo};

use crate::error::NodeError;
use crate::llm::{Generate, Prompt, Receipted, Started};
use crate::service::Service;

/// Engine name in the receipts of external models.
pub use vouch_types::receipt::UNATTESTED;
/// Token id recorded for each chunk of an external answer (the server does
/// not say which tokens it produced).
pub const NO_TOKEN: u32 = u32::MAX;

pub use crate::config::ExternalModel;

/// Whether a receipt comes from an external engine.
pub fn is_unattested(engine: &EngineInfo) -> bool {
    engine.is_unattested()
}

impl Service {
    /// Starts a generation on an external server and signs its transcript.
    pub(crate) async fn generate_external(
        self: &Arc<Self>,
        ext: &ExternalModel,
        g: Generate,
    ) -> Result<Started, NodeError> {
        self.receipts.check()?;
        let needs_logits = [
            ("tools", g.tools.is_some()),
            ("response_format", g.constraint.is_some()),
            ("logprobs", g.logprobs.is_some()),
        ];
        if let Some((param, _)) = needs_logits.iter().find(|(_, asked)| *asked) {
            return Err(NodeError::UnsupportedParameter {
                param: (*param).into(),
                message: format!(
                    "`{}` is an external model: `{param}` needs the model's logits (constrained decoding, log-probabilities), which only models this network hosts offer",
                    g.model
                ),
            });
        }
        let (mode, prompt, path, mut body) = match &g.prompt {
            Prompt::Chat(messages) => {
                let messages: Vec<Value> = messages
                    .iter()
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect();
                // The request binds the messages exactly as sent upstream.
                let text = serde_json::to_string(&messages).expect("JSON values serialise");
                (
                    Mode::Chat,
                    text,
                    "chat/completions",
                    json!({"messages": messages}),
                )
            }
            Prompt::Text(t) => (
                Mode::Completion,
                t.clone(),
                "completions",
                json!({"prompt": t}),
            ),
        };
        if prompt.is_empty() {
            return Err(NodeError::InvalidInput(
                "the prompt is empty: send some text".into(),
            ));
        }
        if g.max_tokens == Some(0) {
            return Err(NodeError::InvalidInput(
                "max_tokens is 0: ask for at least 1 token".into(),
            ));
        }
        let s = &g.sampling;
        body["model"] = json!(ext.remote);
        body["stream"] = json!(true);
        body["temperature"] = json!(s.temperature);
        body["top_p"] = json!(s.top_p);
        body["seed"] = json!(s.seed);
        if s.top_k != 0 {
            body["top_k"] = json!(s.top_k);
        }
        if let Some(m) = g.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if !g.stop.is_empty() {
            body["stop"] = json!(g.stop);
        }
        let request = LlmRequest {
            mode,
            prompt,
            max_tokens: g.max_tokens.unwrap_or(u32::MAX),
            stop: g.stop.clone(),
            sampling: g.sampling.clone(),
            // The messages as sent; the external server's template is not
            // known here.
            messages: match &g.prompt {
                Prompt::Chat(m) => m.clone(),
                Prompt::Text(_) => Vec::new(),
            },
            template: None,
            constraint: None,
            tools: None,
            logprobs: None,
        };
        let url = format!("{}/{path}", ext.url);
        let resp = self.http.post(&url).json(&body).send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "it did not answer in time (operators: --external-timeout-secs)".to_string()
            } else {
                format!("could not reach it ({e})")
            };
            unavailable(ext, &why)
        })?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            let e = format!("it answered {status}: {}", message.trim());
            return Err(if status.is_client_error() {
                NodeError::BadRequest(format!("external model `{}`: {e}", ext.name))
            } else {
                unavailable(ext, &e)
            });
        }
        let (etx, erx) = mpsc::unbounded_channel::<Result<TokenEvent, EngineError>>();
        let name = ext.name.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(resp, &etx).await {
                let _ = etx.send(Err(EngineError::Run(format!(
                    "the external server for `{name}` failed mid-answer: {e}"
                ))));
            }
        });
        let (tx, events) = mpsc::unbounded_channel();
        self.receipted(
            Receipted {
                model_id: ext.id(),
                request: request.clone(),
                engine: ext.engine(),
                determinism: Determinism::Exact,
                label: format!("{}@external", ext.name),
                nonce: g.nonce,
                prompt_tokens: 0,
                // Nothing to re-execute.
                audited: false,
            },
            erx,
            tx,
        );
        Ok(Started {
            model_id: ext.id(),
            request,
            prompt_tokens: 0,
            events,
            route: Vec::new(),
        })
    }
}

fn unavailable(ext: &ExternalModel, why: &str) -> NodeError {
    NodeError::Unavailable(format!(
        "the external server for `{}` at {}: {why}",
        ext.name, ext.url
    ))
}

/// The longest line of an event stream read from an external server.
const MAX_EVENT_LINE: usize = 1 << 20;

/// Reads the server's event stream and hands each text chunk on, holding
/// one back so the last can carry the finish reason.
async fn relay(
    resp: reqwest::Response,
    etx: &mpsc::UnboundedSender<Result<TokenEvent, EngineError>>,
) -> Result<(), String> {
    let mut bytes = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut held: Option<String> = None;
    let emit = |text: String, finish: Option<Finish>| {
        etx.send(Ok(TokenEvent {
            token: NO_TOKEN,
            text,
            finish,
            logprobs: None,
        }))
        .is_ok()
    };
    while let Some(chunk) = bytes.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| {
            if e.is_timeout() {
                "it sent nothing for too long (operators: --external-timeout-secs)".to_string()
            } else {
                e.to_string()
            }
        })?);
        if buf.len() > MAX_EVENT_LINE && !buf.contains(&b'\n') {
            return Err(format!(
                "it sent a line of over {} KiB without an end: not a server-sent event stream",
                MAX_EVENT_LINE >> 10
            ));
        }
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                return Err("the stream ended without a finish reason".into());
            }
            let v: Value = serde_json::from_str(data)
                .map_err(|e| format!("it sent an event that is not JSON ({e})"))?;
            if let Some(m) = v["error"]["message"].as_str() {
                return Err(m.to_owned());
            }
            let Some(choice) = v["choices"].get(0) else {
                continue;
            };
            let text = choice["delta"]["content"]
                .as_str()
                .or(choice["text"].as_str())
                .unwrap_or_default();
            if !text.is_empty()
                && let Some(prev) = held.replace(text.to_owned())
                && !emit(prev, None)
            {
                return Ok(()); // the client went away
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                let finish = if reason == "length" {
                    Finish::Length
                } else {
                    Finish::Stop
                };
                emit(held.take().unwrap_or_default(), Some(finish));
                return Ok(());
            }
        }
    }
    Err("the connection closed before the answer finished".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_clear_errors() {
        let e = ExternalModel::parse("llama=http://127.0.0.1:8081/v1/#qwen").unwrap();
        assert_eq!(e.url, "http://127.0.0.1:8081/v1");
        assert_eq!(e.remote, "qwen");
        assert_eq!(
            ExternalModel::parse("llama=http://h/v1").unwrap().remote,
            "llama"
        );
        assert!(
            ExternalModel::parse("llama")
                .unwrap_err()
                .contains("NAME=URL")
        );
        assert!(
            ExternalModel::parse("llama=https://api.example/v1")
                .unwrap_err()
                .contains("no TLS")
        );
        assert!(
            ExternalModel::parse("llama=ftp://h")
                .unwrap_err()
                .contains("http")
        );
        let a = ExternalModel::parse("a=http://h/v1#m").unwrap();
        let b = ExternalModel::parse("a=http://h/v1#n").unwrap();
        assert_ne!(a.id(), b.id(), "the id binds the remote model name");
    }
}
