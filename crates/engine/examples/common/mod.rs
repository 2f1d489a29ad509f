//! What the LLM examples share: a chat prompt as a completion request, and
//! answers generated to the end on the engine's own scheduler.

use std::sync::mpsc;

use vouch_engine::llm::{ChatMessage, Job, LanguageModel, LlmFault};
use vouch_types::llm::{LlmRequest, Sampling};

/// One user message, rendered through the model's chat template, as a
/// completion request.
pub(crate) fn chat_request(
    lm: &dyn LanguageModel,
    prompt: &str,
    max_tokens: u32,
    sampling: Sampling,
) -> LlmRequest {
    let prompt = lm
        .render_chat(&[ChatMessage::text("user", prompt)], None)
        .expect("the chat template renders");
    LlmRequest::completion(prompt, max_tokens, sampling)
}

/// Generates the answers to `requests` with `lm`, all submitted at once
/// (the engine batches those its slots hold), with `fault`: each answer's
/// tokens.
pub(crate) fn generate(
    lm: &dyn LanguageModel,
    requests: &[LlmRequest],
    fault: Option<LlmFault>,
) -> Vec<Vec<u32>> {
    let mut waiting = Vec::new();
    for r in requests {
        let (tx, rx) = mpsc::channel();
        lm.generate(Job {
            prompt: lm.tokenize(&r.prompt),
            request: r.clone(),
            sink: Box::new(move |ev| tx.send(ev).is_ok()),
            fault,
            constraint: None,
            alive: Box::new(|| true),
        })
        .expect("the job is queued");
        waiting.push(rx);
    }
    waiting
        .into_iter()
        .map(|rx| {
            let mut tokens = Vec::new();
            for ev in rx {
                let ev = ev.expect("generation runs");
                tokens.push(ev.token);
                if ev.finish.is_some() {
                    break;
                }
            }
            tokens
        })
        .collect()
}
