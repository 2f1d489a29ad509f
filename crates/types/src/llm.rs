//! Generated text: the canonical request, the sampler, the hash chain over
//! a token stream, signed checkpoints, and the teacher-forced token check.
//!
//! A language model's answer is a sequence of tokens. The receipt's
//! `request` digest commits to an [`LlmRequest`] (the exact prompt text the
//! model read, the token budget, the stop strings and the sampling
//! parameters with their seed); its `output` digest commits to the end of a
//! [`Chain`] over `(token, released text)` pairs, so a client can check a
//! stream as it arrives without buffering it. Every [`CHECKPOINT_EVERY`]
//! tokens the node signs a [`Checkpoint`] of the chain, so a stream cut
//! short is still checkable up to its last checkpoint.
//!
//! The sampler is ours, not the engine's: given the logits of one position,
//! the parameters and the step number it picks a token deterministically
//! ([`choose`]), and an auditor that recomputes the logits by one forward
//! pass over prompt + answer checks each claimed token ([`check_token`]),
//! accepting near-ties within the model's tolerance. Byte layouts:
//! `docs/receipts.md`.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher, Kind};
use crate::encode::Sink;
use crate::keys::{PublicKey, SecretKey};
use crate::receipt::Receipt;

/// Tag that starts every canonical LLM request.
pub const LLM_ENCODING: &str = "vouch llm v1";
/// The node signs a checkpoint after every this many tokens (the receipt
/// covers the last one).
pub const CHECKPOINT_EVERY: u64 = 16;
/// The teacher-forced check's margin is `rtol * max(LOGIT_SCALE, |top|)`.
/// Logit noise between an engine's one-token decode and its batched
/// prompt pass is absolute rather than relative to the top logit: for
/// SmolLM2 on llama.cpp it reached 0.07 per logit where the top logit was
/// only 3.3, so small top logits must not shrink the margin.
pub const LOGIT_SCALE: f64 = 10.0;

/// Whether the prompt came from a chat template or was given as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `/v1/chat/completions`: the prompt is the rendered chat template.
    Chat,
    /// `/v1/completions`: the prompt is the client's text.
    Completion,
}

impl Mode {
    fn tag(self) -> u8 {
        match self {
            Mode::Chat => 1,
            Mode::Completion => 2,
        }
    }
}

/// How tokens are chosen from logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 for greedy decoding (argmax); otherwise logits are divided by it.
    pub temperature: f64,
    /// Nucleus mass in (0, 1]; 1 keeps every token.
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens; 0 keeps every token.
    pub top_k: u32,
    /// Seed of the per-step random draws.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Whether this is greedy decoding.
    pub fn greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks the parameters, saying what to change.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && (0.0..=100.0).contains(&self.temperature)) {
            return Err(format!(
                "temperature {} is out of range: use 0 (greedy) up to 100",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!(
                "top_p {} is out of range: use a value in (0, 1]",
                self.top_p
            ));
        }
        Ok(())
    }
}

/// Everything that determines a generated answer, besides the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// Chat or completion.
    pub mode: Mode,
    /// The exact text the model read (for chat: the rendered template).
    pub prompt: String,
    /// The most tokens to generate.
    pub max_tokens: u32,
    /// Strings that end the answer (not included in it).
    pub stop: Vec<String>,
    /// Sampling parameters and seed.
    pub sampling: Sampling,
    /// For a chat: the client's messages, as sent. Bound with the
    /// template, so a provider cannot answer other instructions than the
    /// client's: the client checks the messages, an auditor that the
    /// prompt is the template applied to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// For a chat: the `blob:` digest of the chat template's text that
    /// rendered `prompt` from `messages` (its digest as a stored blob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Digest>,
    /// What every answer must match (structured outputs, tool calls), as
    /// canonical JSON: `{"type":"json_schema","schema":…}` or
    /// `{"type":"json_object"}`. The sampler picks only among the tokens
    /// the constraint allows, and an auditor replays the same mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// For a chat: the tools offered to the model, as canonical JSON of
    /// the client's `tools` list. They are rendered into the prompt, so an
    /// auditor needs them to check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<String>,
    /// Whether each token comes with the model's log-probabilities, and
    /// how many of the likeliest alternatives (0 to [`MAX_TOP_LOGPROBS`]).
    /// The chain binds them ([`TokenLogprobs`]) and the audit recomputes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u8>,
}

/// The most alternatives a token's [`TokenLogprobs`] may list.
pub const MAX_TOP_LOGPROBS: u8 = 20;

/// The model's log-probabilities at one generated token: the log-softmax
/// of the logits at temperature 1 over the whole vocabulary (the model's
/// own distribution, before sampling parameters or a constraint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprobs {
    /// The chosen token's.
    pub logprob: f32,
    /// The chosen token's bytes (empty for control tokens).
    pub bytes: Vec<u8>,
    /// The likeliest tokens, most likely first (ties by id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<TopLogprob>,
}

/// One alternative in [`TokenLogprobs::top`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    /// Token id.
    pub token: u32,
    /// Its log-probability.
    pub logprob: f32,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A log-probability as it is bound: f32, and finite (a token no float
/// can weigh gets -9999).
fn bound_logprob(lp: f64) -> f32 {
    if lp.is_finite() {
        (lp as f32).max(-9999.0)
    } else {
        -9999.0
    }
}

/// The log-softmax of `logits` in f64: `l - (max + ln Σ exp(l - max))`.
fn log_softmax(logits: &[f32]) -> impl Fn(u32) -> f64 + '_ {
    let max = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    let sum: f64 = logits.iter().map(|&l| (f64::from(l) - max).exp()).sum();
    let lse = max + sum.ln();
    move |t| f64::from(logits[t as usize]) - lse
}

/// The `n` likeliest tokens, most likely first, ties by id.
fn likeliest(logits: &[f32], n: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let key = |t: &u32| logits[*t as usize];
    let by = |a: &u32, b: &u32| key(b).total_cmp(&key(a)).then(a.cmp(b));
    let n = n.min(order.len());
    if n == 0 {
        return Vec::new();
    }
    if n < order.len() {
        order.select_nth_unstable_by(n - 1, by);
        order.truncate(n);
    }
    order.sort_unstable_by(by);
    order
}

impl TokenLogprobs {
    /// The log-probabilities of `token` and the `top` likeliest tokens
    /// from one position's logits; `piece` gives a token's bytes.
    pub fn of(
        logits: &[f32],
        token: u32,
        top: u8,
        piece: &dyn Fn(u32) -> Vec<u8>,
    ) -> TokenLogprobs {
        let lp = log_softmax(logits);
        TokenLogprobs {
            logprob: bound_logprob(lp(token)),
            bytes: piece(token),
            top: likeliest(logits, usize::from(top))
                .into_iter()
                .map(|t| TopLogprob {
                    token: t,
                    logprob: bound_logprob(lp(t)),
                    bytes: piece(t),
                })
                .collect(),
        }
    }

    /// Checks claimed log-probabilities against recomputed `logits`: each
    /// value within `margin` (logits each within `margin / 2` move a
    /// log-probability by at most `margin`), the bytes the model's, and
    /// the listed alternatives the likeliest `top` but for near-ties.
    pub fn check(
        &self,
        logits: &[f32],
        token: u32,
        top: u8,
        piece: &dyn Fn(u32) -> Vec<u8>,
        margin: f64,
    ) -> Result<(), String> {
        let lp = log_softmax(logits);
        let close = |claimed: f32, t: u32| {
            let want = lp(t);
            let slack = margin + 1e-5 * (1.0 + want.abs());
            (f64::from(claimed) - want).abs() <= slack || (claimed <= -9999.0 && want <= -9999.0)
        };
        let inside = |t: u32| (t as usize) < logits.len();
        if !inside(token) || !close(self.logprob, token) {
            return Err(format!(
                "the token's logprob {} is not the model's {:.4}",
                self.logprob,
                if inside(token) { lp(token) } else { f64::NAN }
            ));
        }
        if self.bytes != piece(token) {
            return Err("the token's bytes are not the model's".into());
        }
        let want = usize::from(top).min(logits.len());
        if self.top.len() != want {
            return Err(format!(
                "{} alternatives are listed, not {want}",
                self.top.len()
            ));
        }
        for (i, a) in self.top.iter().enumerate() {
            if !inside(a.token) || !close(a.logprob, a.token) || a.bytes != piece(a.token) {
                return Err(format!(
                    "alternative {i} (token {}) is not the model's: logprob {}",
                    a.token, a.logprob
                ));
            }
            if self.top[..i].iter().any(|b| b.token == a.token) {
                return Err(format!("token {} is listed twice", a.token));
            }
        }
        // Nothing left out may be clearly likelier than the least listed.
        if let Some(least) = self.top.iter().map(|a| lp(a.token)).reduce(f64::min) {
            let listed: std::collections::HashSet<u32> = self.top.iter().map(|a| a.token).collect();
            for t in likeliest(logits, want) {
                if !listed.contains(&t) && lp(t) > least + 2.0 * margin + 1e-5 {
                    return Err(format!(
                        "token {t} (logprob {:.4}) is likelier than a listed alternative but left out",
                        lp(t)
                    ));
                }
            }
        }
        Ok(())
    }

