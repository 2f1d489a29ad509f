//! A generated chat answer as OpenAI's API shapes it, derived from the
//! text a receipt binds: the node writes it this way, and a client that
//! verifies an answer derives it again and compares.

use serde_json::{Value, json};
use vouch_types::llm::{Finish, LlmRequest};

/// A chat answer as OpenAI shapes it, and its finish reason. When tools
/// were offered the model answered in JSON (`vouch_engine::llm::with_tools`):
/// `{"tool_calls": […]}` becomes `tool_calls` (ids derived from the
/// request digest, so anyone holding the transcript derives the same) and
/// `{"response": …}` the content. Either way the text the receipt binds
/// is what they are read from; an answer cut short stays text.
pub fn assistant_message(
    request: &LlmRequest,
    text: &str,
    finish: Finish,
) -> (Value, &'static str) {
    let plain = || {
        (
            json!({"role": "assistant", "content": text}),
            finish.as_str(),
        )
    };
    if request.tools.is_none() {
        return plain();
    }
    let Ok(answer) = serde_json::from_str::<Value>(text) else {
        return plain();
    };
    if let Some(Value::String(r)) = answer.get("response") {
        return (json!({"role": "assistant", "content": r}), finish.as_str());
    }
    let Some(Value::Array(calls)) = answer.get("tool_calls") else {
        return plain();
    };
    let digest = request.digest().to_hex();
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"id": format!("call_{}_{i}", &digest[..16]), "type": "function",
                   "function": {"name": c["name"], "arguments": c["arguments"].to_string()}})
        })
        .collect();
    (
        json!({"role": "assistant", "content": null, "tool_calls": calls}),
        "tool_calls",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_types::llm::Transcript;

    #[test]
    fn tool_calls_are_read_as_the_python_reference_reads_them() {
        // ui/test/llm-fixture.json, `tool_response`: shaped by
        // ui/test/make_llm_fixture.py from the same signed text.
        let fixture: Value =
            serde_json::from_str(include_str!("../../../ui/test/llm-fixture.json")).unwrap();
        let response = &fixture["tool_response"];
        let t: Transcript =
            serde_json::from_value(response["vouch"]["transcript"].clone()).unwrap();
        let (message, finish) = assistant_message(&t.request, &t.text(), t.finish_reason);
        assert_eq!(message, response["choices"][0]["message"]);
        assert_eq!(finish, "tool_calls");
        // A response answer is its text; without tools, the text itself;
        // an answer cut short stays text.
        let (m, _) = assistant_message(&t.request, r#"{"response": "Sunny."}"#, Finish::Stop);
        assert_eq!(m["content"], "Sunny.");
        let mut plain = t.request.clone();
        plain.tools = None;
        let (m, f) = assistant_message(&plain, &t.text(), Finish::Stop);
        assert_eq!(
            (m["content"].as_str(), f),
            (Some(t.text().as_str()), "stop")
        );
        let (m, f) = assistant_message(&t.request, r#"{"tool_calls": [{"na"#, Finish::Length);
        assert_eq!(f, "length");
        assert!(m["content"].is_string() && m.get("tool_calls").is_none());
    }
}
