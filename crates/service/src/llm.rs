//! Receipted text generation and embeddings, independent of HTTP.
//!
//! A generation streams [`LlmEvent`]s: one per token (with the text it
//! releases), a signed [`Checkpoint`] of the hash chain every
//! [`CHECKPOINT_EVERY`] tokens, and finally the receipt. The receipt's
//! request digest commits to the [`LlmRequest`] (prompt text, budget, stop
//! strings, sampling and seed), its output digest to the chain over every
//! token and its text, and its trace to one leaf per token.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use vouch_engine::embed::{TextEncoder, pool};
use vouch_engine::llm::{ChatMessage, Job, TokenEvent};
use vouch_engine::{EngineError, LoadedModel};
use vouch_store::ModelRecord;
use vouch_types::llm::{
    CHECKPOINT_EVERY, Chain, Checkpoint, Finish, LlmRequest, MAX_TOP_LOGPROBS, Mode, Sampling,
    TokenLogprobs, Transcript,
};
use vouch_types::merkle::{self, LeafHasher};
use vouch_types::receipt::RECEIPT_VERSION;
use vouch_types::{DType, Digest, ModelFormat, Receipt, ReceiptBody, TraceCommitment};

use crate::error::NodeError;
use crate::service::{Service, check_nonce, now_ms};

/// What the model reads.
#[derive(Clone, Debug)]
pub enum Prompt {
    /// Chat messages, rendered with the model's template.
    Chat(Vec<ChatMessage>),
    /// Raw text.
    Text(String),
}

/// A generation request.
#[derive(Clone, Debug)]
pub struct Generate {
    /// Model name (newest version).
    pub model: String,
    /// The prompt.
    pub prompt: Prompt,
    /// Most tokens to generate; the rest of the context when absent.
    pub max_tokens: Option<u32>,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Sampling and seed.
    pub sampling: Sampling,
    /// Client nonce echoed in the receipt.
    pub nonce: String,
    /// What the answer must match (`LlmRequest::constraint`).
    pub constraint: Option<String>,
    /// For a chat: the tools offered, as a JSON list (`LlmRequest::tools`).
    pub tools: Option<String>,
    /// Log-probabilities with how many alternatives (`LlmRequest::logprobs`).
    pub logprobs: Option<u8>,
}

/// One event of a generation stream.
#[derive(Debug)]
pub enum LlmEvent {
    /// A token and the text it releases.
    Token {
        /// Token id.
        token: u32,
        /// Released text.
        text: String,
        /// The model's log-probabilities, when asked for.
        logprobs: Option<TokenLogprobs>,
    },
    /// A signed checkpoint of the chain so far.
    Checkpoint(Checkpoint),
    /// The end: the signed receipt.
    Done(Box<Finished>),
    /// The generation failed part-way.
    Failed(NodeError),
}

/// A finished generation.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The receipt.
    pub receipt: Receipt,
    /// The canonical request.
    pub request: LlmRequest,
    /// Generated tokens.
    pub tokens: Vec<u32>,
    /// Text per token.
    pub texts: Vec<String>,
    /// How it ended.
    pub finish: Finish,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Per token, the model's log-probabilities, when asked for.
    pub logprobs: Vec<TokenLogprobs>,
}

impl Finished {
    /// What an auditor needs besides the receipt: request, tokens, texts
    /// and how it ended.
    pub fn transcript(&self) -> Transcript {
        Transcript {
            request: self.request.clone(),
            tokens: self.tokens.clone(),
            texts: self.texts.clone(),
            finish_reason: self.finish,
            logprobs: self.logprobs.clone(),
        }
    }
}

/// A generation about to run: what the caller needs before the first token.
#[derive(Debug)]
pub struct Started {
    /// The `model:` id its receipt will name.
    pub model_id: Digest,
    /// The canonical request.
    pub request: LlmRequest,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Events until [`LlmEvent::Done`] or [`LlmEvent::Failed`].
    pub events: mpsc::UnboundedReceiver<LlmEvent>,
    /// The nodes the request went through (peer ids): the gateway, then
    /// the executor when it is another. The network layer fills it in; a
    /// service on its own leaves it empty.
    pub route: Vec<String>,
}

