//! What every language-model engine offers beyond tensors: tokenizer, chat
//! template, scheduled generation with our own sampler, and teacher-forced
//! scoring for audits.
//!
//! The pieces that decide *which text* a token sequence releases (UTF-8
//! assembly and stop strings, [`Releaser`]) and *how a generation ends*
//! ([`Step::next`]) are shared by the generator and by the auditor's
//! [`replay`], so both derive the same stream from the same tokens.

use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};
use vouch_types::llm::{Finish, LlmRequest, TokenLogprobs, check_token, margin, tolerance_needed};
use vouch_types::llm_rule::{AuditRule, Decision};

use crate::EngineError;
use crate::constrain::{Constraint, check_among, tolerance_among};

/// One chat message, as the template sees it: the same type a chat request
/// binds in its receipt (`vouch_types::llm::Message`).
pub use vouch_types::llm::Message as ChatMessage;

/// What a generation reports after each token.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEvent {
    /// The token chosen.
    pub token: u32,
    /// Text released with it (possibly empty).
    pub text: String,
    /// Set on the last token.
    pub finish: Option<Finish>,
    /// The model's log-probabilities here, when the request asked for them.
    pub logprobs: Option<vouch_types::llm::TokenLogprobs>,
}

/// Receives a generation's events on the engine's thread; returns `false`
/// to cancel (the client went away). Must not block.
pub type Sink = Box<dyn FnMut(Result<TokenEvent, EngineError>) -> bool + Send>;

/// How a faulty executor's answer departs from the request it signs
/// (`vouch node --fault`; each is an attack the audits must catch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LlmFault {
    /// From generated token `n` on, the likeliest token *other* than the
    /// sampler's choice.
    RunnerUpFrom(u64),
    /// Sampling at another temperature than the committed one (0: greedy).
    Temperature(f64),
    /// Sampling with another seed than the committed one.
    Seed,
    /// `k` tokens, spread over the answer (`max_tokens / k` apart, from
    /// the first), replaced by the runner-up.
    Edit(u32),
    /// Generating with another model (the node's configured substitute)
    /// while signing as the model the request names; the tokens are that
    /// model's honest choice.
    Substitute,
}

impl LlmFault {
    /// The token a faulty executor emits at generation step `step` of an
    /// answer of at most `max_tokens`, where the sampler under `sampling`
    /// chose `chosen` from `logits`.
    pub fn apply(
        &self,
        logits: &[f32],
        sampling: &vouch_types::llm::Sampling,
        step: u64,
        max_tokens: u32,
        chosen: u32,
    ) -> u32 {
        use vouch_types::llm::choose;
        match *self {
            LlmFault::RunnerUpFrom(from) if step >= from => runner_up(logits, chosen),
            LlmFault::RunnerUpFrom(_) => chosen,
            LlmFault::Temperature(t) => {
                let other = vouch_types::llm::Sampling {
                    temperature: t,
                    ..sampling.clone()
                };
                choose(logits, &other, step)
            }
            LlmFault::Seed => {
                let other = vouch_types::llm::Sampling {
                    seed: sampling.seed ^ 0x5eed_5eed_5eed_5eed,
                    ..sampling.clone()
                };
                choose(logits, &other, step)
            }
            LlmFault::Substitute => chosen,
            LlmFault::Edit(k) => {
                let every = u64::from((max_tokens / k.max(1)).max(1));
                if step.is_multiple_of(every) && step / every < u64::from(k) {
                    runner_up(logits, chosen)
                } else {
                    chosen
                }
            }
        }
    }
}

/// The likeliest token other than `token` (a faulty executor's choice).
pub fn runner_up(logits: &[f32], token: u32) -> u32 {
    let mut best: Option<usize> = None;
    for (i, &v) in logits.iter().enumerate() {
        if i != token as usize && best.is_none_or(|b| v > logits[b]) {
            best = Some(i);
        }
    }
    best.map_or(token, |b| b as u32)
}

/// A generation to schedule.
pub struct Job {
    /// The prompt's tokens.
    pub prompt: Vec<u32>,
    /// Budget, stop strings and sampling.
    pub request: LlmRequest,
    /// Where events go.
    pub sink: Sink,
    /// A deliberate fault (`vouch node --fault`, to demonstrate and
    /// measure audits): the answer is not what the request commits to.
    pub fault: Option<LlmFault>,
    /// The request's constraint, compiled ([`LanguageModel::grammar`]):
    /// the sampler picks among the tokens it allows.
    pub constraint: Option<crate::constrain::Constraint>,
    /// Whether anyone still wants the answer. The scheduler asks between
    /// steps: an abandoned job that is still queued never starts, and one
    /// still reading its prompt stops there, rather than at its first token.
    pub alive: Box<dyn Fn() -> bool + Send>,
}

