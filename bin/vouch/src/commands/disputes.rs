//! `vouch verify-dispute`: a dispute record checked offline, and its
//! verdict established by admitted parties or by re-execution.

use super::*;

pub(crate) async fn verify_dispute(
    client: &Client,
    file: &Path,
    input: Option<&Path>,
    parties: &Parties,
    replay: bool,
) -> Result<()> {
    use vouch_types::dispute::Party;
    let value: serde_json::Value = read_json(file, "dispute (JSON)")?;
    if value.get("transcript").is_some() {
        return verify_llm_dispute(client, file, value, parties, replay).await;
    }
    if value.get("scope").is_some() {
        return verify_pool_dispute(client, file, value, parties, replay).await;
    }
    if value.get("bundle").is_some() {
        // A proof dispute needs no parties and no re-execution: the proof
        // is judged here.
        let d: vouch_proof::ProofDispute = serde_json::from_value(value)
            .with_context(|| format!("{} is not a valid proof dispute", file.display()))?;
        let why = d.check().context("the dispute does not check out")?;
        println!(
            "the dispute checks: operator key {} signed proven answer {} and {why}; any ledger convicts on it (no referee, no appeal)",
            d.executor(),
            d.receipt_id()
        );
        return Ok(());
    }
    let dispute: vouch_types::dispute::Dispute = serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid dispute", file.display()))?;
    let inputs = match input {
        Some(p) => {
            let req: InferRequest = read_json(p, "request ({\"inputs\": {...}})")?;
            Some(to_map(req.inputs))
        }
        None => None,
    };
    let faulty = dispute
        .check(inputs.as_ref())
        .context("the dispute does not check out")?;
    let (bad, good) = match faulty {
        Party::Executor => (&dispute.executor, &dispute.auditor),
        Party::Auditor => (&dispute.auditor, &dispute.executor),
    };
    println!(
        "the dispute checks: at step {}{} the {faulty:?} {} computed a leaf the referee {} does not; {} agreed with the referee",
        dispute.step,
        dispute
            .step_name
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        bad.body.node,
        dispute.verdict.referee,
        good.body.node
    );
    if replay {
        let inputs = inputs
            .ok_or_else(|| anyhow!("--replay re-runs the model: give the request with --input"))?;
        let leaf = rerun_step(client, &dispute.executor, &inputs, dispute.step).await?;
        let Some(found) = dispute.faulty_by_leaf(&leaf) else {
            bail!(
                "re-executed on {}, step {}'s leaf matches neither party",
                client.base(),
                dispute.step
            )
        };
        if found != faulty {
            bail!(
                "re-executed on {}: the {found:?} is faulty, not the {faulty:?} the referee names",
                client.base()
            );
        }
        println!(
            "established by re-execution on {}: the {faulty:?} is faulty",
            client.base()
        );
        return Ok(());
    }
    let pool = parties.pool(client, &dispute.executor).await?;
    establish_by_parties(dispute.check_parties(&pool), parties, faulty)
}

/// Whose word establishes a dispute's verdict without re-executing it.
pub(crate) enum Parties {
    /// Operators the user admits (`--admit`), each weighing 1, drawn
    /// without a beacon: as a network without a ledger draws.
    Admitted(std::collections::BTreeSet<PublicKey>),
    /// The staked operators of the node's ledger (`--ledger`), weighted by
    /// stake, drawn with the receipt's beacon: as the ledger judges.
    Ledger,
}

impl Parties {
    /// The pool the draws of `receipt` run over.
    async fn pool(&self, client: &Client, receipt: &Receipt) -> Result<vouch_types::dispute::Pool> {
        let what = format!("receipt {}", receipt.id);
        self.pool_at(
            client,
            (&receipt.body.node, receipt.body.timestamp_ms),
            &what,
        )
        .await
    }