    fn encode(&self, s: &mut impl Sink) {
        s.put_f32(self.logprob);
        s.put_bytes(&self.bytes);
        s.put_u8(self.top.len() as u8);
        for a in &self.top {
            s.put_u32(a.token);
            s.put_f32(a.logprob);
            s.put_bytes(&a.bytes);
        }
    }
}

/// One chat message as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// The text.
    pub content: String,
    /// An assistant's calls of tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A tool's answer: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with text only.
    pub fn text(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    fn has_tool_fields(&self) -> bool {
        !self.tool_calls.is_empty() || self.tool_call_id.is_some()
    }
}

/// A call of a tool, as an assistant message carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which the tool's answer names.
    pub id: String,
    /// The function called.
    pub name: String,
    /// Its arguments: a JSON object as text.
    pub arguments: String,
}

impl LlmRequest {
    /// A completion of `prompt`, as it is: no stop strings, messages,
    /// template, constraint, tools or log-probabilities.
    pub fn completion(prompt: impl Into<String>, max_tokens: u32, sampling: Sampling) -> Self {
        LlmRequest {
            mode: Mode::Completion,
            prompt: prompt.into(),
            max_tokens,
            stop: vec![],
            sampling,
            messages: vec![],
            template: None,
            constraint: None,
            tools: None,
            logprobs: None,
        }
    }

    /// Whether the request uses a constraint, tools or tool messages,
    /// which the encoding's extension carries.
    fn extended(&self) -> bool {
        self.constraint.is_some()
            || self.tools.is_some()
            || self.logprobs.is_some()
            || self.messages.iter().any(Message::has_tool_fields)
    }

    /// The canonical bytes. A request with messages or a template appends
    /// them after the seed (`u32 count || (str role || str content)* ||
    /// [32] template digest, zeros when none`); one with neither encodes as
    /// before they existed. A request with a constraint, tools, tool
    /// messages or logprobs appends after that `str constraint || str
    /// tools` (empty when none), `u8 logprobs` (0: none, else 1 + the
    /// alternatives asked for) and, per message, `u32 calls || (str id || str name ||
    /// str arguments)* || str tool_call_id` (empty when none).
    pub fn encode(&self) -> Vec<u8> {
        let mut s = Vec::with_capacity(64 + self.prompt.len());
        s.put_str(LLM_ENCODING);
        s.put_u8(self.mode.tag());
        s.put_str(&self.prompt);
        s.put_u32(self.max_tokens);
        s.put_u32(self.stop.len() as u32);
        for stop in &self.stop {
            s.put_str(stop);
        }
        s.put_f64(self.sampling.temperature);
        s.put_f64(self.sampling.top_p);
        s.put_u32(self.sampling.top_k);
        s.put_u64(self.sampling.seed);
        let extended = self.extended();
        if !self.messages.is_empty() || self.template.is_some() || extended {
            s.put_u32(self.messages.len() as u32);
            for m in &self.messages {
                s.put_str(&m.role);
                s.put_str(&m.content);
            }
            s.put(self.template.as_ref().map_or(&[0u8; 32], |d| d.as_bytes()));
        }
        if extended {
            s.put_str(self.constraint.as_deref().unwrap_or(""));
            s.put_str(self.tools.as_deref().unwrap_or(""));
            s.put_u8(self.logprobs.map_or(0, |n| n.saturating_add(1)));
            for m in &self.messages {
                s.put_u32(m.tool_calls.len() as u32);
                for c in &m.tool_calls {
                    s.put_str(&c.id);
                    s.put_str(&c.name);
                    s.put_str(&c.arguments);
                }
                s.put_str(m.tool_call_id.as_deref().unwrap_or(""));
            }
        }
        s
    }

    /// The `in:` digest a receipt names.
    pub fn digest(&self) -> Digest {
        Digest::of(Kind::Input, &self.encode())
    }
}

/// Why a generation ended, as OpenAI spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// The model emitted an end-of-generation token, or a stop string
    /// appeared.
    Stop,
    /// `max_tokens` were generated.
    Length,
}

impl Finish {
    /// The OpenAI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// The hash chain over a token stream.
///
/// `link_0 = H_chain(request digest)`, then for each token
/// `link_i+1 = H_chain(link_i || u32 token || str text)` where `text` is the
/// text released with that token (possibly empty: bytes of an incomplete
/// UTF-8 character, or a possible start of a stop string, are held back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    link: Digest,
    len: u64,
}

impl Chain {
    /// The chain of an empty answer to `request`.
    pub fn start(request: &Digest) -> Chain {
        Chain {
            link: Digest::of(Kind::Chain, request.as_bytes()),
            len: 0,
        }
    }

    /// Appends one token and the text released with it.
    pub fn push(&mut self, token: u32, text: &str) {
        self.push_with(token, text, None);
    }

    /// Appends one token, its text and, when the request asked for them,
    /// its log-probabilities (`|| f32 logprob || bytes || u8 n || (u32
    /// token || f32 logprob || bytes)*n`, where `bytes` is `u32 length ||
    /// raw bytes`).
    pub fn push_with(&mut self, token: u32, text: &str, logprobs: Option<&TokenLogprobs>) {
        let mut h = Hasher::new(Kind::Chain);
        h.update(self.link.as_bytes());
        h.put_u32(token);
        h.put_str(text);
        if let Some(lp) = logprobs {
            lp.encode(&mut h);
        }
        self.link = h.finalize();
        self.len += 1;
    }

    /// The current link.
    pub fn link(&self) -> Digest {
        self.link
    }

    /// Tokens so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no token was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The receipt's `out:` digest once the stream ended:
    /// `H_out(str tag || link || u64 tokens || str finish_reason)`.
    pub fn output(&self, finish: Finish) -> Digest {
        let mut s = Vec::with_capacity(96);
        s.put_str(LLM_ENCODING);
        s.put(self.link.as_bytes());
        s.put_u64(self.len);
        s.put_str(finish.as_str());
        Digest::of(Kind::Output, &s)
    }
}

/// A node's signature over a prefix of a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Tokens covered.
    pub tokens: u64,
    /// The chain link after them.
    pub chain: Digest,
    /// ed25519 by the node key over [`Checkpoint::digest`].
    #[serde(with = "crate::receipt::sig_hex")]
    pub signature: Signature,
}

impl Checkpoint {
    /// `H_ckpt(model || request || u64 tokens || chain)`: what is signed.
    pub fn digest(model: &Digest, request: &Digest, tokens: u64, chain: &Digest) -> Digest {
        let mut s = Vec::with_capacity(104);
        s.put(model.as_bytes());
        s.put(request.as_bytes());
        s.put_u64(tokens);
        s.put(chain.as_bytes());
        Digest::of(Kind::Checkpoint, &s)
    }

    /// Signs the chain's current state.
    pub fn sign(key: &SecretKey, model: &Digest, request: &Digest, chain: &Chain) -> Checkpoint {
        let d = Checkpoint::digest(model, request, chain.len(), &chain.link());
        Checkpoint {
            tokens: chain.len(),
            chain: chain.link(),
            signature: key.sign(d.as_bytes()),
        }
    }

    /// Checks the signature, and that `chain` (the verifier's own running
    /// chain) is the one signed.
    pub fn verify(
        &self,
        node: &PublicKey,
        model: &Digest,
        request: &Digest,
        chain: &Chain,
    ) -> Result<(), String> {
        if chain.len() != self.tokens || chain.link() != self.chain {
            return Err(format!(
                "checkpoint at token {} signs chain {}, but the tokens received give {} after {}",
                self.tokens,
                self.chain,
                chain.link(),
                chain.len()
            ));
        }
        let d = Checkpoint::digest(model, request, self.tokens, &self.chain);
        if !node.verify(d.as_bytes(), &self.signature) {
            return Err(format!(
                "checkpoint at token {} is not signed by {node}",
                self.tokens
            ));
        }
        Ok(())
    }
}

