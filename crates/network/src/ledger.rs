//! The node's validator of the ledger chain (`vouch-chain`): opened from
//! the data directory (`chain.redb` for applied blocks, `chain/` for the
//! engine's journal), run on a thread of its own, read by the HTTP layer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use vouch_chain::genesis::{from_json as genesis_from_json, to_json as genesis_to_json};
pub use vouch_chain::local_ports;
use vouch_chain::{Chain, ChainConfig, validator::Validator};
pub use vouch_ledger::{Genesis, Ledger, Offer, Params, Tx, TxBody, TxError, Voucher, appeal};
use vouch_service::NodeError;
use vouch_types::PublicKey;

use crate::Node;

/// What a node's validator needs beside its key and data directory.
pub struct ChainSettings {
    /// The chain's genesis: the first epoch's validators are its operators
    /// with the most stake.
    pub genesis: Genesis,
    /// Where the validator's transport listens.
    pub listen: SocketAddr,
    /// Validators to dial first.
    pub bootstrap: Vec<(PublicKey, SocketAddr)>,
    /// How long a view waits for its leader.
    pub leader_timeout: Duration,
    /// How often an idle chain makes an empty block.
    pub empty_block_interval: Duration,
    /// How often the node redeems the payment vouchers it holds.
    pub redeem_interval: Duration,
    /// Whether the chain is the node's own (`vouch up`'s, from
    /// [`solo_genesis`]): one stored from another genesis is then set
    /// aside rather than refused.
    pub own: bool,
}

/// Moves the chain's files in `dir` to `chain-old-<unix seconds>/`;
/// returns where.
fn set_aside(dir: &std::path::Path) -> Result<String, NodeError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = dir.join(format!("chain-old-{secs}"));
    let moving = |e: std::io::Error| {
        NodeError::Storage(format!(
            "setting the old chain aside in {}: {e}",
            aside.display()
        ))
    };
    std::fs::create_dir_all(&aside).map_err(moving)?;
    for name in ["chain.redb", "chain"] {
        let from = dir.join(name);
        if from.exists() {
            std::fs::rename(&from, aside.join(name)).map_err(moving)?;
        }
    }
    Ok(aside.display().to_string())
}

/// Units an operator of a one-validator local chain starts with, and the
/// part of them it stakes.
pub const SOLO_FUNDS: u64 = 1_000_000;
/// See [`SOLO_FUNDS`].
pub const SOLO_STAKE: u64 = 100_000;

/// The genesis of a chain with one validator, `operator`, funded and
/// staked, with short governance votes: what `vouch up` runs. It depends on the operator alone (its id
/// names it), so that the node finds its own chain again after a restart
/// whatever its other flags; the offer starts at price 0 (a `SetOffer`
/// transaction changes it).
pub fn solo_genesis(operator: PublicKey) -> Genesis {
    let id = hex::encode(&operator.as_bytes()[..8]);
    Genesis {
        chain_id: format!("vouch-local-{id}"),
        // Votes short enough that a local proposal is in force within a
        // minute of idle blocks (one per 5 s).
        params: Params {
            voting_period: 6,
            timelock: 2,
            ..Params::default()
        },
        accounts: vec![(operator, SOLO_FUNDS)],
        operators: vec![(operator, SOLO_STAKE, Offer::default())],
    }
}