    /// The pool the draws of what `executor` did at `at_ms` run over.
    async fn pool_at(
        &self,
        client: &Client,
        (executor, at_ms): (&vouch_types::PublicKey, u64),
        what: &str,
    ) -> Result<vouch_types::dispute::Pool> {
        match self {
            Parties::Admitted(keys) => Ok(vouch_types::dispute::Pool::uniform(keys)),
            Parties::Ledger => client.ledger_draw(executor, at_ms).await.with_context(|| {
                format!("reading the draw of {what} from {}'s ledger", client.base())
            }),
        }
    }
}
/// Says that admitted parties establish a dispute against `faulty`, or
/// why they do not.
pub(crate) fn establish_by_parties(
    checked: Result<(), vouch_types::dispute::DisputeError>,
    parties: &Parties,
    faulty: vouch_types::dispute::Party,
) -> Result<()> {
    let who = match parties {
        Parties::Admitted(_) => "operators you admit",
        Parties::Ledger => {
            "operators staked on the node's ledger, the referee drawn by stake and the receipt's beacon"
        }
    };
    checked.map_err(|e| {
        let how = if matches!(parties, Parties::Admitted(keys) if keys.is_empty()) {
            "name the operators you admit with --admit KEY (`vouch network` lists them), or judge by the node's ledger with --ledger".to_string()
        } else {
            e.to_string()
        };
        anyhow!(
            "the dispute checks offline, but nothing here establishes its verdict: anyone can mint an auditor's and a referee's keys. {how}, or re-execute it on a node that serves the model with --replay"
        )
    })?;
    println!(
        "dispute verified: established by admitted parties (the auditor and the drawn referee are {who}); the {faulty:?} is faulty"
    );
    Ok(())
}
/// Runs the disputed receipt's model on `inputs` on the node and returns
/// the leaf its trace commits at `step`.
pub(crate) async fn rerun_step(
    client: &Client,
    disputed: &Receipt,
    inputs: &vouch_types::TensorMap,
    step: u64,
) -> Result<Digest> {
    let model = disputed.body.model;
    let listed = client.list_models().await?;
    let m = listed
        .models
        .iter()
        .find(|m| m.id == model)
        .ok_or_else(|| {
            anyhow!(
                "the node at {} does not hold model {model}; pin it there first (vouch model pin)",
                client.base()
            )
        })?;
    let request = InferRequest {
        inputs: vouch_api::from_map(inputs.clone()),
        nonce: Some("verify-dispute".into()),
        verify: None,
    };
    let answer = client.infer(&m.name, Some(&m.version), &request).await?;
    let receipt = answer.receipt;
    receipt
        .verify()
        .context("the node's receipt does not verify")?;
    receipt
        .verify_inputs(inputs)
        .context("the node ran other inputs")?;
    if receipt.body.model != model || receipt.body.engine != disputed.body.engine {
        bail!(
            "the node ran {} on {} {}, not {model} on {} {}: the traces cannot be compared",
            receipt.body.model,
            receipt.body.engine.name,
            receipt.body.engine.version,
            disputed.body.engine.name,
            disputed.body.engine.version
        );
    }
    let entry = client.trace_entry(&receipt.id, step).await?;
    if !vouch_types::merkle::verify(
        &receipt.body.trace.root,
        receipt.body.trace.len,
        step,
        &entry.leaf,
        &entry.path,
    ) {
        bail!("the node revealed a trace leaf that is not in its receipt's trace");
    }
    Ok(entry.leaf)
}
/// A dispute over a generated answer: everything but the teacher-forced
/// check itself is re-checked here; --replay runs the check on the node.
pub(crate) async fn verify_llm_dispute(
    client: &Client,
    file: &Path,
    value: serde_json::Value,
    parties: &Parties,
    replay: bool,
) -> Result<()> {
    use vouch_types::dispute::Party;
    let d: vouch_types::dispute::LlmDispute = serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid LLM dispute", file.display()))?;
    let faulty = d.check().context("the dispute does not check out")?;
    let at = d.auditor.failed_at.unwrap_or_default();
    match faulty {
        Party::Executor => println!(
            "the dispute checks: the executor {} signed an answer whose token {at} fails the teacher-forced check of auditor {} and of referee {} ({})",
            d.executor.body.node, d.auditor.signer, d.referee.signer, d.referee.reason
        ),
        Party::Auditor => println!(
            "the dispute checks: auditor {} rejected token {at} of {}'s answer, but referee {} found every token passes",
            d.auditor.signer, d.executor.body.node, d.referee.signer
        ),
    }
    if replay {
        let check: serde_json::Value = client
            .post_json(
                "/v1/audit/llm",
                &serde_json::json!({"receipt": d.executor, "transcript": d.transcript}),
            )
            .await?;
        let found = match (check["ok"].as_bool(), check["failed_at"].as_u64()) {
            (Some(true), _) => Party::Auditor,
            (_, Some(_)) => Party::Executor,
            _ => bail!(
                "the node could not check the tokens: {}",
                check["reason"].as_str().unwrap_or("no reason given")
            ),
        };
        if found != faulty {
            bail!(
                "re-checked on {}: the {found:?} is faulty, not the {faulty:?} the referee names",
                client.base()
            );
        }
        let by = check["checked_by"]["signer"]
            .as_str()
            .map(|s| format!(" (by operator {s}, which it asked)"))
            .unwrap_or_default();
        println!(
            "established by re-execution on {}{by}: the {faulty:?} is faulty",
            client.base()
        );
        return Ok(());
    }
    let pool = parties.pool(client, &d.executor).await?;
    establish_by_parties(d.check_parties(&pool), parties, faulty)
}

