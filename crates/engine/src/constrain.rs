//! Constrained decoding: a JSON schema compiled to a mask over the model's
//! vocabulary, applied before our seeded choice.
//!
//! The schema → grammar → token-mask work is llguidance's (the library
//! behind llama.cpp's and vLLM's `guidance` backends: an Earley parser over
//! a lexer, computing each step's mask lazily from a trie of the
//! vocabulary, ~50 µs per token on a 128k vocabulary, with no
//! precomputation per schema). What is ours is where it sits: the sampler
//! ([`vouch_types::llm::choose`]) draws among the allowed tokens only, in
//! token order, so the choice is as deterministic as without a mask, and
//! an auditor who replays the same constraint over the claimed tokens
//! checks both that each was allowed and that the seed picks it
//! ([`check_among`]).
//!
//! A constraint is given as canonical JSON (`LlmRequest::constraint`):
//! `{"type":"json_object"}` or `{"type":"json_schema","schema":…}`. Answers
//! are compact JSON with `", "` and `": "` separators and no other
//! whitespace, so a small model cannot wander into endless blank lines.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use serde_json::{Value, json};
use vouch_types::llm::{Sampling, TokenMismatch, check_token, choose, tolerance_needed};

use crate::EngineError;

/// A model's vocabulary indexed for constraints: built once per model.
pub struct Grammar {
    factory: ParserFactory,
}

impl std::fmt::Debug for Grammar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammar").finish_non_exhaustive()
    }
}

impl Grammar {
    /// Indexes a vocabulary of `size` tokens, given each token's bytes
    /// (`piece`) and whether it ends a generation (`is_end`). Tokens
    /// without text (control tokens) get a name no text can spell, and the
    /// tokens that end a generation are what a finished grammar allows.
    pub fn new(
        size: usize,
        piece: &dyn Fn(u32) -> Vec<u8>,
        is_end: &dyn Fn(u32) -> bool,
    ) -> Result<Grammar, EngineError> {
        let mut ends = Vec::new();
        let words: Vec<Vec<u8>> = (0..size as u32)
            .map(|t| {
                let end = is_end(t);
                if end {
                    ends.push(t);
                }
                let piece = piece(t);
                if piece.is_empty() || end {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend_from_slice(format!("[{t}]").as_bytes());
                    w
                } else {
                    piece
                }
            })
            .collect();
        let Some(&first) = ends.first() else {
            return Err(EngineError::Load(
                "the model has no end-of-generation token, so no constraint can finish".into(),
            ));
        };
        let trie =
            TokTrie::from(&TokRxInfo::new(size as u32, first), &words).with_eos_tokens(&ends);
        let env: TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| EngineError::Load(format!("cannot index the vocabulary: {e}")))?;
        factory.quiet();
        Ok(Grammar { factory })
    }

    /// Compiles a request's constraint, saying what is wrong with it.
    pub fn compile(&self, constraint: &str) -> Result<Constraint, EngineError> {
        let schema = schema_of(constraint)?;
        let parser = self
            .factory
            .create_parser(TopLevelGrammar::from_json_schema(schema))
            .map_err(|e| {
                EngineError::Input(crate::InputError::Constraint(format!(
                    "the JSON schema cannot be used: {e}"
                )))
            })?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(EngineError::Input(crate::InputError::Constraint(format!(
                "the JSON schema cannot be used: {e}"
            ))));
        }
        Ok(Constraint { matcher })
    }
}