impl Started {
    /// Reads the events to the end.
    pub async fn finish(mut self) -> Result<Finished, NodeError> {
        while let Some(ev) = self.events.recv().await {
            match ev {
                LlmEvent::Done(f) => return Ok(*f),
                LlmEvent::Failed(e) => return Err(e),
                _ => {}
            }
        }
        Err(NodeError::Internal(
            "the generation ended without a receipt".into(),
        ))
    }
}

/// What a receipt for a generation states besides its tokens.
pub(crate) struct Receipted {
    pub model_id: Digest,
    pub request: LlmRequest,
    pub engine: vouch_types::EngineInfo,
    pub determinism: vouch_types::Determinism,
    /// Metrics label.
    pub label: String,
    pub nonce: String,
    pub prompt_tokens: usize,
    /// Gossip the receipt for sampled audits (not for a quorum member's
    /// answer: the quorum cross-checks it already).
    pub audited: bool,
}

/// Embeddings with their receipts: the texts run as a few batches of
/// similar length ([`vouch_engine::embed::runs`]), each with its own.
#[derive(Clone, Debug)]
pub struct Embeddings {
    /// One unit vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read.
    pub tokens: usize,
    /// One receipt per run of the encoder: request = the run's token
    /// tensors, output = the encoder's output for them.
    pub receipts: Vec<Receipt>,
    /// Per receipt, the inputs (indices) its batch's rows hold, in row
    /// order.
    pub runs: Vec<Vec<usize>>,
}

/// The outcome of [`Service::check_llm`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LlmCheck {
    /// Whether every check passed.
    pub ok: bool,
    /// Tokens checked.
    pub tokens: usize,
    /// The first generated token that failed, when one did.
    #[serde(default)]
    pub failed_at: Option<u64>,
    /// What failed.
    pub reason: Option<String>,
    /// Time the teacher-forced pass took.
    pub seconds: f64,
    /// When this node re-executed the answer: the smallest tolerance
    /// (`rtol`) at which every token would pass, the answer's closest call
    /// (0: every token is exactly what this node's logits pick; absent
    /// when some token fails at any `rtol` up to 0.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// When this node re-executed the answer: how many tokens fail its
    /// tolerance (the statistical rule may pass a few).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond: Option<usize>,
    /// When this node re-executed the answer: the count of tokens beyond
    /// the tolerance at which the statistical rule fails an answer this
    /// long (1: the strict check), and the hard bound no token may pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleOutcome>,
    /// The operator whose node ran the check, when it was another node's
    /// (this node does not serve the model): its signed verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_by: Option<vouch_types::dispute::TokenVerdict>,
}

/// The statistical rule as one check applied it (`vouch_types::llm_rule`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RuleOutcome {
    /// The per-token tolerance.
    pub tolerance: f64,
    /// The honest per-token exceedance rate it allows for.
    pub exceed_rate: f64,
    /// The hard bound.
    pub hard: f64,
    /// Tokens beyond the tolerance that fail an answer this long.
    pub threshold: usize,
}

impl LlmCheck {
    fn failed(tokens: usize, failed_at: Option<usize>, reason: String) -> LlmCheck {
        LlmCheck {
            ok: false,
            tokens,
            failed_at: failed_at.map(|i| i as u64),
            reason: Some(reason),
            seconds: 0.0,
            checked_by: None,
            tolerance: None,
            beyond: None,
            rule: None,
        }
    }
}

/// The trace leaf of generated token `i`.
pub fn token_leaf(i: u64, token: u32) -> Digest {
    let mut l = LeafHasher::new(i, "token", 1);
    l.tensor(
        DType::I32,
        &[1],
        &merkle::tensor_data(&(token as i32).to_le_bytes()),
    );
    l.finish()
}

