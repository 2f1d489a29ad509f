//! Pooled LLM audits across nodes (`vouch_types::llm_pool`,
//! `docs/llm-audit.md`, Pooling): one executor's answers stating an
//! accelerator, within one window, judged together.
//!
//! The auditor asks the executor for its answers in scope
//! ([`Request::PoolAnswers`], naming the receipts it heard of, so that an
//! executor that hides one is caught withholding), counts the tokens beyond
//! the tolerance over the pool by teacher forcing, and when the count fails
//! the rule asks a referee drawn by the pool's key to count again
//! ([`Request::RefereePool`]). The referee asks the executor for its
//! answers itself and counts the pool they complete, so an auditor cannot
//! frame an executor by leaving out its good answers. The
//! [`PoolDispute`] is gossiped, counted and filed on the ledger like the
//! other disputes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use vouch_p2p::{Frame, Peer, Request, Topic, peer_id_of};
use vouch_service::error::NodeError;
use vouch_types::dispute::{DISPUTE_VERSION, Party, Pool, REFEREE_DRAW, referee_draw};
use vouch_types::llm_pool::{Answer, PoolDispute, PoolRule, PoolScope, PoolVerdict};
use vouch_types::llm_rule::HardwareClass;
use vouch_types::{Digest, PublicKey, Receipt};

use crate::llm_net::json;
use crate::node::Node;
use crate::state::{Network, ask};

/// What a pooled audit found.
#[derive(Clone, Debug)]
pub enum PoolOutcome {
    /// The pool passes the rule.
    Passed {
        /// Answers counted.
        answers: usize,
        /// Their generated tokens.
        tokens: u64,
        /// Tokens beyond the tolerance.
        exceed: u64,
        /// The count that would have failed the pool.
        threshold: u64,
    },
    /// The pool failed the rule here; the referee's count settled whom.
    Disputed(Box<PoolDispute>),
    /// No answer in scope.
    Empty,
    /// The executor did not hand over its answers, or hid some this node
    /// heard of: a lost audit, counted against it.
    Withheld(String),
    /// The pool failed here, but no referee counted it (why).
    Unresolved(String),
}

/// What an executor is asked for: its answers in `scope`, for `auditor`
/// (the asker, or the auditor whose referee asks), among them every one of
/// `known` in scope.
#[derive(Serialize, Deserialize)]
struct PoolAsk {
    scope: PoolScope,
    auditor: PublicKey,
    known: Vec<Digest>,
}

/// What a referee is asked to count: the auditor's pool and its count.
#[derive(Serialize, Deserialize)]
struct PoolAccusation {
    scope: PoolScope,
    answers: Vec<Answer>,
    verdict: PoolVerdict,
}

/// A referee's answer: the pool it counted and its count.
#[derive(Serialize, Deserialize)]
struct PoolCount {
    answers: Vec<Answer>,
    verdict: PoolVerdict,
}

/// The receipts of `known` that `answers` (the executor's, selected)
/// leave out though they belong in the pool: not given, and within the
/// token cap after the given answers that rank before them (a generated
/// answer's trace has a leaf per token).
fn hidden(scope: &PoolScope, answers: &[Answer], known: &[Receipt]) -> Vec<Digest> {
    let given: BTreeSet<Digest> = answers.iter().map(|a| a.receipt.id).collect();
    let ranked: Vec<(Digest, u64)> = answers
        .iter()
        .map(|a| (scope.rank(&a.receipt.id), a.transcript.tokens.len() as u64))
        .collect();
    known
        .iter()
        .filter(|r| !given.contains(&r.id))
        .filter(|r| {
            let rank = scope.rank(&r.id);
            let before: u64 = ranked
                .iter()
                .filter(|(other, _)| other.as_bytes() < rank.as_bytes())
                .map(|(_, tokens)| tokens)
                .sum();
            before + r.body.trace.len <= vouch_types::llm_rule::MAX_RULE_TOKENS as u64
        })
        .map(|r| r.id)
        .collect()
}

fn ids(answers: &[Answer]) -> Vec<Digest> {
    answers.iter().map(|a| a.receipt.id).collect()
}