/// The JSON schema a constraint stands for, with our whitespace rules.
fn schema_of(constraint: &str) -> Result<Value, EngineError> {
    let bad = |why: String| EngineError::Input(crate::InputError::Constraint(why));
    let spec: Value = serde_json::from_str(constraint)
        .map_err(|e| bad(format!("the constraint is not JSON: {e}")))?;
    let mut schema = match spec.get("type").and_then(Value::as_str) {
        Some("json_object") => json!({"type": "object"}),
        Some("json_schema") => match spec.get("schema") {
            Some(s @ Value::Object(_)) => s.clone(),
            Some(Value::Bool(true)) | None => json!({}),
            Some(other) => {
                return Err(bad(format!(
                    "the JSON schema must be an object, not {other}"
                )));
            }
        },
        other => {
            return Err(bad(format!(
                "constraint type {other:?} is not supported: use json_object or json_schema"
            )));
        }
    };
    schema["x-guidance"] = json!({
        "whitespace_flexible": false,
        "item_separator": ", ",
        "key_separator": ": ",
    });
    Ok(schema)
}

/// One generation's constraint: which tokens may come next.
#[derive(Clone)]
pub struct Constraint {
    matcher: Matcher,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint").finish_non_exhaustive()
    }
}

impl Constraint {
    /// The tokens allowed next, in ascending order (the end tokens once
    /// the answer is complete).
    pub fn allowed(&mut self) -> Result<Vec<u32>, String> {
        let mask = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| e.to_string())?;
        let allowed: Vec<u32> = mask.iter().collect();
        if allowed.is_empty() {
            return Err("the constraint allows no token here".into());
        }
        Ok(allowed)
    }

    /// Takes the token chosen.
    pub fn advance(&mut self, token: u32) -> Result<(), String> {
        if self.matcher.is_stopped() {
            return Ok(());
        }
        self.matcher.consume_token(token).map_err(|e| e.to_string())
    }
}

/// The logits of the allowed tokens, in their order.
fn restricted(logits: &[f32], allowed: &[u32]) -> Vec<f32> {
    allowed
        .iter()
        .map(|&t| logits.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY))
        .collect()
}

/// The sampler's choice among `allowed` tokens (ascending): the draw of
/// [`choose`] over their logits alone.
pub fn choose_among(logits: &[f32], allowed: &[u32], s: &Sampling, step: u64) -> u32 {
    allowed[choose(&restricted(logits, allowed), s, step) as usize]
}

/// The teacher-forced check of a constrained step: `claimed` must be
/// allowed, and [`check_token`] must pass over the allowed tokens' logits.
pub fn check_among(
    logits: &[f32],
    allowed: &[u32],
    s: &Sampling,
    step: u64,
    claimed: u32,
    rtol: f64,
) -> Result<(), TokenMismatch> {
    let Ok(at) = allowed.binary_search(&claimed) else {
        return Err(TokenMismatch(format!(
            "token {claimed} is not allowed by the request's constraint here ({} tokens are)",
            allowed.len()
        )));
    };
    check_token(&restricted(logits, allowed), s, step, at as u32, rtol).map_err(|e| {
        TokenMismatch(format!(
            "among the {} tokens the constraint allows here, {}",
            allowed.len(),
            renamed(&e.0, allowed)
        ))
    })
}