/// Jobs a language model has stopped because nobody wanted their answer
/// any more, by where they were: still `queued`, reading the prompt
/// (`prefill`), or generating (`decode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Abandoned {
    /// Never started.
    pub queued: u64,
    /// Stopped before their first token.
    pub prefill: u64,
    /// Stopped while generating.
    pub decode: u64,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("prompt_tokens", &self.prompt.len())
            .field("request", &self.request)
            .finish()
    }
}

/// A loaded language model.
pub trait LanguageModel: Send + Sync {
    /// Tokens one sequence may hold (prompt + answer).
    fn context_length(&self) -> usize;
    /// The chat template from the model's metadata, if it has one.
    fn chat_template(&self) -> Option<&str>;
    /// Text of the beginning- and end-of-sequence tokens, for templates.
    fn special_tokens(&self) -> (String, String);
    /// Tokenizes a prompt the way the model expects (adding BOS when the
    /// model asks for it; special tokens in the text are parsed).
    fn tokenize(&self, text: &str) -> Vec<u32>;
    /// The bytes a token stands for (empty for control tokens).
    fn piece(&self, token: u32) -> Vec<u8>;
    /// Whether a token ends generation.
    fn is_end(&self, token: u32) -> bool;
    /// The vocabulary indexed for constraints (built on first use).
    fn grammar(&self) -> Result<std::sync::Arc<crate::constrain::Grammar>, EngineError> {
        Err(EngineError::Input(crate::InputError::Constraint(
            "this model's engine does not support constrained decoding".into(),
        )))
    }
    /// Queues a generation; events arrive on the job's sink from the
    /// engine's scheduler thread, interleaved fairly with other jobs. A
    /// model whose queue is full refuses it ([`EngineError::Busy`]).
    fn generate(&self, job: Job) -> Result<(), EngineError>;
    /// Generations running or queued now.
    fn load(&self) -> usize {
        0
    }
    /// Jobs stopped because nobody wanted them any more.
    fn abandoned(&self) -> Abandoned {
        Abandoned::default()
    }
    /// Teacher forcing: one forward pass over `tokens`, calling
    /// `each(p, logits)` for every position `p` in `rows`, where `logits`
    /// are what the model predicts for position `p + 1` having read
    /// `tokens[..=p]`.
    fn score(
        &self,
        tokens: &[u32],
        rows: std::ops::Range<usize>,
        each: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<(), EngineError>;

    /// Renders chat messages through the model's template, ending with the
    /// prompt for the assistant's turn; `tools` (the JSON list of tools
    /// offered) and tool messages as [`with_tools`] writes them.
    fn render_chat(
        &self,
        messages: &[ChatMessage],
        tools: Option<&str>,
    ) -> Result<String, EngineError> {
        let template = self
            .chat_template()
            .ok_or(EngineError::Input(crate::InputError::NoChatTemplate))?;
        let (bos, eos) = self.special_tokens();
        render_template(template, &with_tools(messages, tools)?, &bos, &eos)
    }
}

/// What a model reads of tools, the same for every model and template:
/// the tools offered are described in the system message (added first
/// when there is none), an assistant's tool calls become the JSON answer
/// it gave (`{"tool_calls": [{"name": …, "arguments": {…}}]}`, the shape
/// constrained decoding produces), and a tool's answer is a `tool`
/// message with its text. Messages without tool fields are unchanged.
pub fn with_tools(
    messages: &[ChatMessage],
    tools: Option<&str>,
) -> Result<Vec<ChatMessage>, EngineError> {
    let bad = |why: String| EngineError::Input(crate::InputError::Template(why));
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len() + 1);
    if let Some(tools) = tools {
        let list: Vec<serde_json::Value> = serde_json::from_str(tools)
            .map_err(|e| bad(format!("`tools` is not a JSON list: {e}")))?;
        let mut text = String::from(TOOLS_PREAMBLE);
        for t in &list {
            text.push('\n');
            text.push_str(&t.get("function").unwrap_or(t).to_string());
        }
        match messages.first() {
            Some(m) if m.role == "system" => {
                out.push(ChatMessage::text(
                    "system",
                    &format!("{}\n\n{text}", m.content),
                ));
            }
            _ => out.push(ChatMessage::text("system", &text)),
        }
    }
    let skip = usize::from(tools.is_some() && messages.first().is_some_and(|m| m.role == "system"));
    for m in &messages[skip..] {
        if m.tool_calls.is_empty() {
            out.push(ChatMessage::text(&m.role, &m.content));
            continue;
        }
        let calls = m
            .tool_calls
            .iter()
            .map(|c| {
                let args: serde_json::Value = serde_json::from_str(&c.arguments).map_err(|e| {
                    bad(format!(
                        "the arguments of tool call `{}` are not JSON: {e}",
                        c.id
                    ))
                })?;
                Ok(serde_json::json!({"name": c.name, "arguments": args}))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let answer = serde_json::json!({"tool_calls": calls}).to_string();
        let content = if m.content.is_empty() {
            answer
        } else {
            format!("{}\n{answer}", m.content)
        };
        out.push(ChatMessage::text(&m.role, &content));
    }
    Ok(out)
}

/// The start of the system text that offers tools; one line per tool
/// (its `function` object as JSON) follows.
pub const TOOLS_PREAMBLE: &str = "You can call tools. To call tools, answer with JSON only: {\"tool_calls\": [{\"name\": the tool's name, \"arguments\": {its arguments}}]}. To answer without a tool, answer with JSON only: {\"response\": your answer}. The tools:";

/// Renders a Hugging Face style chat template with minijinja.
pub fn render_template(
    template: &str,
    messages: &[ChatMessage],
    bos: &str,
    eos: &str,
) -> Result<String, EngineError> {
    let mut env = Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template("chat", template)
        .map_err(|e| EngineError::Load(format!("the model's chat template does not parse: {e}")))?;
    let t = env.get_template("chat").expect("just added");
    t.render(context! {
        messages => messages,
        add_generation_prompt => true,
        bos_token => bos,
        eos_token => eos,
    })
    .map_err(|e| {
        EngineError::Input(crate::InputError::Template(format!(
            "the model's chat template rejected these messages: {e}"
        )))
    })
}

/// Turns token bytes into released text: bytes of an incomplete UTF-8
/// character are held until the character completes, and text that could be
/// the start of a stop string is held until it is clearly not one.
#[derive(Clone, Debug, Default)]
pub struct Releaser {
    raw: Vec<u8>,
    held: String,
    stops: Vec<String>,
}

impl Releaser {
    /// A releaser for these stop strings (empty strings are ignored).
    pub fn new(stops: &[String]) -> Releaser {
        Releaser {
            raw: Vec::new(),
            held: String::new(),
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
        }
    }

    /// Takes one token's bytes; returns the text released and whether a
    /// stop string appeared. With `flush` (the last token), everything held
    /// is released (an incomplete character as U+FFFD).
    pub fn push(&mut self, bytes: &[u8], flush: bool) -> (String, bool) {
        self.raw.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.raw) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_some() => {
                // Invalid bytes, not just an unfinished character: replace.
                let s = String::from_utf8_lossy(&self.raw).into_owned();
                self.raw.clear();
                self.held.push_str(&s);
                0
            }
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            let rest = self.raw.split_off(valid);
            let text = String::from_utf8(std::mem::replace(&mut self.raw, rest))
                .expect("checked UTF-8 prefix");
            self.held.push_str(&text);
        }
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let out = self.held[..at].to_string();
            self.held.clear();
            self.raw.clear();
            return (out, true);
        }
        if flush {
            let mut out = std::mem::take(&mut self.held);
            if !self.raw.is_empty() {
                out.push_str(&String::from_utf8_lossy(&self.raw));
                self.raw.clear();
            }
            return (out, false);
        }
        // Hold back the longest suffix that starts some stop string.
        let mut keep = 0;
        for stop in &self.stops {
            for (i, _) in self.held.char_indices() {
                let tail = &self.held[i..];
                if stop.starts_with(tail) {
                    keep = keep.max(tail.len());
                    break;
                }
            }
        }
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        (out, false)
    }
}