/// A generated answer with everything needed to check it: the request, the
/// tokens, and the text released with each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// What was asked.
    pub request: LlmRequest,
    /// The generated tokens (an end-of-generation token included).
    pub tokens: Vec<u32>,
    /// The text released with each token.
    pub texts: Vec<String>,
    /// How the answer ended.
    pub finish_reason: Finish,
    /// Per token, the model's log-probabilities, when the request asked
    /// for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprobs>,
}

impl Transcript {
    /// The answer's text.
    pub fn text(&self) -> String {
        self.texts.concat()
    }

    /// The chain over the tokens and texts (and log-probabilities).
    pub fn chain(&self) -> Chain {
        let mut c = Chain::start(&self.request.digest());
        for (i, (t, text)) in self.tokens.iter().zip(&self.texts).enumerate() {
            c.push_with(*t, text, self.logprobs.get(i));
        }
        c
    }

    /// Checks, without the model, that `receipt` is valid and signs exactly
    /// this request, seed and answer.
    pub fn verify(&self, receipt: &Receipt) -> Result<(), String> {
        receipt.verify().map_err(|e| e.to_string())?;
        if self.tokens.len() != self.texts.len() {
            return Err(format!(
                "the transcript has {} tokens but {} texts",
                self.tokens.len(),
                self.texts.len()
            ));
        }
        let wanted = if self.request.logprobs.is_some() {
            self.tokens.len()
        } else {
            0
        };
        if self.logprobs.len() != wanted {
            return Err(format!(
                "the transcript has log-probabilities for {} tokens, not {wanted}",
                self.logprobs.len()
            ));
        }
        let request = self.request.digest();
        if request != receipt.body.request {
            return Err(format!(
                "the request does not match the receipt: receipt says {}, this request hashes to {request}",
                receipt.body.request
            ));
        }
        if receipt.body.seed != Some(self.request.sampling.seed) {
            return Err(format!(
                "the receipt's seed {:?} is not the request's {}",
                receipt.body.seed, self.request.sampling.seed
            ));
        }
        let output = self.chain().output(self.finish_reason);
        if output != receipt.body.output {
            return Err(format!(
                "the answer does not match the receipt: receipt says {}, these tokens and texts hash to {output}",
                receipt.body.output
            ));
        }
        Ok(())
    }
}