/// `why` with each `token I` (an index among `allowed`) named by its id.
fn renamed(why: &str, allowed: &[u32]) -> String {
    let mut out = String::with_capacity(why.len());
    let mut rest = why;
    while let Some(at) = rest.find("token ") {
        out.push_str(&rest[..at + 6]);
        rest = &rest[at + 6..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|i| allowed.get(i))
        {
            Some(id) => out.push_str(&id.to_string()),
            None => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// [`tolerance_needed`] for a constrained step (infinite when `claimed`
/// is not allowed).
pub fn tolerance_among(
    logits: &[f32],
    allowed: &[u32],
    s: &Sampling,
    step: u64,
    claimed: u32,
) -> f64 {
    match allowed.binary_search(&claimed) {
        Ok(at) => tolerance_needed(&restricted(logits, allowed), s, step, at as u32),
        Err(_) => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_among_allowed_tokens_is_the_sampler_over_them() {
        let logits = [5.0, 1.0, 4.0, 3.0, 2.0];
        let greedy = Sampling::default();
        assert_eq!(choose(&logits, &greedy, 0), 0);
        assert_eq!(choose_among(&logits, &[1, 3, 4], &greedy, 0), 3);
        assert!(check_among(&logits, &[1, 3, 4], &greedy, 0, 3, 0.0).is_ok());
        let e = check_among(&logits, &[1, 3, 4], &greedy, 0, 0, 0.0).unwrap_err();
        assert!(e.0.contains("token 0 is not allowed"), "{e}");
        // Allowed but not the pick: the message names token ids, not
        // positions among the allowed.
        let e = check_among(&logits, &[1, 3, 4], &greedy, 0, 4, 0.0).unwrap_err();
        assert!(
            e.0.contains("picks token 3") && e.0.contains("token 4 has"),
            "{e}"
        );
        assert_eq!(
            tolerance_among(&logits, &[1, 3, 4], &greedy, 0, 0),
            f64::INFINITY
        );
        assert_eq!(tolerance_among(&logits, &[1, 3, 4], &greedy, 0, 3), 0.0);
        let s = Sampling {
            temperature: 0.9,
            top_p: 0.95,
            top_k: 2,
            seed: 7,
        };
        for step in 0..50 {
            let t = choose_among(&logits, &[0, 2, 4], &s, step);
            assert!([0, 2].contains(&t), "top-k 2 among the allowed");
            assert!(check_among(&logits, &[0, 2, 4], &s, step, t, 0.0).is_ok());
        }
    }

    /// A vocabulary of the 256 bytes and one end token.
    fn bytes_grammar() -> Grammar {
        Grammar::new(
            257,
            &|t| if t < 256 { vec![t as u8] } else { Vec::new() },
            &|t| t == 256,
        )
        .unwrap()
    }

    /// Greedy decoding where the likeliest allowed token is always the
    /// lowest id: what the constraint alone makes of an answer.
    fn lowest_answer(c: &mut Constraint) -> String {
        let mut out = Vec::new();
        for _ in 0..200 {
            let t = c.allowed().unwrap()[0];
            if t == 256 {
                break;
            }
            c.advance(t).unwrap();
            out.push(t as u8);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn schemas_with_local_references_compile_and_mask() {
        let g = bytes_grammar();
        // What pydantic writes for nested models: $defs and $ref.
        let spec = r##"{"type":"json_schema","schema":{"$defs":{"City":{"type":"object","properties":{"name":{"type":"string","maxLength":3}},"required":["name"],"additionalProperties":false}},"type":"object","properties":{"city":{"$ref":"#/$defs/City"}},"required":["city"],"additionalProperties":false}}"##;
        let mut c = g.compile(spec).unwrap();
        assert_eq!(
            c.allowed().unwrap(),
            vec![u32::from(b'{')],
            "only an object can start"
        );
        let answer = lowest_answer(&mut c);
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert!(v["city"]["name"].is_string(), "{answer}");
        assert!(answer.contains("\": "), "our separators: {answer}");
        // The end token only once the object is whole.
        let mut c = g.compile(r#"{"type":"json_object"}"#).unwrap();
        assert!(!c.allowed().unwrap().contains(&256));
        assert!(
            c.advance(u32::from(b'x')).is_err(),
            "a token the mask forbids"
        );
    }

    #[test]
    fn constraints_name_what_is_wrong() {
        let e = schema_of("{\"type\":\"xml\"}").unwrap_err().to_string();
        assert!(e.contains("json_object or json_schema"), "{e}");
        assert!(
            schema_of("not json")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
        let e = schema_of(r#"{"type":"json_schema","schema":[1]}"#).unwrap_err();
        assert!(e.to_string().contains("must be an object"), "{e}");
        let s = schema_of(r#"{"type":"json_schema","schema":{"type":"string"}}"#).unwrap();
        assert_eq!(s["type"], "string");
        assert_eq!(s["x-guidance"]["whitespace_flexible"], false);
        assert_eq!(
            schema_of(r#"{"type":"json_object"}"#).unwrap()["type"],
            "object"
        );
    }
}