/// The per-sequence state that turns chosen tokens into events.
#[derive(Debug)]
pub struct Step {
    releaser: Releaser,
    max_tokens: u32,
    produced: u32,
}

impl Step {
    /// State for a request.
    pub fn new(request: &LlmRequest) -> Step {
        Step {
            releaser: Releaser::new(&request.stop),
            max_tokens: request.max_tokens,
            produced: 0,
        }
    }

    /// Tokens taken so far (the next one's sampling step).
    pub fn produced(&self) -> u32 {
        self.produced
    }

    /// Takes the next chosen token.
    pub fn next(&mut self, model: &dyn LanguageModel, token: u32) -> TokenEvent {
        self.produced += 1;
        let end = model.is_end(token);
        let last = end || self.produced >= self.max_tokens;
        let bytes = if end { Vec::new() } else { model.piece(token) };
        let (text, stopped) = self.releaser.push(&bytes, last);
        let finish = if stopped || end {
            Some(Finish::Stop)
        } else if last {
            Some(Finish::Length)
        } else {
            None
        };
        TokenEvent {
            token,
            text,
            finish,
            logprobs: None,
        }
    }
}

/// What a teacher-forced check found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    /// The text released with each token.
    pub texts: Vec<String>,
    /// How the answer ends, as derived from the tokens.
    pub finish: Finish,
    /// Why the answer fails, at which token: a token the constraint
    /// forbids, a log-probability off, a wrong end, or the statistical
    /// rule failing (its first token above the hard bound, or else the
    /// first above the tolerance).
    pub mismatch: Option<(usize, String)>,
    /// The smallest tolerance (`rtol`) at which every token passes: how
    /// close the answer came to failing ([`vouch_types::llm::tolerance_needed`]).
    pub tolerance: f64,
    /// How many tokens need more than the tolerance the check used.
    pub beyond: usize,
    /// Each generated token's score ([`vouch_types::llm_rule`]): the
    /// tolerance it needs, at most the rule's tolerance where the check at
    /// that tolerance passes it.
    pub scores: Vec<f64>,
    /// The rule applied.
    pub rule: AuditRule,
    /// What the rule says of the scores.
    pub decision: Decision,
}