/// The uniform draw in [0, 1) for step `step` under `seed`: the first 8
/// bytes of `BLAKE3-derive-key("vouch v1 sampler", u64 seed || u64 step)`
/// as a little-endian u64, top 53 bits, times 2^-53.
pub fn uniform(seed: u64, step: u64) -> f64 {
    let mut h = blake3::Hasher::new_derive_key("vouch v1 sampler");
    h.update(&seed.to_le_bytes());
    h.update(&step.to_le_bytes());
    let out = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&out.as_bytes()[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The index of the largest logit (the lowest index among equals).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The candidates a sampled step draws from: `(token, probability)` in
/// draw order (most likely first, ties by token id), after top-k and
/// top-p, with probabilities renormalised to sum to 1.
pub fn candidates(logits: &[f32], s: &Sampling) -> Vec<(u32, f64)> {
    let r = Ranked::new(logits, s, 1.0);
    let kept = r.top_p_cut(s.top_p).unwrap_or(r.order.len());
    let total: f64 = r.weights[..kept].iter().sum();
    r.order[..kept]
        .iter()
        .zip(&r.weights)
        .map(|(&t, w)| (t, w / total))
        .collect()
}

/// The token the sampler picks at generation step `step` (0 for the first
/// generated token) from that position's logits.
pub fn choose(logits: &[f32], s: &Sampling, step: u64) -> u32 {
    if s.greedy() {
        return argmax(logits);
    }
    let u = uniform(s.seed, step);
    // Rank only as far as the top-p cut or the draw needs, and everything
    // if that prefix turns out too short.
    let wanted = if s.top_p < 1.0 { s.top_p } else { u };
    for mass in [wanted, 1.0] {
        let r = Ranked::new(logits, s, mass);
        let Some(kept) = r.top_p_cut(s.top_p) else {
            continue;
        };
        let total: f64 = if s.top_p < 1.0 {
            r.weights[..kept].iter().sum()
        } else {
            r.pool_total
        };
        let mut acc = 0.0;
        for (&t, w) in r.order[..kept].iter().zip(&r.weights) {
            acc += w / total;
            if u < acc {
                return t;
            }
        }
        if s.top_p < 1.0 || r.complete {
            return r.order[kept - 1];
        }
    }
    unreachable!("a complete ranking always yields a token")
}

/// The tokens a sampled step may draw from (the top k, or all), heaviest
/// first (ties by id), with their weights `exp((l - top) / temperature)`.
/// Sorting the whole vocabulary for every token is the sampler's main cost,
/// so only the tokens within a logit distance of the top that doubles until
/// their weight reaches `mass` of the pool's are sorted.
struct Ranked {
    order: Vec<u32>,
    weights: Vec<f64>,
    pool_total: f64,
    /// Whether `order` holds the whole pool.
    complete: bool,
}

impl Ranked {
    fn new(logits: &[f32], s: &Sampling, mass: f64) -> Ranked {
        let key = |t: &u32| logits[*t as usize];
        let by_rank = |a: &u32, b: &u32| key(b).total_cmp(&key(a)).then(a.cmp(b));
        let mut pool: Vec<u32> = (0..logits.len() as u32).collect();
        let k = s.top_k as usize;
        if k != 0 && k < pool.len() {
            pool.select_nth_unstable_by(k, by_rank);
            pool.truncate(k);
        }
        let top = f64::from(logits[argmax(logits) as usize]);
        let weight = |t: &u32| ((f64::from(key(t)) - top) / s.temperature).exp();
        let pool_total: f64 = pool.iter().map(weight).sum();
        let mut reach = 4.0 * s.temperature;
        loop {
            let floor = top - reach;
            let mut order: Vec<u32> = pool
                .iter()
                .copied()
                .filter(|t| f64::from(key(t)) >= floor)
                .collect();
            let complete = order.len() == pool.len();
            order.sort_unstable_by(by_rank);
            let weights: Vec<f64> = order.iter().map(weight).collect();
            let have: f64 = weights.iter().sum();
            if complete || have > mass.min(1.0) * pool_total * (1.0 + 1e-9) {
                return Ranked {
                    order,
                    weights,
                    pool_total,
                    complete,
                };
            }
            reach *= 2.0;
        }
    }

    /// How many tokens the top-p cut keeps: the shortest prefix whose
    /// share of the pool reaches `top_p`; `None` when the ranked prefix
    /// ends before it does.
    fn top_p_cut(&self, top_p: f64) -> Option<usize> {
        if top_p >= 1.0 {
            return Some(self.order.len());
        }
        let mut acc = 0.0;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w / self.pool_total;
            if acc >= top_p {
                return Some(i + 1);
            }
        }
        self.complete.then_some(self.order.len())
    }
}

/// The check's margin at one position: `rtol * max(LOGIT_SCALE, |top
/// logit|)`, how far two recomputed logits may move apart.
pub fn margin(logits: &[f32], rtol: f64) -> f64 {
    let top = f64::from(logits[argmax(logits) as usize]);
    rtol * top.abs().max(LOGIT_SCALE)
}

/// Why a claimed token is not the one the model would have produced.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TokenMismatch(pub String);

/// Checks that `claimed` is what the sampler picks at `step` from
/// recomputed `logits`, allowing for the small differences between
/// machines: the claimed token passes if the sampler would pick it for some
/// logits each within `margin / 2` of the recomputed ones, where
/// `margin = rtol * max(LOGIT_SCALE, |top|)`, so that no difference between two logits
/// moves by more than `margin`. Under greedy decoding that means its logit
/// is within `margin` of the top one; under sampling the seeded draw must
/// fall in the widest interval the token can have under such logits
/// ([`sampled_window`]).
pub fn check_token(
    logits: &[f32],
    s: &Sampling,
    step: u64,
    claimed: u32,
    rtol: f64,
) -> Result<(), TokenMismatch> {
    check_token_with(logits, None, s, step, claimed, rtol)
}

/// [`check_token`], with every token's sampling weight computed ahead
/// ([`weights`]) when one set of logits is checked many times.
fn check_token_with(
    logits: &[f32],
    weights: Option<&[f64]>,
    s: &Sampling,
    step: u64,
    claimed: u32,
    rtol: f64,
) -> Result<(), TokenMismatch> {
    let Some(&got) = logits.get(claimed as usize) else {
        return Err(TokenMismatch(format!(
            "token {claimed} is outside the vocabulary of {} tokens",
            logits.len()
        )));
    };
    let top = argmax(logits);
    let best = f64::from(logits[top as usize]);
    let margin = rtol * best.abs().max(LOGIT_SCALE);
    if s.greedy() {
        if best - f64::from(got) <= margin {
            return Ok(());
        }
        return Err(TokenMismatch(format!(
            "greedy decoding picks token {top} (logit {best:.4}); token {claimed} has logit {got:.4}, more than {margin:.4} below"
        )));
    }
    let u = uniform(s.seed, step);
    if weights.is_none() && surely_in_window(logits, s, claimed, margin / 2.0, u) {
        return Ok(());
    }
    let Some((lo, hi)) = window(logits, weights, s, claimed, margin / 2.0) else {
        return Err(TokenMismatch(format!(
            "token {claimed} is not among the tokens the sampler could pick (top-k {}, top-p {})",
            s.top_k, s.top_p
        )));
    };
    if lo <= u && u < hi {
        return Ok(());
    }
    Err(TokenMismatch(format!(
        "the seeded draw {u:.4} falls outside token {claimed}'s interval [{lo:.4}, {hi:.4}) (logits within {:.4})",
        margin / 2.0
    )))
}

/// The largest tolerance [`tolerance_needed`] looks for.
pub const MAX_TOLERANCE: f64 = 0.25;

/// The smallest `rtol` at which [`check_token`] accepts `claimed` (0 when
/// the recomputed logits pick it outright; under sampling, to within 1e-3
/// above, found by bisection: each step is one check); infinite when no
/// `rtol` up to [`MAX_TOLERANCE`] does. Over a whole answer, the largest is
/// how close the answer came to failing the audit.
pub fn tolerance_needed(logits: &[f32], s: &Sampling, step: u64, claimed: u32) -> f64 {
    if s.greedy() {
        let Some(&got) = logits.get(claimed as usize) else {
            return f64::INFINITY;
        };
        let best = f64::from(logits[argmax(logits) as usize]);
        let needed = (best - f64::from(got)) / best.abs().max(LOGIT_SCALE);
        return if needed <= MAX_TOLERANCE {
            needed
        } else {
            f64::INFINITY
        };
    }
    if check_token(logits, s, step, claimed, 0.0).is_ok() {
        return 0.0;
    }
    // The search checks the same logits a dozen times: weigh them once.
    let weights = weights(logits, s);
    let passes =
        |rtol: f64| check_token_with(logits, Some(&weights), s, step, claimed, rtol).is_ok();
    if !passes(MAX_TOLERANCE) {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (0.0, MAX_TOLERANCE);
    while hi - lo > 1e-3 {
        let mid = (lo + hi) / 2.0;
        if passes(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The widest interval of the draw `u` for which the sampler could pick
/// `claimed` if every logit may be off by up to `margin`, or `None` when no
/// such logits make it a candidate.
///
/// Each weight `exp((l - top) / T)` can grow or shrink by `exp(margin / T)`,
/// and tokens within `2 * margin` of each other may swap places, so the
/// interval starts lowest when the tokens surely ahead of `claimed` shrink
/// and everything else (near-ties and any token within `2 * margin` of the
/// top-k / top-p cut) grows, and ends highest in the mirror case.
pub fn sampled_window(
    logits: &[f32],
    s: &Sampling,
    claimed: u32,
    margin: f64,
) -> Option<(f64, f64)> {
    window(logits, None, s, claimed, margin)
}

/// Each token's sampling weight `exp((l - top) / T)`, as
/// [`sampled_window`] computes it.
fn weights(logits: &[f32], s: &Sampling) -> Vec<f64> {
    let top = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    logits
        .iter()
        .map(|&l| ((f64::from(l) - top) / s.temperature).exp())
        .collect()
}

/// [`sampled_window`], taking the weights from `weights` when given.
fn window(
    logits: &[f32],
    weights: Option<&[f64]>,
    s: &Sampling,
    claimed: u32,
    margin: f64,
) -> Option<(f64, f64)> {
    let top = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    let weight = |l: f64| ((l - top) / s.temperature).exp();
    let (down, up) = (
        (-margin / s.temperature).exp(),
        (margin / s.temperature).exp(),
    );
    let band = 2.0 * margin;
    // The top-k edge, and the top-p edge in the longest and the shortest
    // prefix that such logits can keep.
    let (k_edge, near) = match s.top_k as usize {
        0 => (f64::NEG_INFINITY, None),
        k if k >= logits.len() => (f64::NEG_INFINITY, None),
        k => {
            let (kth, near) = kth_largest(logits, k, top as f32, s.temperature);
            (f64::from(kth), near)
        }
    };
    // The tokens that may make the top k, in vocabulary order, with their
    // weights: every sum below runs over them in that order, so each is
    // the same, bit for bit, as over the whole vocabulary with the others
    // skipped, and no weight is computed twice. They are among the values
    // the top-k edge was selected from when that set reaches low enough.
    let floor = k_edge - band;
    let (mut tokens, mut values) = (Vec::new(), Vec::new());
    match near {
        Some(near) if f64::from(near.floor) <= floor => {
            for (&t, &l) in near.tokens.iter().zip(&near.values) {
                let l = f64::from(l);
                if l >= floor {
                    tokens.push(t as usize);
                    values.push(l);
                }
            }
        }
        _ => {
            for (t, &l) in logits.iter().enumerate() {
                let l = f64::from(l);
                if l >= floor {
                    tokens.push(t);
                    values.push(l);
                }
            }
        }
    }
    let weighed: Vec<f64> = match weights {
        Some(w) => tokens.iter().map(|&t| w[t]).collect(),
        None => values.iter().map(|&l| weight(l)).collect(),
    };
    // The tail after a prefix is largest when every token that may make
    // the top k does, and smallest when only those that surely do. Only a
    // top-p cut needs them.
    let (most, least): (f64, f64) = if s.top_p < 1.0 {
        (
            weighed.iter().sum(),
            values
                .iter()
                .zip(&weighed)
                .filter(|&(&l, _)| l > k_edge + band)
                .map(|(_, &w)| w)
                .sum(),
        )
    } else {
        (0.0, 0.0)
    };
    let p_edge = |lead: f64, tail: f64, total: f64| {
        if s.top_p >= 1.0 {
            return f64::NEG_INFINITY;
        }
        // Sort only the heaviest values, as many as the cut needs.
        let mut reach = 4.0 * s.temperature;
        loop {
            let mut sorted: Vec<f64> = values
                .iter()
                .copied()
                .filter(|&l| l >= top - reach)
                .collect();
            let complete = sorted.len() == values.len();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            let mut acc = 0.0;
            for &l in &sorted {
                acc += weight(l);
                if acc * lead / (acc * lead + (total - acc).max(0.0) * tail) >= s.top_p {
                    return l;
                }
            }
            if complete {
                return f64::NEG_INFINITY;
            }
            reach *= 2.0;
        }
    };
    let maybe_kept = (k_edge - band).max(p_edge(down, up, most) - band);
    let surely_kept = (k_edge + band).max(p_edge(up, down, least) + band);
    let own = f64::from(logits[claimed as usize]);
    if own < maybe_kept {
        return None;
    }
    let pool = tokens.iter().zip(&values).zip(&weighed);
    let (lo, hi) = Interval {
        claimed: claimed as usize,
        own: (own, weight(own)),
        band,
        kept: (maybe_kept, surely_kept),
        stretch: (down, up),
    }
    .bounds(pool.map(|((&t, &l), &w)| (t, l, w)), 0.0);
    Some((lo - 1e-12, hi + 1e-12))
}

/// The claimed token's interval of the draw, from the candidates' weights
/// ([`window`]).
struct Interval {
    claimed: usize,
    /// Its logit and weight.
    own: (f64, f64),
    /// How far two logits may move apart.
    band: f64,
    /// The logits below which a token is surely not, and above which it
    /// surely is, a candidate.
    kept: (f64, f64),
    /// How far a weight may shrink and grow: `exp(∓margin / T)`.
    stretch: (f64, f64),
}

impl Interval {
    /// The interval's ends over the candidates `pool` (token, logit,
    /// weight; in vocabulary order), with up to `light` more weight of
    /// tokens not listed, all behind the claimed one.
    fn bounds(&self, pool: impl Iterator<Item = (usize, f64, f64)>, light: f64) -> (f64, f64) {
        let ((own, w), band, (maybe_kept, surely_kept), (down, up)) =
            (self.own, self.band, self.kept, self.stretch);
        // Weights of the tokens surely ahead of the claimed one, of those
        // that may swap with it, and of those surely behind it that surely
        // or possibly stay candidates.
        let (mut ahead, mut tied, mut behind_sure, mut behind_maybe) = (0.0, 0.0, 0.0, 0.0);
        for (t, l, weight) in pool {
            if t == self.claimed || l < maybe_kept {
                continue;
            }
            if l > own + band {
                ahead += weight;
            } else if l >= own - band {
                tied += weight;
            } else if l > surely_kept {
                behind_sure += weight;
            } else {
                behind_maybe += weight;
            }
        }
        let lo = ahead * down / (ahead * down + (w + tied + behind_sure + behind_maybe) * up);
        let hi = (ahead + tied + w) * up / ((ahead + tied + w) * up + (behind_sure + light) * down);
        (lo, hi)
    }
}

/// How far below the top logit, in units of the temperature, a token is
/// weighed one by one in [`surely_in_window`]: each token further down
/// weighs less than `exp(-HEAVY)`.
const HEAVY: f64 = 15.0;

/// Whether the draw `u` surely falls in [`window`]'s interval, decided
/// from the tokens within [`HEAVY`] temperatures of the top with a bound
/// on what the others weigh, where the whole pool is the candidates (no
/// top-k cut): `false` when the bound does not settle it, and the window
/// is then computed over every token. Each `exp` over the vocabulary is
/// what a sampled audit costs beyond the forward pass, and most tokens of
/// a language model's vocabulary lie far below the top.
///
/// It never says `true` where the window would not: the window's sums
/// (each over positive weights, in vocabulary order) differ from their
/// exact values by far less than the `1e-9` it leaves on either side.
/// - With a top-p cut, each edge of the cut is where a running share
///   first reaches `top_p`; that share falls as the total weight grows, so
///   when the same heavy token is the edge for the least and the most the
///   total can be, it is the edge. When both edges lie among the heavy
///   tokens, so do all candidates, and the interval is the window's, sum
///   for sum.
/// - Otherwise the light tokens only ever add to the weight of the tokens
///   tied with or behind the claimed one (which is heavy), and the
///   interval is bounded by giving all of their weight, at most, to
///   whichever side narrows it.
///
/// The light tokens' weight is bounded first by their count alone, and,
/// when that does not settle it, by counting them by how far below the
/// top they lie.
fn surely_in_window(logits: &[f32], s: &Sampling, claimed: u32, margin: f64, u: f64) -> bool {
    if (s.top_k != 0 && (s.top_k as usize) < logits.len()) || s.temperature <= 0.0 {
        return false;
    }
    let top = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    let own = f64::from(logits[claimed as usize]);
    let floor = top - HEAVY * s.temperature;
    if !top.is_finite() || own.is_nan() || own < floor {
        return false;
    }
    let weight = |l: f64| ((l - top) / s.temperature).exp();
    let (down, up) = (
        (-margin / s.temperature).exp(),
        (margin / s.temperature).exp(),
    );
    let band = 2.0 * margin;
    // The heavy tokens, in vocabulary order.
    let mut heavy = Vec::new();
    for (t, &l) in logits.iter().enumerate() {
        let l = f64::from(l);
        if l >= floor {
            heavy.push((t, l, weight(l)));
        } else if l.is_nan() {
            return false;
        }
    }
    let settles = |light: f64| {
        let light = light * (1.0 + 1e-9);
        let (maybe_kept, surely_kept) = if s.top_p < 1.0 {
            let total: f64 = heavy.iter().map(|h| h.2).sum();
            let totals = [total * (1.0 - 1e-9), (total + light) * (1.0 + 1e-9)];
            // Sort only the heaviest, as many as the cut needs.
            let mut reach = 4.0 * s.temperature;
            loop {
                let mut sorted: Vec<(f64, f64)> = heavy
                    .iter()
                    .filter(|h| h.1 >= top - reach)
                    .map(|h| (h.1, h.2))
                    .collect();
                let complete = sorted.len() == heavy.len();
                sorted.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
                // Where the running share first reaches `top_p`.
                let first = |lead: f64, tail: f64, total: f64| {
                    let mut acc = 0.0;
                    sorted.iter().position(|&(_, w)| {
                        acc += w;
                        acc * lead / (acc * lead + (total - acc).max(0.0) * tail) >= s.top_p
                    })
                };
                // The edge for every total the pool can have, if it is
                // one token (the edge moves down as the total grows);
                // `Err(true)`: sort further.
                let edge = |lead: f64, tail: f64| match totals.map(|t| first(lead, tail, t)) {
                    [Some(a), Some(b)] if a == b => Ok(sorted[a].0),
                    [_, None] if !complete => Err(true),
                    _ => Err(false),
                };
                match (edge(down, up), edge(up, down)) {
                    (Ok(most), Ok(least)) => break (most - band, least + band),
                    (Err(true), _) | (_, Err(true)) => reach *= 2.0,
                    _ => return false,
                }
            }
        } else {
            (f64::NEG_INFINITY, f64::NEG_INFINITY)
        };
        if own < maybe_kept {
            return false;
        }
        // Every candidate is heavy: nothing is left to bound.
        let light = if maybe_kept >= floor { 0.0 } else { light };
        let (lo, hi) = Interval {
            claimed: claimed as usize,
            own: (own, weight(own)),
            band,
            kept: (maybe_kept, surely_kept),
            stretch: (down, up),
        }
        .bounds(heavy.iter().copied(), light);
        lo + 1e-9 <= u && u < hi - 1e-9
    };
    // Each light token weighs less than exp(-HEAVY); one `d` temperatures
    // below the top at most exp(-floor(4 d) / 4).
    let light = logits.len() - heavy.len();
    if settles(light as f64 * (-HEAVY).exp()) {
        return true;
    }
    let per = 4.0 / s.temperature;
    let mut below = [0u32; 241];
    for &l in logits {
        let l = f64::from(l);
        if l < floor {
            below[(((top - l) * per) as usize).min(240)] += 1;
        }
    }
    let bound = below
        .iter()
        .enumerate()
        .map(|(d, &n)| f64::from(n) * (-(d as f64) / 4.0).exp())
        .sum();
    settles(bound)
}

/// The logits at or above `floor`, in vocabulary order.
struct Near {
    floor: f32,
    tokens: Vec<u32>,
    values: Vec<f32>,
}

/// The `k`-th largest of `logits` (1-based, in `f32::total_cmp` order;
/// `top` is their largest), as a selection over the whole vocabulary finds
/// it, but selected among the values near the top when there are at least
/// `k` of them, which it returns too: every value above a floor is larger
/// than every value below it, so the `k`-th largest above the floor is the
/// `k`-th overall. A NaN, which the total order ranks apart, sends it to
/// the whole vocabulary.
fn kth_largest(logits: &[f32], k: usize, top: f32, temperature: f64) -> (f32, Option<Near>) {
    let by_rank = |a: &f32, b: &f32| b.total_cmp(a);
    let mut reach = ((16.0 * temperature) as f32).max(8.0);
    while top.is_finite() && reach.is_finite() {
        let floor = top - reach;
        let mut near = Near {
            floor,
            tokens: Vec::new(),
            values: Vec::new(),
        };
        let mut nan = false;
        for (t, &l) in logits.iter().enumerate() {
            if l >= floor {
                near.tokens.push(t as u32);
                near.values.push(l);
            } else if l.is_nan() {
                nan = true;
            }
        }
        if nan {
            break;
        }
        if near.values.len() >= k {
            let mut sorted = near.values.clone();
            let kth = *sorted.select_nth_unstable_by(k - 1, by_rank).1;
            return (kth, Some(near));
        }
        reach *= 4.0;
    }
    let mut all = logits.to_vec();
    (*all.select_nth_unstable_by(k - 1, by_rank).1, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sampled(seed: u64) -> Sampling {
        Sampling {
            temperature: 0.8,
            top_p: 0.9,
            top_k: 40,
            seed,
        }
    }

    /// Logits shaped like a small language model's over a vocabulary of
    /// 49,152 (SmolLM2-135M's, over the cost example's answers, have per
    /// token tens within 5 of the top, thousands within 15, most further
    /// down): an exponential upper tail from -5, and a few likely tokens
    /// above it.
    fn llm_like(seed: u64) -> Vec<f32> {
        let mut x = seed | 1;
        let mut logits: Vec<f32> = (0..49_152)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = (x >> 11) as f64 / (1u64 << 53) as f64;
                (-5.0 - 2.0 * (1.0 - v).ln()) as f32
            })
            .collect();
        for (i, boost) in [
            (x % 49_152, 21.0),
            ((x >> 20) % 49_152, 20.0),
            ((x >> 40) % 49_152, 18.5),
        ] {
            logits[i as usize] = boost;
        }
        logits
    }

    #[test]
    fn the_bound_settles_most_sampled_checks_without_weighing_every_token() {
        for (top_p, t) in [(1.0, 1.0), (0.95, 0.8), (0.9, 1.2)] {
            let (mut settled, mut draws) = (0, 0);
            for seed in 0..50u64 {
                let logits = llm_like(seed + 1);
                let s = Sampling {
                    temperature: t,
                    top_p,
                    top_k: 0,
                    seed,
                };
                let claimed = choose(&logits, &s, 3);
                assert!(check_token(&logits, &s, 3, claimed, 0.0).is_ok());
                draws += 1;
                if surely_in_window(&logits, &s, claimed, 0.0, uniform(seed, 3)) {
                    settled += 1;
                }
            }
            assert!(
                settled * 10 >= draws * 9,
                "top-p {top_p}, T {t}: {settled} of {draws} settled"
            );
        }
    }

    #[test]
    fn greedy_is_argmax_and_tolerates_near_ties() {
        let logits = [1.0, 5.0, 4.999, -3.0];
        let s = Sampling::default();
        assert_eq!(choose(&logits, &s, 0), 1);
        assert!(check_token(&logits, &s, 0, 1, 0.01).is_ok());
        assert!(check_token(&logits, &s, 0, 2, 0.01).is_ok(), "a near tie");
        let e = check_token(&logits, &s, 0, 0, 0.01).unwrap_err();
        assert!(e.0.contains("greedy decoding picks token 1"), "{e}");
        assert!(check_token(&logits, &s, 0, 9, 0.01).is_err());
    }

    #[test]
    fn a_sampled_token_far_from_the_draw_fails() {
        let logits: Vec<f32> = (0..20).map(|i| (i % 7) as f32 * 0.3).collect();
        let s = Sampling {
            top_k: 0,
            top_p: 1.0,
            ..sampled(5)
        };
        let u = uniform(s.seed, 0);
        let cands = candidates(&logits, &s);
        let mut acc = 0.0;
        let far = cands
            .iter()
            .find(|&&(_, p)| {
                acc += p;
                acc < u - 0.3 || acc - p > u + 0.3
            })
            .expect("some token lies far from the draw")
            .0;
        let e = check_token(&logits, &s, 0, far, 0.02).unwrap_err();
        assert!(e.0.contains("falls outside"), "{e}");
        let honest = choose(&logits, &s, 0);
        assert!(check_token(&logits, &s, 0, honest, 0.02).is_ok());
    }

    #[test]
    fn the_tolerance_needed_is_where_the_check_starts_to_pass() {
        let logits: Vec<f32> = (0..20).map(|i| (i % 7) as f32 * 0.3).collect();
        let greedy = Sampling::default();
        // The top logit is 1.8 (scale 10): token 4 (1.2) is 0.6 below it.
        assert_eq!(tolerance_needed(&logits, &greedy, 0, 6), 0.0);
        let t = tolerance_needed(&logits, &greedy, 0, 4);
        assert!((t - 0.06).abs() < 1e-6, "{t}");
        assert!(check_token(&logits, &greedy, 0, 4, t + 1e-9).is_ok());
        assert!(check_token(&logits, &greedy, 0, 4, t - 1e-3).is_err());
        assert_eq!(
            tolerance_needed(&logits, &greedy, 0, 99),
            f64::INFINITY,
            "outside the vocabulary"
        );
        let s = Sampling {
            top_k: 0,
            top_p: 1.0,
            ..sampled(5)
        };
        let honest = choose(&logits, &s, 0);
        assert_eq!(tolerance_needed(&logits, &s, 0, honest), 0.0);
        let mut seen = 0;
        for claimed in 0..20 {
            let t = tolerance_needed(&logits, &s, 0, claimed);
            if t == 0.0 || !t.is_finite() {
                continue;
            }
            seen += 1;
            assert!(
                check_token(&logits, &s, 0, claimed, t).is_ok(),
                "{claimed} at {t}"
            );
            assert!(
                check_token(&logits, &s, 0, claimed, t - 2e-3).is_err(),
                "{claimed} at {t}"
            );
        }
        assert!(seen > 0, "some other token passes only with a tolerance");
    }

    #[test]
    fn draws_are_uniform_and_seeded() {
        let n = 4000;
        let mean: f64 = (0..n).map(|i| uniform(7, i)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert_eq!(uniform(7, 3), uniform(7, 3));
        assert_ne!(uniform(7, 3), uniform(8, 3));
    }

    #[test]
    fn top_k_and_top_p_cut_the_candidates() {
        let logits: Vec<f32> = (0..100).map(|i| i as f32 / 10.0).collect();
        let s = Sampling {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 5,
            seed: 0,
        };
        let c = candidates(&logits, &s);
        assert_eq!(
            c.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![99, 98, 97, 96, 95]
        );
        assert!((c.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-12);
        let s = Sampling {
            top_k: 0,
            top_p: 0.3,
            ..s
        };
        let c = candidates(&logits, &s);
        let kept: f64 = c.iter().map(|x| x.1).sum();
        assert!(c.len() < 10 && (kept - 1.0).abs() < 1e-12, "{}", c.len());
    }

    /// The sampler as specified, sorting the whole vocabulary.
    fn choose_by_full_sort(logits: &[f32], s: &Sampling, step: u64) -> u32 {
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        let key = |t: &u32| logits[*t as usize];
        order.sort_unstable_by(|a, b| key(b).total_cmp(&key(a)).then(a.cmp(b)));
        if s.top_k != 0 {
            order.truncate(s.top_k as usize);
        }
        let top = f64::from(logits[order[0] as usize]);
        let w: Vec<f64> = order
            .iter()
            .map(|&t| ((f64::from(key(&t)) - top) / s.temperature).exp())
            .collect();
        let total: f64 = w.iter().sum();
        let mut kept = w.len();
        let mut acc = 0.0;
        for (i, p) in w.iter().enumerate() {
            acc += p / total;
            if s.top_p < 1.0 && acc >= s.top_p {
                kept = i + 1;
                break;
            }
        }
        let total: f64 = w[..kept].iter().sum();
        let u = uniform(s.seed, step);
        let mut acc = 0.0;
        for i in 0..kept {
            acc += w[i] / total;
            if u < acc {
                return order[i];
            }
        }
        order[kept - 1]
    }

    /// The window as computed before it was restricted to the tokens that
    /// may make the top k: every weight over the whole vocabulary, the
    /// top-k edge selected among all logits.
    fn window_over_all(
        logits: &[f32],
        weights: Option<&[f64]>,
        s: &Sampling,
        claimed: u32,
        margin: f64,
    ) -> Option<(f64, f64)> {
        let top = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let weight = |l: f64| ((l - top) / s.temperature).exp();
        let (down, up) = (
            (-margin / s.temperature).exp(),
            (margin / s.temperature).exp(),
        );
        let band = 2.0 * margin;
        // The top-k edge, and the top-p edge in the longest and the shortest
        // prefix that such logits can keep.
        let k_edge = match s.top_k as usize {
            0 => f64::NEG_INFINITY,
            k if k >= logits.len() => f64::NEG_INFINITY,
            k => {
                let mut all = logits.to_vec();
                let (_, kth, _) = all.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                f64::from(*kth)
            }
        };
        let values = || {
            logits
                .iter()
                .map(|&l| f64::from(l))
                .filter(move |&l| l >= k_edge - band)
        };
        // The tail after a prefix is largest when every token that may make
        // the top k does, and smallest when only those that surely do. Only a
        // top-p cut needs them: without one, each weight is computed once, in
        // the loop below (each pass is one `exp` per token of the vocabulary).
        let (most, least): (f64, f64) = if s.top_p < 1.0 {
            (
                values().map(weight).sum(),
                values().filter(|&l| l > k_edge + band).map(weight).sum(),
            )
        } else {
            (0.0, 0.0)
        };
        let p_edge = |lead: f64, tail: f64, total: f64| {
            if s.top_p >= 1.0 {
                return f64::NEG_INFINITY;
            }
            // Sort only the heaviest values, as many as the cut needs.
            let mut reach = 4.0 * s.temperature;
            loop {
                let mut sorted: Vec<f64> = values().filter(|&l| l >= top - reach).collect();
                let complete = sorted.len() == values().count();
                sorted.sort_unstable_by(|a, b| b.total_cmp(a));
                let mut acc = 0.0;
                for &l in &sorted {
                    acc += weight(l);
                    if acc * lead / (acc * lead + (total - acc).max(0.0) * tail) >= s.top_p {
                        return l;
                    }
                }
                if complete {
                    return f64::NEG_INFINITY;
                }
                reach *= 2.0;
            }
        };
        let maybe_kept = (k_edge - band).max(p_edge(down, up, most) - band);
        let surely_kept = (k_edge + band).max(p_edge(up, down, least) + band);
        let own = f64::from(logits[claimed as usize]);
        if own < maybe_kept {
            return None;
        }
        // Weights of the tokens surely ahead of `claimed`, of those that may
        // swap with it, and of those surely behind it that surely or possibly
        // stay candidates.
        let (mut ahead, mut tied, mut behind_sure, mut behind_maybe) = (0.0, 0.0, 0.0, 0.0);
        for (t, &l) in logits.iter().enumerate() {
            let l = f64::from(l);
            if t == claimed as usize || l < maybe_kept {
                continue;
            }
            let w = weights.map_or_else(|| weight(l), |w| w[t]);
            if l > own + band {
                ahead += w;
            } else if l >= own - band {
                tied += w;
            } else if l > surely_kept {
                behind_sure += w;
            } else {
                behind_maybe += w;
            }
        }
        let w = weight(own);
        let lo = ahead * down / (ahead * down + (w + tied + behind_sure + behind_maybe) * up);
        let hi = (ahead + tied + w) * up / ((ahead + tied + w) * up + behind_sure * down);
        Some((lo - 1e-12, hi + 1e-12))
    }

    /// Checks [`surely_in_window`] against the window over the whole
    /// vocabulary for the 20 likeliest tokens, with draws just inside and
    /// just outside each end of their intervals and in the middle: it may
    /// say `true` only inside. How many it settled.
    fn the_bound_never_passes_a_draw_outside(
        logits: &[f32],
        s: &Sampling,
        margin: f64,
    ) -> Result<usize, TestCaseError> {
        let mut settled = 0;
        for claimed in likeliest(logits, 20) {
            let Some((lo, hi)) = window_over_all(logits, None, s, claimed, margin) else {
                prop_assert!(!surely_in_window(logits, s, claimed, margin, 0.5));
                continue;
            };
            for d in [1e-10, 1e-8, 1e-6, 1e-4, 1e-2] {
                for u in [lo - d, lo + d, hi - d, hi + d, (lo + hi) / 2.0] {
                    let u = u.clamp(0.0, 1.0 - f64::EPSILON);
                    if surely_in_window(logits, s, claimed, margin, u) {
                        prop_assert!(lo <= u && u < hi, "{lo} <= {u} < {hi}, token {claimed}");
                        settled += 1;
                    }
                }
            }
        }
        Ok(settled)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn a_draw_the_bound_settles_is_in_the_window(
            seed in any::<u64>(), margin in prop_oneof![Just(0.0f64), 0f64..0.5],
            top_p in prop_oneof![Just(1.0f64), 0.5f64..1.0],
            temperature in prop_oneof![0.5f64..2.0, 1e-3f64..0.1],
            top_k in prop_oneof![Just(0u32), Just(49_152u32)]) {
            let s = Sampling { temperature, top_p, top_k, seed };
            the_bound_never_passes_a_draw_outside(&llm_like(seed), &s, margin)?;
        }

        #[test]
        fn a_draw_the_bound_settles_is_in_the_window_for_any_logits(
            logits in proptest::collection::vec(prop_oneof![8 => -40f32..12.0, 1 => 8f32..12.0, 1 => Just(11.5f32)], 2..2000),
            margin in prop_oneof![Just(0.0f64), 0f64..1.0],
            top_p in prop_oneof![Just(1.0f64), 0.05f64..1.0],
            temperature in prop_oneof![0.3f64..2.0, 1e-3f64..0.1]) {
            let s = Sampling { temperature, top_p, top_k: 0, seed: 1 };
            the_bound_never_passes_a_draw_outside(&logits, &s, margin)?;
        }
    }

    #[test]
    fn the_bound_settles_draws_near_the_ends_of_intervals() {
        // So that the property above meets the bound where it is tight.
        let mut settled = 0;
        for (seed, top_p) in [(1, 1.0), (2, 0.95), (3, 1.0), (4, 0.9)] {
            let s = Sampling {
                temperature: 1.0,
                top_p,
                top_k: 0,
                seed,
            };
            settled += the_bound_never_passes_a_draw_outside(&llm_like(seed), &s, 0.0).unwrap();
        }
        // 4 × 20 tokens × 25 draws: fewer than half lie inside, and the
        // bound leaves 1e-9 at either end (237 settle).
        assert!(settled > 150, "{settled}");
    }

    proptest! {
        #[test]
        fn the_window_over_the_tokens_that_may_make_the_top_k_is_the_window_over_all(
            logits in proptest::collection::vec(prop_oneof![8 => -30f32..30.0, 1 => Just(0.0f32), 1 => Just(-0.0f32), 1 => Just(2.5f32)], 2..3000),
            claimed in 0usize..3000, margin in prop_oneof![Just(0.0f64), 0f64..2.0],
            top_k in prop_oneof![Just(0u32), 1u32..100, 2990u32..3010],
            top_p in prop_oneof![Just(1.0f64), 0.05f64..1.0],
            temperature in prop_oneof![0.1f64..2.0, 1e-4f64..1e-2]) {
            let s = Sampling { temperature, top_p, top_k, seed: 1 };
            let claimed = (claimed % logits.len()) as u32;
            let ahead = weights(&logits, &s);
            let want = window_over_all(&logits, None, &s, claimed, margin);
            // Bit for bit: the sums run over the same weights in the same order.
            let bits = |w: Option<(f64, f64)>| w.map(|(lo, hi)| (lo.to_bits(), hi.to_bits()));
            prop_assert_eq!(bits(window(&logits, None, &s, claimed, margin)), bits(want));
            prop_assert_eq!(bits(window(&logits, Some(&ahead), &s, claimed, margin)), bits(want));
        }

        #[test]
        fn the_kth_largest_near_the_top_is_the_kth_largest_of_all(
            logits in proptest::collection::vec(prop_oneof![
                20 => -1e4f32..1e4, 2 => -5f32..5.0, 1 => Just(0.0f32), 1 => Just(-0.0f32),
                1 => Just(f32::NAN), 1 => Just(-f32::NAN), 1 => Just(f32::INFINITY), 1 => Just(f32::NEG_INFINITY)], 1..500),
            k in 1usize..500, temperature in 1e-3f64..3.0) {
            let k = 1 + (k - 1) % logits.len();
            let mut all = logits.clone();
            let want = *all.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a)).1;
            let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let (kth, near) = kth_largest(&logits, k, top, temperature);
            prop_assert_eq!(kth.to_bits(), want.to_bits());
            if let Some(near) = near {
                let kept: Vec<u32> = (0..logits.len() as u32).filter(|&t| logits[t as usize] >= near.floor).collect();
                prop_assert_eq!(&near.tokens, &kept);
            }
        }

        #[test]
        fn the_sampler_sorts_only_what_it_needs(seed in any::<u64>(), step in 0u64..1000,
                                                logits in proptest::collection::vec(-30f32..30.0, 1..3000),
                                                top_k in prop_oneof![Just(0u32), 1u32..100], top_p in prop_oneof![Just(1.0f64), 0.05f64..1.0],
                                                temperature in 0.1f64..2.0) {
            let s = Sampling { temperature, top_p, top_k, seed };
            prop_assert_eq!(choose(&logits, &s, step), choose_by_full_sort(&logits, &s, step));
            let c = candidates(&logits, &s);
            prop_assert!((c.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-9);
        }

        #[test]
        fn weights_computed_ahead_give_the_same_window(logits in proptest::collection::vec(-20f32..20.0, 2..200),
                                                       claimed in 0usize..200, margin in 0f64..2.0,
                                                       top_k in prop_oneof![Just(0u32), 1u32..50],
                                                       top_p in prop_oneof![Just(1.0f64), 0.05f64..1.0],
                                                       temperature in 0.1f64..2.0) {
            let s = Sampling { temperature, top_p, top_k, seed: 1 };
            let claimed = (claimed % logits.len()) as u32;
            let ahead = weights(&logits, &s);
            prop_assert_eq!(window(&logits, Some(&ahead), &s, claimed, margin),
                            sampled_window(&logits, &s, claimed, margin));
        }

        #[test]
        fn the_sampler_passes_its_own_check(seed in any::<u64>(), step in 0u64..1000,
                                            logits in proptest::collection::vec(-20f32..20.0, 2..200)) {
            let s = sampled(seed);
            let t = choose(&logits, &s, step);
            prop_assert!(check_token(&logits, &s, step, t, 0.0).is_ok());
            let g = Sampling::default();
            prop_assert!(check_token(&logits, &g, step, choose(&logits, &g, step), 0.0).is_ok());
        }

        #[test]
        fn a_choice_from_nearby_logits_passes(seed in any::<u64>(), step in 0u64..1000,
                                              pairs in proptest::collection::vec((-20f32..20.0, -1f32..1.0), 2..200),
                                              m in 0.001f64..0.5, spread in 0.05f32..1.0) {
            let logits: Vec<f32> = pairs.iter().map(|p| p.0 * spread).collect();
            let moved: Vec<f32> = pairs.iter().map(|p| p.0 * spread + p.1 * m as f32 * 0.499).collect();
            for s in [sampled(seed), Sampling { top_k: 0, top_p: 1.0, ..sampled(seed) }, Sampling::default()] {
                let t = choose(&moved, &s, step);
                prop_assert!(check_token(&logits, &s, step, t, m).is_ok(), "{:?}", check_token(&logits, &s, step, t, m));
            }
        }
    }

    #[test]
    fn logprobs_are_the_models_and_their_check_catches_edits() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 7) % 13) as f32 * 0.4).collect();
        let piece = |t: u32| format!("<{t}>").into_bytes();
        let lp = TokenLogprobs::of(&logits, 3, 4, &piece);
        assert_eq!(lp.top.len(), 4);
        let sum: f64 = logits.iter().map(|&l| f64::from(l - logits[3]).exp()).sum();
        assert!(
            (f64::from(lp.logprob) + sum.ln()).abs() < 1e-5,
            "{}",
            lp.logprob
        );
        // Most likely first, ties by id: 12 is the largest value (4.8).
        let best = argmax(&logits);
        assert_eq!(lp.top[0].token, best);
        assert!(lp.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        assert!(lp.check(&logits, 3, 4, &piece, 0.0).is_ok());
        // Within the margin, noisy logits pass; an edited value does not.
        let noisy: Vec<f32> = logits
            .iter()
            .enumerate()
            .map(|(i, l)| l + (i % 3) as f32 * 0.004)
            .collect();
        assert!(lp.check(&noisy, 3, 4, &piece, 0.01).is_ok());
        let mut edited = lp.clone();
        edited.logprob += 0.5;
        assert!(
            edited
                .check(&logits, 3, 4, &piece, 0.01)
                .unwrap_err()
                .contains("not the model's")
        );
        let mut edited = lp.clone();
        edited.top[1].logprob -= 0.3;
        assert!(edited.check(&logits, 3, 4, &piece, 0.01).is_err());
        // Leaving out a likelier token, or the wrong count, or wrong bytes.
        let mut edited = lp.clone();
        edited.top.remove(0);
        assert!(
            edited
                .check(&logits, 3, 3, &piece, 0.01)
                .unwrap_err()
                .contains("left out")
        );
        assert!(lp.check(&logits, 3, 5, &piece, 0.01).is_err());
        let mut edited = lp.clone();
        edited.bytes = b"x".to_vec();
        assert!(edited.check(&logits, 3, 4, &piece, 0.01).is_err());
        // Bound in the chain: any change is another link.
        let (mut a, mut b) = (
            Chain::start(&Digest::of(Kind::Input, b"r")),
            Chain::start(&Digest::of(Kind::Input, b"r")),
        );
        a.push_with(3, "x", Some(&lp));
        let mut moved = lp.clone();
        moved.top[3].logprob = f32::from_bits(moved.top[3].logprob.to_bits() + 1);
        b.push_with(3, "x", Some(&moved));
        assert_ne!(a.link(), b.link());
    }

    #[test]
    fn the_extended_encoding_matches_the_python_reference() {
        // ui/test/llm-fixture.json: written by ui/test/make_llm_fixture.py
        // with tests/python/vouch_ref.py, and checked by the JS verifier.
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../ui/test/llm-fixture.json")).unwrap();
        let req: LlmRequest = serde_json::from_value(fixture["extended_request"].clone()).unwrap();
        assert!(req.constraint.is_some() && req.tools.is_some());
        assert_eq!(req.messages[1].tool_calls[0].name, "weather");
        assert_eq!(
            req.digest().to_string(),
            fixture["extended_request_digest"].as_str().unwrap()
        );
        let logprobs: TokenLogprobs = serde_json::from_value(fixture["logprobs"].clone()).unwrap();
        let mut chain = Chain::start(&req.digest());
        chain.push_with(7, " Paris", Some(&logprobs));
        assert_eq!(
            chain.link().to_string(),
            fixture["logprobs_link"].as_str().unwrap()
        );
        let plain: LlmRequest = serde_json::from_value(fixture["request"].clone()).unwrap();
        assert_eq!(
            plain.digest().to_string(),
            fixture["request_digest"].as_str().unwrap()
        );
    }

    #[test]
    fn chain_and_checkpoints_bind_every_token() {
        let key = SecretKey::from_bytes(&[3; 32]);
        let model = Digest::of(Kind::Model, b"m");
        let req = LlmRequest {
            mode: Mode::Chat,
            prompt: "hi".into(),
            max_tokens: 8,
            stop: vec!["\n".into()],
            sampling: sampled(1),
            messages: vec![],
            template: None,
            constraint: None,
            tools: None,
            logprobs: None,
        };
        let rd = req.digest();
        let mut a = Chain::start(&rd);
        a.push(5, "Hel");
        a.push(6, "lo");
        let ck = Checkpoint::sign(&key, &model, &rd, &a);
        assert!(ck.verify(&key.public(), &model, &rd, &a).is_ok());
        let mut b = Chain::start(&rd);
        b.push(5, "Hel");
        b.push(6, "lp");
        assert!(ck.verify(&key.public(), &model, &rd, &b).is_err());
        assert_ne!(a.output(Finish::Stop), a.output(Finish::Length));
        let other = LlmRequest {
            max_tokens: 9,
            ..req.clone()
        };
        assert_ne!(other.digest(), rd);
        // The client's messages and the template are bound when present:
        // a rewritten system message is another request.
        let chat = LlmRequest {
            messages: vec![
                Message::text("system", "Be brief."),
                Message::text("user", "hi"),
            ],
            template: Some(Digest::of(Kind::Blob, b"{{ messages }}")),
            ..req.clone()
        };
        assert_ne!(chat.digest(), rd);
        let mut rewritten = chat.clone();
        rewritten.messages[0].content = "Be rude.".into();
        assert_ne!(rewritten.digest(), chat.digest());
        let mut other_template = chat.clone();
        other_template.template = Some(Digest::of(Kind::Blob, b"other"));
        assert_ne!(other_template.digest(), chat.digest());
        let back: LlmRequest =
            serde_json::from_str(&serde_json::to_string(&chat).unwrap()).unwrap();
        assert_eq!(back.digest(), chat.digest());
        // Without them, the JSON and the bytes are as before they existed.
        assert!(!serde_json::to_string(&req).unwrap().contains("messages"));
        // A constraint, the tools offered and the tool fields of messages
        // are bound too, each in its own place.
        let schema = LlmRequest {
            constraint: Some(r#"{"type":"json_object"}"#.into()),
            ..chat.clone()
        };
        let tools = LlmRequest {
            tools: Some(r#"{"type":"json_object"}"#.into()),
            ..chat.clone()
        };
        let mut called = chat.clone();
        called.messages.push(Message {
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            ..Message::text("assistant", "")
        });
        let mut answered = called.clone();
        answered.messages.push(Message {
            tool_call_id: Some("call_1".into()),
            ..Message::text("tool", "42")
        });
        let digests = [&chat, &schema, &tools, &called, &answered].map(LlmRequest::digest);
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let mut other_args = called.clone();
        other_args.messages[2].tool_calls[0].arguments = "{\"x\":1}".into();
        assert_ne!(other_args.digest(), called.digest());
        let back: LlmRequest =
            serde_json::from_str(&serde_json::to_string(&answered).unwrap()).unwrap();
        assert_eq!(back, answered);
        let json = serde_json::to_string(&ck).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), ck);
    }
}