fn language(model: &Arc<dyn LoadedModel>, name: &str) -> Result<(), NodeError> {
    if model.language().is_none() {
        return Err(NodeError::BadRequest(format!(
            "model `{name}` does not generate text; use /v1/infer/{name} (or /v1/embeddings for an embedding model)"
        )));
    }
    Ok(())
}

/// The digest a chat request binds for the model's chat template: its
/// text's digest as a stored blob (`LlmRequest::template`).
fn template_digest(lm: &dyn vouch_engine::llm::LanguageModel) -> Option<Digest> {
    lm.chat_template()
        .map(|t| vouch_types::blob::BlobHasher::table_of(t.as_bytes()).root())
}

impl Generate {
    /// Checks what can be checked without the model: the nonce's length
    /// and the sampling parameters.
    pub fn check(&self) -> Result<(), NodeError> {
        check_nonce(&self.nonce)?;
        if let Some(n) = self.logprobs.filter(|&n| n > MAX_TOP_LOGPROBS) {
            return Err(NodeError::BadRequest(format!(
                "{n} alternatives asked for per token; send at most {MAX_TOP_LOGPROBS}"
            )));
        }
        self.sampling.validate().map_err(NodeError::BadRequest)
    }
}

/// The checks of a generated answer that need no model: the transcript
/// against the receipt, and whether there is a model to re-execute at all.
/// `Some` when the answer fails one of them (nothing else need run).
pub fn check_llm_offline(receipt: &Receipt, transcript: &Transcript) -> Option<LlmCheck> {
    if let Err(reason) = transcript.verify(receipt) {
        return Some(LlmCheck::failed(0, None, reason));
    }
    if receipt.body.engine.is_unattested() {
        return Some(LlmCheck::failed(
            0,
            None,
            format!(
                "the answer came from an external engine ({}): the receipt binds the transcript to the operator, but no model is attested, so there is nothing to re-execute",
                receipt.body.engine.version
            ),
        ));
    }
    None
}

impl Service {
    /// Starts a receipted generation.
    pub async fn generate(self: &Arc<Self>, g: Generate) -> Result<Started, NodeError> {
        g.check()?;
        if let Some(ext) = self.config.externals.iter().find(|e| e.name == g.model) {
            return self.generate_external(&ext.clone(), g).await;
        }
        let record = self.find_model(&g.model, None)?;
        self.generate_with(record, g, true).await
    }