impl Node {
    /// The scope of the pooled audit of `executor`'s answers of `model`
    /// stamped in `[start_ms, end_ms)`: on a ledger, ranked by the beacon
    /// of the first block `beacon_delay_ms` after the window (waited for),
    /// and the window must be one of the ledger's (`llm_pool_window_ms`);
    /// without one, by zeros.
    pub async fn pool_scope(
        &self,
        executor: PublicKey,
        model: Digest,
        (start_ms, end_ms): (u64, u64),
    ) -> Result<PoolScope, NodeError> {
        let mut scope = PoolScope {
            executor,
            model,
            start_ms,
            end_ms,
            beacon: [0; 32],
        };
        if let Some(chain) = self.chain.get() {
            let window = chain.read(|l| l.params().llm_pool_window_ms);
            if window == 0 || start_ms % window != 0 || end_ms != start_ms.saturating_add(window) {
                return Err(NodeError::BadRequest(format!(
                    "[{start_ms}, {end_ms}) is not one of the ledger's pool windows: they are {window} ms long and start at multiples of it"
                )));
            }
            // The draw pool waits for the beacon block; the beacon is its.
            self.await_draw_pool_at(&executor, end_ms, &scope.key())
                .await?;
            scope.beacon = chain
                .read(|l| l.beacon_after(end_ms))
                .map_err(|e| NodeError::Unavailable(format!("pool {}: {e}", scope.key())))?;
        }
        Ok(scope)
    }

    /// Audits the pool `scope` names (see [`Node::pool_scope`]): asks the
    /// executor for its answers in scope, counts their tokens beyond the
    /// tolerance of the accelerator rule, and when the count fails the
    /// rule has a referee count the pool again; publishes the dispute and
    /// records the verdict. This node must serve the model and be one of
    /// the pool's drawn auditors.
    pub async fn audit_pool(&self, scope: PoolScope) -> Result<PoolOutcome, NodeError> {
        let network = self.network()?;
        let key = scope.key();
        let executor = peer_id_of(&scope.executor);
        let pool = self
            .await_draw_pool_at(&scope.executor, scope.end_ms, &key)
            .await?;
        if !self
            .drawn_auditors_of(&key, &scope.executor, &scope.model, &pool)
            .contains(&self.public_key())
        {
            return Err(NodeError::Forbidden(format!(
                "this node is not among the auditors pool {key}'s draw picks: its executor hands its answers to those only"
            )));
        }
        let known = self.heard_in(network, &scope);
        let asked = PoolAsk {
            scope,
            auditor: self.public_key(),
            known: known.iter().map(|r| r.id).collect(),
        };
        let answers = match self.pool_answers(network, &asked).await {
            Ok(a) => a,
            Err(e) => return Ok(self.pool_withheld(network, &scope, &e.to_string())),
        };
        let hidden = hidden(&scope, &answers, &known);
        if let Some(first) = hidden.first() {
            let why = format!(
                "{executor} left out {} of its answers in pool {key} that this node heard of and that rank within the pool (first: {first})",
                hidden.len(),
            );
            return Ok(self.pool_withheld(network, &scope, &why));
        }
        if answers.is_empty() {
            return Ok(PoolOutcome::Empty);
        }
        let (tokens, exceed, rule) = self.count_pool(&answers).await?;
        let threshold = rule.threshold(tokens);
        if exceed < threshold {
            network.record(executor, |r| r.audits_passed += 1);
            tracing::debug!(%executor, pool = %key, tokens, exceed, threshold, "pooled LLM audit passed");
            return Ok(PoolOutcome::Passed {
                answers: answers.len(),
                tokens,
                exceed,
                threshold,
            });
        }
        tracing::warn!(%executor, pool = %key, tokens, exceed, threshold, "pooled LLM audit failed; asking a referee");
        let accused = ids(&answers);
        let auditor = PoolVerdict::sign(self.key(), scope.digest(&accused), tokens, exceed, rule);
        let accusation = json(&PoolAccusation {
            scope,
            answers,
            verdict: auditor.clone(),
        })?;
        let counted = self
            .ask_drawn_referees(
                network,
                (&key, &scope.executor),
                &pool,
                || Frame {
                    head: Request::RefereePool { pool: key },
                    body: accusation.clone(),
                },
                |peer, c: &PoolCount| {
                    peer_id_of(&c.verdict.signer) == peer
                        && c.verdict.verifies()
                        && c.verdict.pool == scope.digest(&ids(&c.answers))
                },
            )
            .await;
        let counted = match counted {
            Ok(c) => c,
            Err(e) => return Ok(PoolOutcome::Unresolved(e.to_string())),
        };
        let faulty = if counted.verdict.fails() {
            Party::Executor
        } else {
            Party::Auditor
        };
        let dispute = PoolDispute {
            version: DISPUTE_VERSION,
            scope,
            accused,
            auditor,
            answers: counted.answers,
            referee: counted.verdict,
            faulty,
        };
        dispute.check().map_err(|e| {
            NodeError::Internal(format!(
                "a pooled dispute this node built does not check: {e}"
            ))
        })?;
        self.record_pool_dispute(network, &dispute, faulty, "referee");
        let record = json(&dispute)?;
        let _ = network.p2p.publish(Topic::Disputes, record.clone()).await;
        tracing::warn!(%executor, ?faulty, pool = %key, "pooled LLM dispute settled by referee");
        self.dispute_on_ledger(&key, record).await;
        Ok(PoolOutcome::Disputed(Box::new(dispute)))
    }