/// Re-derives the stream from claimed tokens and checks each against
/// recomputed logits: one forward pass over prompt + answer. When the
/// request asked for log-probabilities, `logprobs` are the claimed ones,
/// checked against the same logits.
pub fn replay(
    model: &dyn LanguageModel,
    request: &LlmRequest,
    tokens: &[u32],
    logprobs: &[TokenLogprobs],
    rule: &AuditRule,
) -> Result<Replay, EngineError> {
    let rtol = rule.tolerance;
    if tokens.is_empty() {
        return Err(EngineError::Run(
            "the transcript has no tokens to check".into(),
        ));
    }
    let prompt = model.tokenize(&request.prompt);
    let mut all = prompt.clone();
    all.extend_from_slice(tokens);
    if all.len() > model.context_length() {
        return Err(EngineError::Input(crate::InputError::ContextLength {
            prompt: prompt.len(),
            max_tokens: tokens.len(),
            context: model.context_length(),
        }));
    }
    let mut mismatch = None;
    let mut tolerance: f64 = 0.0;
    let mut scores = Vec::with_capacity(tokens.len());
    // Why each token above the tolerance fails the strict check.
    let mut why: Vec<(usize, String)> = Vec::new();
    if prompt.is_empty() {
        return Err(EngineError::Run("the prompt is empty".into()));
    }
    // The constraint's mask is replayed over the claimed tokens: each must
    // be allowed, and chosen among the allowed as the seed says.
    let mut constraint = match &request.constraint {
        Some(c) => Some(model.grammar()?.compile(c)?),
        None => None,
    };
    let s = &request.sampling;
    model.score(&all, prompt.len() - 1..all.len() - 1, &mut |p, logits| {
        let step = (p + 1 - prompt.len()) as u64;
        let claimed = all[p + 1];
        let allowed = match constraint.as_mut().map(Constraint::allowed) {
            None => None,
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                mismatch.get_or_insert((step as usize, e));
                constraint = None;
                None
            }
        };
        let needed = match &allowed {
            Some(a) => tolerance_among(logits, a, s, step, claimed),
            None => tolerance_needed(logits, s, step, claimed),
        };
        tolerance = tolerance.max(needed);
        let mut score = needed;
        if needed > rtol {
            let checked = match &allowed {
                Some(a) => check_among(logits, a, s, step, claimed, rtol),
                None => check_token(logits, s, step, claimed, rtol),
            };
            match checked {
                Err(e) => why.push((step as usize, e.0)),
                // The search's bound is within 1e-3 above: the check decides.
                Ok(()) => score = rtol,
            }
        }
        scores.push(score);
        if let Some(n) = request.logprobs {
            let checked = match logprobs.get(step as usize) {
                Some(lp) => lp.check(
                    logits,
                    claimed,
                    n,
                    &|t| model.piece(t),
                    margin(logits, rtol),
                ),
                None => Err("no log-probabilities are claimed for it".into()),
            };
            if let Err(why) = checked {
                mismatch.get_or_insert((step as usize, format!("log-probabilities: {why}")));
            }
        }
        // Past a token the constraint forbids, its mask means nothing.
        if let Some(c) = constraint.as_mut()
            && c.advance(claimed).is_err()
        {
            constraint = None;
        }
    })?;
    let mut step = Step::new(request);
    let mut texts = Vec::with_capacity(tokens.len());
    let mut finish = None;
    for (i, &t) in tokens.iter().enumerate() {
        let ev = step.next(model, t);
        texts.push(ev.text);
        if ev.finish.is_some() {
            finish = ev.finish;
            if i + 1 != tokens.len() && mismatch.is_none() {
                mismatch = Some((
                    i + 1,
                    format!(
                        "the answer should have ended after token {i}, but {} more tokens follow",
                        tokens.len() - i - 1
                    ),
                ));
            }
            break;
        }
    }
    let finish = match finish {
        Some(f) => f,
        None => {
            mismatch.get_or_insert((
                tokens.len(),
                "the answer stops before an end token, a stop string or max_tokens".into(),
            ));
            Finish::Length
        }
    };
    let decision = rule.decide(&scores);
    if !decision.pass {
        let at = decision.hard_at.or(decision.first_exceed).unwrap_or(0);
        let reason = why
            .iter()
            .find(|(i, _)| *i == at)
            .map_or_else(String::new, |(_, w)| w.clone());
        let rule_says = match decision.hard_at {
            Some(_) => format!(
                "it needs tolerance {:.4}, above the hard bound {}",
                scores[at], rule.hard
            ),
            None => format!(
                "{} of {} tokens need more than tolerance {}, and {} fail the rule (honest rate {})",
                decision.exceed,
                decision.tokens,
                rule.tolerance,
                decision.threshold,
                rule.exceed_rate
            ),
        };
        let rule_says = if reason.is_empty() {
            rule_says
        } else {
            format!("{reason}; {rule_says}")
        };
        // A failure the rule finds comes before a later one of another kind.
        if mismatch.as_ref().is_none_or(|(i, _)| *i > at) {
            mismatch = Some((at, rule_says));
        }
    }
    Ok(Replay {
        texts,
        finish,
        mismatch,
        tolerance,
        beyond: decision.exceed,
        scores,
        rule: *rule,
        decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releaser_assembles_utf8_and_holds_stop_prefixes() {
        let mut r = Releaser::new(&["STOP".into()]);
        let e = "é".as_bytes();
        assert_eq!(r.push(&e[..1], false), (String::new(), false));
        assert_eq!(r.push(&e[1..], false), ("é".into(), false));
        assert_eq!(r.push(b"ab ST", false), ("ab ".into(), false));
        assert_eq!(r.push(b"ILL", false), ("STILL".into(), false));
        assert_eq!(r.push(b" x STO", false), (" x ".into(), false));
        assert_eq!(r.push(b"P and more", false), (String::new(), true));
        let mut r = Releaser::new(&[]);
        assert_eq!(r.push(&e[..1], true), ("\u{fffd}".into(), false));
        let mut r = Releaser::new(&["\n\n".into()]);
        assert_eq!(r.push(b"Paris.\n", false), ("Paris.".into(), false));
        assert_eq!(r.push(b"", true), ("\n".into(), false));
    }

    #[test]
    fn templates_render_with_python_methods() {
        let t = "{% for m in messages %}<{{ m.role }}>{{ m.content.strip() }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}{{ eos_token }}";
        let msgs = vec![ChatMessage::text("user", "  hi  ")];
        assert_eq!(
            render_template(t, &msgs, "<s>", "</s>").unwrap(),
            "<user>hi<assistant></s>"
        );
        let bad = "{{ raise_exception('only user messages') }}";
        let e = render_template(bad, &msgs, "", "").unwrap_err().to_string();
        assert!(e.contains("only user messages"), "{e}");
    }
}