impl Node {
    /// Opens the chain in the data directory and starts this node's
    /// validator. The ledger names each epoch's validators (the operators
    /// with the most stake); in an epoch that does not name this node's
    /// operator, the node follows the chain without voting. It reports the
    /// equivocations its engine sees (`report_equivocations`), appeals the
    /// convictions of its operator that its own judgment contradicts and
    /// votes on the appeals whose panel it sits on
    /// (`appeals::follow_convictions`), and audits the pools of
    /// accelerator answers it is drawn for (`llm_pool::audit_pools`).
    /// Then the node charges its price
    /// per request (`payments`): it publishes the price on the ledger and
    /// redeems the vouchers it takes every `redeem_interval`.
    pub fn start_chain(self: &Arc<Self>, settings: ChainSettings) -> Result<(), NodeError> {
        let dir = &self.config().data_dir;
        let chain = match Chain::open(&settings.genesis, &dir.join("chain.redb")) {
            // A chain of the node's own from an older genesis: nobody else
            // holds its blocks, so it is set aside for a new one.
            Err(vouch_chain::StoreError::OtherGenesis { .. }) if settings.own => {
                let aside = set_aside(dir)?;
                tracing::warn!(
                    moved_to = %aside,
                    "this node's own chain was made from another genesis (an older vouch): set aside, starting a new one"
                );
                Chain::open(&settings.genesis, &dir.join("chain.redb"))
            }
            other => other,
        }
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        Validator {
            chain: chain.clone(),
            config: ChainConfig {
                signer: vouch_chain::consensus_signer(self.key()),
                partition: "consensus".into(),
                leader_timeout: settings.leader_timeout,
                empty_block_interval: settings.empty_block_interval,
            },
            listen: settings.listen,
            bootstrappers: settings
                .bootstrap
                .iter()
                .map(|(key, addr)| (vouch_chain::consensus_key(key), *addr))
                .collect(),
            storage: dir.join("chain"),
        }
        .spawn()
        .map_err(|e| NodeError::Internal(format!("starting the validator: {e}")))?;
        self.chain
            .set(chain)
            .map_err(|_| NodeError::Internal("the chain was started twice".into()))?;
        self.load_vouchers()?;
        tokio::spawn(crate::payments::settle(
            Arc::downgrade(self),
            settings.redeem_interval,
        ));
        tokio::spawn(crate::audit_pay::upkeep(Arc::downgrade(self)));
        tokio::spawn(follow_params(Arc::downgrade(self)));
        tokio::spawn(report_equivocations(Arc::downgrade(self)));
        tokio::spawn(crate::appeals::follow_convictions(Arc::downgrade(self)));
        tokio::spawn(crate::llm_pool::audit_pools(Arc::downgrade(self)));
        Ok(())
    }

    /// The ledger chain this node validates, if it runs one.
    pub fn chain(&self) -> Result<&Chain, NodeError> {
        self.chain.get().ok_or_else(|| {
            NodeError::NotFound(
                "this node runs no ledger chain (`vouch up` starts one with the node's operator as its validator)"
                    .into(),
            )
        })
    }
}