    /// Asks the executor for its answers in the asked scope and keeps
    /// those in scope, the pool's selection of them.
    async fn pool_answers(
        &self,
        network: &Network,
        asked: &PoolAsk,
    ) -> Result<Vec<Answer>, NodeError> {
        let body = ask(
            network,
            peer_id_of(&asked.scope.executor),
            Frame {
                head: Request::PoolAnswers {
                    pool: asked.scope.key(),
                },
                body: json(asked)?,
            },
        )
        .await?;
        let answers: Vec<Answer> = serde_json::from_slice(&body).map_err(|_| {
            NodeError::Unavailable("the executor's answers do not read as JSON answers".into())
        })?;
        Ok(asked.scope.select(answers))
    }

    /// Counts a lost pooled audit against its executor and keeps the
    /// evidence.
    fn pool_withheld(&self, network: &Network, scope: &PoolScope, why: &str) -> PoolOutcome {
        let executor = peer_id_of(&scope.executor);
        tracing::warn!(%executor, pool = %scope.key(), why, "an executor withheld its pooled answers");
        self.keep_evidence(serde_json::json!({
            "kind": "withheld",
            "pool": scope,
            "what": "pooled answers",
            "error": why,
        }));
        network.record(executor, |r| r.withheld += 1);
        PoolOutcome::Withheld(format!("{executor} withheld its pooled answers: {why}"))
    }

    /// Counts, on this node, the tokens of `answers` beyond the tolerance of
    /// the accelerator rule: (tokens, beyond, the rule). An answer whose
    /// tokens cannot be scored (its prompt is not what its messages render,
    /// its texts are not the tokens') counts every token.
    async fn count_pool(&self, answers: &[Answer]) -> Result<(u64, u64, PoolRule), NodeError> {
        let model = answers
            .first()
            .map(|a| a.receipt.body.model)
            .ok_or_else(|| NodeError::Internal("an empty pool has no count".into()))?;
        if !matches!(self.store().model_by_id(&model), Ok(Some(_))) {
            return Err(NodeError::Unavailable(format!(
                "this node does not serve model {model}: it cannot count a pool of its answers"
            )));
        }
        let mut rule = None;
        let (mut tokens, mut exceed) = (0u64, 0u64);
        for a in answers {
            let check = self.service().check_llm(&a.receipt, &a.transcript).await?;
            let n = a.transcript.tokens.len() as u64;
            tokens += n;
            exceed += check.beyond.map_or(n, |b| b as u64);
            if let Some(r) = check.rule {
                rule.get_or_insert(PoolRule::rates(r.tolerance, r.exceed_rate));
            }
        }
        let rule = rule.ok_or_else(|| {
            NodeError::Unavailable(format!(
                "no answer of the pool could be scored on this node's copy of model {model}"
            ))
        })?;
        Ok((tokens, exceed, rule))
    }

    /// The receipts in `scope` this node heard on the gossip topic.
    fn heard_in(&self, network: &Network, scope: &PoolScope) -> Vec<Receipt> {
        let heard = network
            .pool_heard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live(self.config().retention);
        heard
            .into_iter()
            .filter(|(_, r)| {
                r.body.node == scope.executor
                    && r.body.model == scope.model
                    && (scope.start_ms..scope.end_ms).contains(&r.body.timestamp_ms)
            })
            .map(|(_, r)| (*r).clone())
            .collect()
    }

    /// Keeps a receipt heard on the gossip topic for pooled audits when it
    /// is another executor's generated answer stating an accelerator, of a
    /// model this node serves.
    pub(crate) fn hear_for_pool(&self, network: &Network, receipt: &Receipt) {
        if receipt.body.seed.is_none()
            || receipt.body.node == self.public_key()
            || HardwareClass::of(&receipt.body.engine) != HardwareClass::Accelerator
            || !matches!(self.store().model_by_id(&receipt.body.model), Ok(Some(_)))
        {
            return;
        }
        network
            .pool_heard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(receipt.id, receipt.clone(), 1_024, self.config().retention);
    }