/// A dispute over a pool of generated answers: everything but the
/// teacher-forced counts is re-checked here; --replay counts the pool on
/// the node.
pub(crate) async fn verify_pool_dispute(
    client: &Client,
    file: &Path,
    value: serde_json::Value,
    parties: &Parties,
    replay: bool,
) -> Result<()> {
    use vouch_types::dispute::Party;
    let d: vouch_types::llm_pool::PoolDispute = serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid pooled LLM dispute", file.display()))?;
    let faulty = d.check().context("the dispute does not check out")?;
    let (a, r) = (&d.auditor, &d.referee);
    let threshold = r.rule.threshold(r.tokens);
    println!(
        "the dispute checks: auditor {} counted {} of {} tokens beyond the tolerance in {}'s answers of window [{}, {}) (failing at {}); referee {} counted {} of {} in {} answers (failing at {threshold}): the {faulty:?} is faulty",
        a.signer,
        a.exceed,
        a.tokens,
        d.scope.executor,
        d.scope.start_ms,
        d.scope.end_ms,
        a.rule.threshold(a.tokens),
        r.signer,
        r.exceed,
        r.tokens,
        d.answers.len()
    );
    if replay {
        let mut exceed = 0u64;
        for answer in &d.answers {
            let check: serde_json::Value = client
                .post_json(
                    "/v1/audit/llm",
                    &serde_json::json!({"receipt": answer.receipt, "transcript": answer.transcript}),
                )
                .await?;
            exceed += match check["beyond"].as_u64() {
                Some(b) => b,
                None => bail!(
                    "the node could not count receipt {}'s tokens (it must serve the model itself): {}",
                    answer.receipt.id,
                    check["reason"].as_str().unwrap_or("no reason given")
                ),
            };
        }
        let found = if exceed >= threshold {
            Party::Executor
        } else {
            Party::Auditor
        };
        if found != faulty {
            bail!(
                "counted on {}: {exceed} tokens beyond the tolerance, so the {found:?} is faulty, not the {faulty:?} the referee names",
                client.base()
            );
        }
        println!(
            "established by re-execution on {}: {exceed} tokens beyond the tolerance, the {faulty:?} is faulty",
            client.base()
        );
        return Ok(());
    }
    let what = format!("pool {}", d.scope.key());
    let pool = parties
        .pool_at(client, (&d.scope.executor, d.scope.end_ms), &what)
        .await?;
    establish_by_parties(d.check_parties(&pool), parties, faulty)
}