/// Applies the ledger's parameters that a node acts on as they change
/// (by governance, at their activation height): the audit rate and the
/// tolerance and statistical rule of teacher-forced LLM checks; and says so when a vote
/// retires this node's release. Checked twice a second; a node not yet on
/// its network is retried.
async fn follow_params(node: std::sync::Weak<Node>) {
    let mut applied = None;
    let mut applied_rule = None;
    let mut release_ok = true;
    loop {
        let Some(n) = node.upgrade() else { return };
        if let Ok(chain) = n.chain() {
            let (ppm, llm_ppm, rule) = chain.read(|l| {
                let p = l.params();
                (
                    p.audit_rate_ppm,
                    p.llm_tolerance_ppm,
                    vouch_service::service::RuleParams {
                        exceed_rate: p.llm_exceed_ppm as f64 / 1e6,
                        cpu_exceed_rate: p.llm_cpu_exceed_ppm as f64 / 1e6,
                        hard: p.llm_hard_ppm as f64 / 1e6,
                    },
                )
            });
            let rtol = llm_ppm as f64 / 1e6;
            if n.service().llm_tolerance() != Some(rtol) {
                n.service().set_llm_tolerance(Some(rtol));
                tracing::info!(
                    llm_tolerance_ppm = llm_ppm,
                    "LLM audits use the ledger's tolerance"
                );
            }
            let rule = Some(rule);
            if applied_rule != rule {
                n.service().set_llm_rule(rule);
                tracing::info!(?rule, "LLM audits use the ledger's statistical rule");
                applied_rule = rule;
            }
            let allowed = n.release_allowed(crate::network::SOFTWARE);
            if allowed != release_ok {
                if !allowed {
                    tracing::error!(
                        release = crate::network::SOFTWARE,
                        "the ledger does not allow this release: peers stop routing to this node; upgrade to an allowed one (vouch ledger proposals)"
                    );
                }
                release_ok = allowed;
            }
            if applied != Some(ppm) && n.network.get().is_some() {
                match n.set_audit_rate(ppm as f64 / 1e6).await {
                    Ok(()) => {
                        if applied.is_some() {
                            tracing::info!(
                                audit_rate_ppm = ppm,
                                "the ledger changed the audit rate"
                            );
                        }
                        applied = Some(ppm);
                    }
                    Err(e) => tracing::warn!(error = %e, "applying the ledger's audit rate"),
                }
            }
        }
        drop(n);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Submits the equivocation evidence this node's engine reported, each as
/// an `Equivocation` transaction: the ledger checks the two votes and
/// slashes the validator (the first report of each equivocation; a later
/// one is refused as slashed already). Checked twice a second.
async fn report_equivocations(node: std::sync::Weak<Node>) {
    loop {
        let Some(n) = node.upgrade() else { return };
        let evidence = n.chain().map(Chain::take_evidence).unwrap_or_default();
        for e in evidence {
            match n.submit_own(TxBody::Equivocation { evidence: e }).await {
                Ok(_) => tracing::warn!("the ledger slashed a validator for equivocating"),
                Err(e) if e.to_string().contains("slashed already") => {}
                Err(e) => tracing::warn!(error = %e, "the ledger refused equivocation evidence"),
            }
        }
        drop(n);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Node {
    /// What the ledger says of this node's operator, as Prometheus gauges
    /// (name, help, value) to alert on (`GET /metrics`): stake against the
    /// minimum, slashes (disputes lost, equivocation), whether it
    /// validates, its balance and escrow, and whether its release is
    /// allowed or a passed vote retires it (at which height). None where
    /// the node runs no chain.
    pub fn ledger_gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let Some(chain) = self.chain.get() else {
            return Vec::new();
        };
        let me = self.public_key();
        let version = release_version(crate::network::SOFTWARE);
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        chain.read(|l| {
            let op = l.operators().get(&me);
            let stake = op.map_or(0, |o| o.stake);
            let min = l.params().min_stake;
            let account = l.account(&me);
            let validating = l
                .epoch_validators(l.epoch())
                .is_some_and(|set| set.contains(&me));
            vec![
                ("vouch_ledger_height", "Height of the last block this node applied.", l.height() as f64),
                ("vouch_ledger_epoch", "The chain's current epoch.", l.epoch() as f64),
                ("vouch_operator_stake", "This node's operator's bonded stake.", stake as f64),
                ("vouch_operator_min_stake", "The bonded stake an operator needs (the ledger's min_stake).", min as f64),
                ("vouch_operator_stake_below_minimum", "1 when the operator's bonded stake is below min_stake: its audits, draws and validation stop counting.", flag(stake < min)),
                ("vouch_operator_slashed", "Everything the ledger slashed from this node's operator (disputes lost, equivocation).", op.map_or(0, |o| o.slashed) as f64),
                ("vouch_operator_validator", "1 when the operator validates the current epoch.", flag(validating)),
                ("vouch_operator_balance", "The operator account's spendable balance.", account.balance as f64),
                ("vouch_operator_escrow", "The operator account's escrow, which pays other operators' vouchers.", account.escrow as f64),
                ("vouch_release_allowed", "1 when the ledger allows this node's release.", flag(l.release_allowed(version))),
                ("vouch_release_retired_at", "The height at which a passed vote retires this node's release; 0 if none does.", l.release_retiring(version).unwrap_or(0) as f64),
            ]
        })
    }

    /// Whether software `announced` ("vouch VERSION", as announcements and
    /// this node name it) may serve on this node's chain: governance
    /// allows and retires releases (`Ledger::release_allowed`). Any may
    /// where the node runs no chain.
    pub fn release_allowed(&self, announced: &str) -> bool {
        self.chain
            .get()
            .is_none_or(|c| c.read(|l| l.release_allowed(release_version(announced))))
    }

    /// Submits a dispute this node settled as the auditor to its chain, as
    /// a `Dispute` transaction: the ledger checks it again (the record, the
    /// parties staked and distinct, the referee the one drawn over the
    /// staked operators, the receipt not convicted on before) and slashes
    /// the faulty party. Nothing where the node runs no chain or the
    /// ledger convicted on this receipt already; the ledger's refusal is
    /// logged.
    pub(crate) async fn dispute_on_ledger(&self, receipt: &vouch_types::Digest, record: Vec<u8>) {
        let Some(chain) = self.chain.get() else {
            return;
        };
        if chain.read(|l| l.disputed(receipt)) {
            return;
        }
        match self.submit_own(TxBody::Dispute { record }).await {
            Ok(_) => tracing::warn!(%receipt, "the ledger convicted on the dispute"),
            // Another auditor's transaction for the same receipt came first.
            Err(e) if e.to_string().contains("convicted on already") => {
                tracing::info!(%receipt, "the ledger convicted on another auditor's dispute first")
            }
            Err(e) => {
                tracing::warn!(%receipt, error = %e, "the ledger did not convict on the dispute")
            }
        }
    }
}

/// The release version in the name software announces itself by
/// ("vouch VERSION"), as the ledger's release votes name it.
fn release_version(announced: &str) -> &str {
    announced.strip_prefix("vouch ").unwrap_or(announced)
}