    /// Whether `peer` may have this node's answers in a pool of `scope` on
    /// behalf of `auditor`: `auditor` is among the pool's drawn auditors
    /// and `peer` is it or one of its drawn referees, or `peer` sits on the
    /// panel of an appeal of a conviction on the pool.
    async fn hand_over_pool(
        &self,
        peer: Peer,
        scope: &PoolScope,
        auditor: &PublicKey,
    ) -> Result<(), NodeError> {
        let key = scope.key();
        if self.on_panel(peer, &key) {
            return Ok(());
        }
        let pool: Pool = self
            .await_draw_pool_at(&scope.executor, scope.end_ms, &key)
            .await?;
        let auditors = self.drawn_auditors_of(&key, &scope.executor, &scope.model, &pool);
        if auditors.contains(auditor)
            && (peer_id_of(auditor) == peer
                || referee_draw(&key, &scope.executor, auditor, &pool)
                    .iter()
                    .take(REFEREE_DRAW)
                    .any(|k| peer_id_of(k) == peer))
        {
            return Ok(());
        }
        Err(NodeError::Forbidden(format!(
            "pool {key}'s answers go only to the auditors its draw picks and their referees; {peer} is not one of them"
        )))
    }

    /// Answers [`Request::PoolAnswers`]: this node's answers in the asked
    /// scope (every one it retains, the pool's selection of them), for a
    /// drawn auditor or its referee.
    pub(crate) async fn answer_pool(
        &self,
        peer: Peer,
        key: Digest,
        body: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let asked: PoolAsk = serde_json::from_slice(body).map_err(|e| {
            NodeError::BadRequest(format!("the body is not a pool's scope as JSON: {e}"))
        })?;
        let scope = asked.scope;
        if scope.key() != key || scope.executor != self.public_key() {
            return Err(NodeError::BadRequest(format!(
                "the body names pool {} of executor {}, not pool {key} of this node",
                scope.key(),
                scope.executor
            )));
        }
        self.check_beacon(&scope)?;
        self.hand_over_pool(peer, &scope, &asked.auditor).await?;
        let network = self.network()?;
        let retained = network
            .transcripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live(self.config().retention);
        // Only answers whose receipt is in scope are read whole; `select`
        // checks each transcript against its receipt.
        let answers = retained.into_iter().filter_map(|(id, t)| {
            let receipt = self.receipt(&id).ok()?;
            let b = &receipt.body;
            (b.model == scope.model && (scope.start_ms..scope.end_ms).contains(&b.timestamp_ms))
                .then(|| Answer {
                    receipt,
                    transcript: (*t).clone(),
                })
        });
        json(&scope.select(answers))
    }

    /// On a ledger, that `scope`'s beacon is the ledger's for its window.
    fn check_beacon(&self, scope: &PoolScope) -> Result<(), NodeError> {
        let Some(chain) = self.chain.get() else {
            return Ok(());
        };
        match chain.read(|l| l.beacon_after(scope.end_ms)) {
            Ok(b) if b == scope.beacon => Ok(()),
            Ok(_) => Err(NodeError::BadRequest(format!(
                "pool {}'s beacon is not the ledger's for a window ending at {}",
                scope.key(),
                scope.end_ms
            ))),
            Err(e) => Err(NodeError::Unavailable(format!("pool {}: {e}", scope.key()))),
        }
    }