    /// The model that generates in place of `model`: itself, unless this
    /// node runs the `Substitute` fault with a substitute file.
    async fn substitute_for(
        &self,
        model: Arc<dyn LoadedModel>,
    ) -> Result<Arc<dyn LoadedModel>, NodeError> {
        let substitutes =
            self.config.fault.and_then(|f| f.llm) == Some(vouch_engine::llm::LlmFault::Substitute);
        let Some(path) = self.config.llm_substitute.clone().filter(|_| substitutes) else {
            return Ok(model);
        };
        let engine = self.engines.get(ModelFormat::Gguf);
        self.substitute
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    engine.load_path(&path, &vouch_types::Schema::default())
                })
                .await
                .map_err(|e| NodeError::Internal(e.to_string()))?
                .map_err(|e| NodeError::Internal(format!("loading the substitute model: {e}")))
            })
            .await
            .cloned()
    }

    /// Starts a receipted generation with the model `record` (whatever
    /// `g.model` names); `audited`: offer the receipt to sampled audits.
    pub async fn generate_with(
        self: &Arc<Self>,
        record: ModelRecord,
        g: Generate,
        audited: bool,
    ) -> Result<Started, NodeError> {
        if record.signed.manifest.format != ModelFormat::Gguf {
            return Err(NodeError::BadRequest(format!(
                "model `{}` is an ONNX model and does not generate text; use /v1/infer/{} (or /v1/embeddings for an embedding model)",
                g.model, g.model
            )));
        }
        let model = self.loaded(&record).await?;
        language(&model, &g.model)?;
        self.receipts.check()?;
        let (prompt_text, mode, prompt, (messages, template)) = {
            let lm = model.language().expect("checked");
            let (text, mode, bound) = match &g.prompt {
                Prompt::Chat(messages) => (
                    lm.render_chat(messages, g.tools.as_deref())?,
                    Mode::Chat,
                    (messages.clone(), template_digest(lm)),
                ),
                Prompt::Text(_) if g.tools.is_some() => {
                    return Err(NodeError::BadRequest(
                        "tools are offered in a chat: use /v1/chat/completions".into(),
                    ));
                }
                Prompt::Text(t) => (t.clone(), Mode::Completion, (Vec::new(), None)),
            };
            let tokens = lm.tokenize(&text);
            (text, mode, tokens, bound)
        };
        // A faulty node may generate with another model than the one it
        // signs for (`--fault llm-substitute=FILE`).
        let generating = self.substitute_for(model.clone()).await?;
        let lm = generating.language().ok_or_else(|| {
            NodeError::Internal("the substitute model does not generate text".into())
        })?;
        let context = lm.context_length();
        if prompt.is_empty() {
            return Err(NodeError::InvalidInput(
                "the prompt is empty: send some text".into(),
            ));
        }
        let max_tokens = match g.max_tokens {
            Some(0) => {
                return Err(NodeError::InvalidInput(
                    "max_tokens is 0: ask for at least 1 token".into(),
                ));
            }
            Some(m) => m,
            None if prompt.len() < context => (context - prompt.len()) as u32,
            None => u32::MAX,
        };
        if prompt.len() + max_tokens as usize > context {
            return Err(EngineError::Input(vouch_engine::InputError::ContextLength {
                prompt: prompt.len(),
                max_tokens: if g.max_tokens.is_some() {
                    max_tokens as usize
                } else {
                    1
                },
                context,
            })
            .into());
        }
        // Compiling a schema is real work (and the first one indexes the
        // vocabulary): on the worker pool.
        let constraint = match g.constraint.clone() {
            Some(c) => {
                let model = model.clone();
                Some(
                    self.compute(move || {
                        let lm = model.language().expect("checked");
                        Ok(lm.grammar()?.compile(&c)?)
                    })
                    .await?,
                )
            }
            None => None,
        };
        let request = LlmRequest {
            mode,
            prompt: prompt_text,
            max_tokens,
            stop: g.stop.clone(),
            sampling: g.sampling.clone(),
            messages,
            template,
            constraint: g.constraint.clone(),
            tools: g.tools.clone(),
            logprobs: g.logprobs,
        };
        let (etx, erx) = mpsc::unbounded_channel::<Result<TokenEvent, EngineError>>();
        let prompt_tokens = prompt.len();
        // The client's end of the events: the engine asks whether it is
        // still there between steps.
        let (tx, events) = mpsc::unbounded_channel();
        let client = tx.clone();
        lm.generate(Job {
            prompt,
            request: request.clone(),
            sink: Box::new(move |ev| etx.send(ev).is_ok()),
            fault: self.config.fault.map(vouch_engine::Fault::language),
            constraint,
            alive: Box::new(move || !client.is_closed()),
        })?;

        let label = record.label();
        self.receipted(
            Receipted {
                model_id: record.id(),
                request: request.clone(),
                engine: self.llm_engine_info(),
                determinism: model.determinism(),
                label,
                nonce: g.nonce,
                prompt_tokens,
                audited,
            },
            erx,
            tx,
        );
        Ok(Started {
            model_id: record.id(),
            request,
            prompt_tokens,
            events,
            route: Vec::new(),
        })
    }

    /// Turns an engine's token events into receipted [`LlmEvent`]s: the
    /// hash chain, a signed checkpoint every [`CHECKPOINT_EVERY`] tokens and
    /// at the end the receipt, logged.
    pub(crate) fn receipted(
        self: &Arc<Self>,
        r: Receipted,
        mut erx: mpsc::UnboundedReceiver<Result<TokenEvent, EngineError>>,
        tx: mpsc::UnboundedSender<LlmEvent>,
    ) {
        let Receipted {
            model_id,
            request: req,
            engine,
            determinism,
            label,
            nonce,
            prompt_tokens,
            audited,
        } = r;
        let request_digest = req.digest();
        let key = self.key.clone();
        let log = self.receipts.clone();
        let price = self.config.price;
        let node = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut chain = Chain::start(&request_digest);
            let (mut tokens, mut texts, mut leaves) = (Vec::new(), Vec::new(), Vec::new());
            let mut logprobs = Vec::new();
            loop {
                // A client that goes away drops this task's receiver of
                // engine events, which the scheduler sees between steps,
                // queued or mid-prompt.
                let ev = tokio::select! {
                    ev = erx.recv() => ev,
                    () = tx.closed() => return,
                };
                let Some(ev) = ev else { break };
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        let _ = tx.send(LlmEvent::Failed(e.into()));
                        node.metrics()
                            .inference(&label, false, started.elapsed().as_secs_f64());
                        return;
                    }
                };
                chain.push_with(ev.token, &ev.text, ev.logprobs.as_ref());
                logprobs.extend(ev.logprobs.clone());
                leaves.push(token_leaf(tokens.len() as u64, ev.token));
                tokens.push(ev.token);
                texts.push(ev.text.clone());
                if tx
                    .send(LlmEvent::Token {
                        token: ev.token,
                        text: ev.text,
                        logprobs: ev.logprobs,
                    })
                    .is_err()
                {
                    return; // the client went away; the engine stops at its next token
                }
                if chain.len().is_multiple_of(CHECKPOINT_EVERY) && ev.finish.is_none() {
                    let ck = Checkpoint::sign(&key, &model_id, &request_digest, &chain);
                    let _ = tx.send(LlmEvent::Checkpoint(ck));
                }
                let Some(finish) = ev.finish else { continue };
                let body = ReceiptBody {
                    version: RECEIPT_VERSION,
                    model: model_id,
                    request: request_digest,
                    output: chain.output(finish),
                    trace: TraceCommitment {
                        root: merkle::root(&leaves),
                        len: leaves.len() as u64,
                    },
                    engine,
                    determinism,
                    seed: Some(req.sampling.seed),
                    node: key.public(),
                    nonce,
                    timestamp_ms: now_ms(),
                    price,
                };
                let receipt = body.sign(&key);
                if let Err(e) = log.append(receipt.clone(), leaves) {
                    let _ = tx.send(LlmEvent::Failed(e));
                    return;
                }
                let finished = Finished {
                    receipt,
                    request: req,
                    tokens,
                    texts,
                    finish,
                    prompt_tokens,
                    logprobs,
                };
                if audited && let Some(hooks) = node.hooks() {
                    hooks
                        .generated(&finished.receipt, finished.transcript())
                        .await;
                }
                node.metrics()
                    .inference(&label, true, started.elapsed().as_secs_f64());
                let _ = tx.send(LlmEvent::Done(Box::new(finished)));
                return;
            }
            let _ = tx.send(LlmEvent::Failed(NodeError::InferenceFailed(
                "the model's scheduler stopped mid-answer".into(),
            )));
        });
    }

    /// The loaded model behind a name (newest version).
    pub async fn loaded_model(&self, name: &str) -> Result<Arc<dyn LoadedModel>, NodeError> {
        let record = self.find_model(name, None)?;
        self.loaded(&record).await
    }

    /// Why a chat request's prompt is not what model `model`'s template
    /// makes of its messages, if it is not: a provider that rewrote the
    /// client's instructions signs either other messages (the client sees
    /// them) or a prompt the messages do not render to (this check).
    async fn prompt_mismatch(
        &self,
        model: &Digest,
        request: &LlmRequest,
    ) -> Result<Option<String>, NodeError> {
        if request.messages.is_empty() && request.template.is_none() && request.tools.is_none() {
            return Ok(None);
        }
        let loaded = self.loaded_by_id(model).await?;
        language(&loaded, &model.to_string())?;
        let lm = loaded.language().expect("checked");
        let template = template_digest(lm);
        if request.template != template {
            return Ok(Some(format!(
                "the request names chat template {}, but model {model}'s is {}",
                request.template.map_or("none".into(), |d| d.to_string()),
                template.map_or("none".into(), |d| d.to_string())
            )));
        }
        match lm.render_chat(&request.messages, request.tools.as_deref()) {
            Ok(p) if p == request.prompt => Ok(None),
            Ok(_) => Ok(Some(
                "the prompt is not the model's chat template applied to the messages the request names: the conversation was rewritten".into(),
            )),
            Err(e) => Ok(Some(format!("the messages do not render: {e}"))),
        }
    }

    /// What LLM receipts state of the engine: the GGUF engine's name and
    /// version, with the accelerator it runs on; under `--fault
    /// llm-claim=NAME`, an accelerator it does not run on.
    pub(crate) fn llm_engine_info(&self) -> vouch_types::EngineInfo {
        let mut info = self.engines.get(ModelFormat::Gguf).info();
        if let Some(claim) = &self.config.llm_claim {
            let version = info
                .version
                .split_once(" +")
                .map_or(info.version.as_str(), |(v, _)| v);
            info.version = format!("{version} +{claim}");
        }
        info
    }

    /// Checks a transcript of `model` by teacher forcing on this node.
    pub async fn audit_transcript(
        &self,
        model: &Digest,
        class: vouch_types::llm_rule::HardwareClass,
        request: LlmRequest,
        (tokens, logprobs): (Vec<u32>, Vec<TokenLogprobs>),
    ) -> Result<vouch_engine::llm::Replay, NodeError> {
        let loaded = self.loaded_by_id(model).await?;
        language(&loaded, &model.to_string())?;
        let rtol = match (self.llm_tolerance(), loaded.determinism()) {
            (Some(network), _) => network,
            (None, vouch_types::Determinism::Tolerant { rtol }) => rtol,
            (None, vouch_types::Determinism::Exact) => 0.0,
        };
        let rule = self.llm_rule(rtol, class);
        self.compute(move || {
            let lm = loaded.language().expect("checked");
            Ok(vouch_engine::llm::replay(
                lm, &request, &tokens, &logprobs, &rule,
            )?)
        })
        .await
    }

    /// Checks a generated answer end to end: the receipt and transcript
    /// offline, then every token by teacher forcing with the model the
    /// receipt names, on this node (the network layer's `check_llm` asks
    /// another operator when this node lacks the model).
    pub async fn check_llm(
        &self,
        receipt: &Receipt,
        transcript: &Transcript,
    ) -> Result<LlmCheck, NodeError> {
        if let Some(failed) = check_llm_offline(receipt, transcript) {
            return Ok(failed);
        }
        if let Some(why) = self
            .prompt_mismatch(&receipt.body.model, &transcript.request)
            .await?
        {
            return Ok(LlmCheck::failed(0, None, why));
        }
        let started = Instant::now();
        let replay = self
            .audit_transcript(
                &receipt.body.model,
                vouch_types::llm_rule::HardwareClass::of(&receipt.body.engine),
                transcript.request.clone(),
                (transcript.tokens.clone(), transcript.logprobs.clone()),
            )
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let n = transcript.tokens.len();
        let tolerance = replay.tolerance.is_finite().then_some(replay.tolerance);
        let beyond = Some(replay.beyond);
        let rule = Some(RuleOutcome {
            tolerance: replay.rule.tolerance,
            exceed_rate: replay.rule.exceed_rate,
            hard: replay.rule.hard,
            threshold: replay.decision.threshold,
        });
        if let Some((step, why)) = replay.mismatch {
            return Ok(LlmCheck {
                tolerance,
                beyond,
                rule,
                seconds,
                ..LlmCheck::failed(n, Some(step), format!("token {step}: {why}"))
            });
        }
        if let Some(i) = (0..n).find(|&i| replay.texts.get(i) != transcript.texts.get(i)) {
            return Ok(LlmCheck::failed(
                n,
                Some(i),
                format!(
                    "token {i} releases {:?}, not the {:?} claimed",
                    replay.texts.get(i),
                    transcript.texts[i]
                ),
            ));
        }
        if replay.finish != transcript.finish_reason {
            return Ok(LlmCheck::failed(
                n,
                Some(n.saturating_sub(1)),
                format!(
                    "the tokens end with finish_reason `{}`, not the `{}` claimed",
                    replay.finish.as_str(),
                    transcript.finish_reason.as_str()
                ),
            ));
        }
        Ok(LlmCheck {
            ok: true,
            tokens: n,
            failed_at: None,
            reason: None,
            seconds,
            checked_by: None,
            tolerance,
            beyond,
            rule,
        })
    }

    /// Embeds texts with an ONNX encoder that was pushed with a tokenizer.
    pub async fn embed(
        &self,
        name: &str,
        texts: Vec<String>,
        nonce: String,
    ) -> Result<Embeddings, NodeError> {
        if texts.is_empty() {
            return Err(NodeError::InvalidInput(
                "`input` is empty: send a string or a list of strings".into(),
            ));
        }
        let (max_inputs, max_tokens) = (
            self.config.max_embedding_inputs,
            self.config.max_embedding_tokens,
        );
        if texts.len() > max_inputs {
            return Err(NodeError::TooLarge(format!(
                "{} texts in one request; this node embeds at most {max_inputs} at once (--max-embedding-inputs): split the request",
                texts.len()
            )));
        }
        let record = self.find_model(name, None)?;
        let encoder = self.text_encoder(&record).await?;
        // Tokenizing and grouping texts is real work: on the worker pool,
        // never on the async runtime that answers /healthz.
        let n = texts.len();
        let (batches, texts) = self
            .compute(move || Ok((encoder.encode(&texts)?, texts)))
            .await?;
        let tokens: usize = batches.iter().map(|b| b.tokens).sum();
        if tokens > max_tokens {
            return Err(NodeError::TooLarge(format!(
                "the {n} texts hold {tokens} tokens; this node embeds at most {max_tokens} per request (--max-embedding-tokens): split the request"
            )));
        }
        // The runs go to the worker pool at once: one request's batches
        // spread over the cores.
        let answers = futures_util::future::try_join_all(
            batches
                .iter()
                .map(|b| self.run_record(record.clone(), b.inputs.clone(), nonce.clone())),
        )
        .await?;
        let mut vectors = vec![Vec::new(); texts.len()];
        let (mut receipts, mut runs, mut tokens) = (Vec::new(), Vec::new(), 0);
        for (batch, answer) in batches.into_iter().zip(answers) {
            let output = answer
                .outputs
                .iter()
                .next()
                .map(|(_, t)| t)
                .ok_or_else(|| {
                    NodeError::InferenceFailed("the encoder returned no output".into())
                })?;
            for (&i, v) in batch.rows.iter().zip(pool(output, &batch.mask)?) {
                vectors[i] = v;
            }
            tokens += batch.tokens;
            receipts.push(answer.receipt);
            runs.push(batch.rows);
        }
        Ok(Embeddings {
            vectors,
            tokens,
            receipts,
            runs,
        })
    }

    async fn text_encoder(&self, record: &ModelRecord) -> Result<Arc<TextEncoder>, NodeError> {
        let id = record.id();
        if let Some(t) = self.encoders.lock().expect("encoders").get(&id) {
            return Ok(t.clone());
        }
        let name = &record.signed.manifest.name;
        let file = record.signed.manifest.file("tokenizer").ok_or_else(|| {
            NodeError::BadRequest(format!(
                "model `{name}` has no tokenizer, so it cannot embed text: push it with `vouch model push FILE --name {name} --tokenizer tokenizer.json`"
            ))
        })?;
        let bytes = self.blob(file.digest).await?;
        let enc = Arc::new(TextEncoder::from_json(&bytes)?);
        self.encoders
            .lock()
            .expect("encoders")
            .insert(id, enc.clone());
        Ok(enc)
    }
}