    /// Answers [`Request::RefereePool`]: checks the auditor's signed count
    /// over its pool, completes the pool with the executor's own answers,
    /// counts it and signs the count.
    pub(crate) async fn referee_pool(
        &self,
        key: Digest,
        body: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let asked: PoolAccusation = serde_json::from_slice(body).map_err(|e| {
            NodeError::BadRequest(format!("the body is not a pooled accusation as JSON: {e}"))
        })?;
        let scope = asked.scope;
        if scope.key() != key {
            return Err(NodeError::BadRequest(format!(
                "the body names pool {}, not {key}",
                scope.key()
            )));
        }
        self.check_beacon(&scope)?;
        let v = &asked.verdict;
        let accused = scope.select(asked.answers.clone());
        if accused.len() != asked.answers.len()
            || v.pool != scope.digest(&ids(&accused))
            || !v.verifies()
            || !v.fails()
        {
            return Err(NodeError::BadRequest(
                "the accusation is not an auditor's signed count, failing the rule, over answers in the pool's scope".into(),
            ));
        }
        let network = self.network()?;
        let completed = PoolAsk {
            scope,
            auditor: v.signer,
            known: ids(&accused),
        };
        let mut all = accused;
        match self.pool_answers(network, &completed).await {
            Ok(more) => all.extend(more),
            Err(e) => {
                tracing::info!(pool = %key, error = %e, "the executor did not complete the pool; counting the auditor's")
            }
        }
        let answers = scope.select(all);
        let (tokens, exceed, rule) = self.count_pool(&answers).await?;
        let verdict = PoolVerdict::sign(
            self.key(),
            scope.digest(&ids(&answers)),
            tokens,
            exceed,
            rule,
        );
        json(&PoolCount { answers, verdict })
    }

    /// Counts a checked pooled dispute against `faulty` and keeps it as
    /// evidence, once per pool.
    pub(crate) fn record_pool_dispute(
        &self,
        network: &Network,
        d: &PoolDispute,
        faulty: Party,
        established: &str,
    ) -> bool {
        let (faulty, other) = match faulty {
            Party::Executor => (&d.scope.executor, &d.auditor.signer),
            Party::Auditor => (&d.auditor.signer, &d.scope.executor),
        };
        self.count_dispute(
            network,
            d.scope.key(),
            (faulty, other),
            serde_json::json!({
                "kind": "llm_pool_dispute",
                "dispute": d,
                "established": established,
            }),
        )
    }

    /// This node's own count of a pooled dispute's pool, when it serves
    /// the model: whom it finds faulty.
    pub(crate) async fn judge_pool(&self, d: &PoolDispute) -> Option<Party> {
        let (tokens, exceed, _) = self.count_pool(&d.answers).await.ok()?;
        Some(if exceed >= d.referee.rule.threshold(tokens) {
            Party::Executor
        } else {
            Party::Auditor
        })
    }
}

/// Runs pooled audits on a ledger, twice a second: every window of
/// `llm_pool_window_ms` that has ended and whose beacon block is in, for
/// each executor and model this node heard accelerator answers of in it,
/// audited once, when this node is among the pool's drawn auditors.
pub(crate) async fn audit_pools(node: std::sync::Weak<Node>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let Some(n) = node.upgrade() else { return };
        for scope in n.pools_due() {
            let n = std::sync::Arc::clone(&n);
            tokio::spawn(async move {
                let key = scope.key();
                match n.audit_pool(scope).await {
                    Ok(outcome) => tracing::info!(pool = %key, ?outcome, "pooled LLM audit done"),
                    Err(e) => {
                        tracing::info!(pool = %key, error = %e, "pooled LLM audit not completed")
                    }
                }
            });
        }
    }
}

impl Node {
    /// The pools due for audit here ([`audit_pools`]), each returned once.
    fn pools_due(&self) -> Vec<PoolScope> {
        let (Some(chain), Ok(network)) = (self.chain.get(), self.network()) else {
            return Vec::new();
        };
        let window = chain.read(|l| l.params().llm_pool_window_ms);
        if window == 0 {
            return Vec::new();
        }
        let heard = network
            .pool_heard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live(self.config().retention);
        let mut groups: BTreeSet<(PublicKey, Digest, u64)> = BTreeSet::new();
        for (_, r) in heard {
            let start = r.body.timestamp_ms - r.body.timestamp_ms % window;
            groups.insert((r.body.node, r.body.model, start));
        }
        let mut due = Vec::new();
        for (executor, model, start_ms) in groups {
            let end_ms = start_ms.saturating_add(window);
            let Ok(beacon) = chain.read(|l| l.beacon_after(end_ms)) else {
                continue;
            };
            let scope = PoolScope {
                executor,
                model,
                start_ms,
                end_ms,
                beacon,
            };
            let key = scope.key();
            let Ok(Some(pool)) = self.draw_pool_at(&executor, end_ms, &key) else {
                continue;
            };
            // With the beacon in, whether this node audits the pool is
            // settled: each pool is considered once.
            let new = network
                .pools_audited
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key);
            if new
                && self
                    .drawn_auditors_of(&key, &executor, &model, &pool)
                    .contains(&self.public_key())
            {
                due.push(scope);
            }
        }
        due
    }
}
