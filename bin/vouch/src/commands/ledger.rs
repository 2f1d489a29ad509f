//! `vouch ledger …` and `vouch transfer`: the ledger chain through a node.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use vouch_client::Client;
use vouch_node::ledger::{Tx, TxBody};

use super::parse_key;
use crate::cli::LedgerCommand;

pub(crate) async fn ledger(client: &Client, cmd: LedgerCommand) -> Result<()> {
    let value = match cmd {
        LedgerCommand::Status => client.ledger_status().await?,
        LedgerCommand::Operators => client.ledger_operators().await?,
        LedgerCommand::Account { key } => {
            parse_key(&key)?;
            client.ledger_account(&key).await?
        }
        LedgerCommand::Block { height } => client.ledger_block(height).await?,
        LedgerCommand::Params => client.get_value("/v1/ledger/params").await?,
        LedgerCommand::Economics => client.get_value("/v1/ledger/economics").await?,
        LedgerCommand::Proposals => client.get_value("/v1/ledger/proposals").await?,
        LedgerCommand::Disputes => client.get_value("/v1/ledger/disputes").await?,
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// Signs `body` with the key in `key_file` at its next nonce, submits it,
/// and waits (a minute at most) for the block that applies it. Fails with
/// the ledger's reason when the block rejected the transaction's action.
/// A rejection for its nonce (another transaction of the same key, such as
/// the node's own with the operator key, took it first) had no effect, so
/// it is signed again with the next nonce, a few times at most.
/// Returns the id, the height and the signer's account after it.
async fn submit_and_wait(
    client: &Client,
    key_file: &Path,
    body: TxBody,
) -> Result<(String, u64, serde_json::Value)> {
    let key = vouch_node::keyfile::load(key_file)
        .with_context(|| format!("reading the signing key {}", key_file.display()))?;
    let from = key.public().to_string();
    let status = client.ledger_status().await?;
    let chain_id = status["chain_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the node's ledger status names no chain"))?;
    let mut tries = 0;
    loop {
        let nonce = client.ledger_account(&from).await?["nonce"]
            .as_u64()
            .ok_or_else(|| anyhow!("the node's account answer has no nonce"))?;
        let tx = Tx::sign(chain_id, &key, nonce, body.clone());
        let id = client.submit_tx(&tx.encode()).await?;
        eprintln!("submitted {id}; waiting for a block");
        let (height, error) = wait_for(client, &id).await?;
        match error {
            None => {
                let account = client.ledger_account(&from).await?;
                return Ok((id, height, account));
            }
            Some(e) if vouch_node::ledger::TxError::is_bad_nonce(&e) && tries < 5 => {
                tries += 1;
                eprintln!("its nonce was taken by another transaction of this key; signing again");
            }
            Some(e) => bail!("transaction {id} was rejected in block {height}: {e}"),
        }
    }
}

/// Waits (a minute at most) for transaction `id`'s block: its height, and
/// the ledger's reason where it rejected the transaction.
async fn wait_for(client: &Client, id: &str) -> Result<(u64, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Not in a block yet: the node answers 404.
        if let Ok(outcome) = client.ledger_tx(id).await {
            let height = outcome["height"].as_u64().unwrap_or_default();
            if outcome["ok"] == serde_json::Value::Bool(true) {
                return Ok((height, None));
            }
            let why = outcome["error"].as_str().unwrap_or("no reason given");
            return Ok((height, Some(why.to_string())));
        }
        if Instant::now() > deadline {
            bail!(
                "transaction {id} was not in a block within a minute; the node's pool may be full, or its chain stalled (vouch ledger status)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `vouch transfer`.
pub(crate) async fn transfer(
    client: &Client,
    to: &str,
    amount: u64,
    key_file: &Path,
) -> Result<()> {
    let to = parse_key(to)?;
    let (id, height, account) =
        submit_and_wait(client, key_file, TxBody::Transfer { to, amount }).await?;
    println!(
        "{}",
        serde_json::json!({"id": id, "to": to, "amount": amount, "height": height,
            "balance": account["balance"]})
    );
    Ok(())
}

/// `vouch dispute FILE`: a dispute record filed on the ledger. A proof
/// dispute is judged here first, so that evidence that convicts no one
/// says why before it costs a transaction.
pub(crate) async fn file_dispute(client: &Client, file: &Path, key_file: &Path) -> Result<()> {
    let record =
        std::fs::read(file).with_context(|| format!("reading the dispute {}", file.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&record)
        .with_context(|| format!("{} is not a dispute (JSON)", file.display()))?;
    if value.get("bundle").is_some() {
        let d: vouch_proof::ProofDispute = serde_json::from_value(value)
            .with_context(|| format!("{} is not a valid proof dispute", file.display()))?;
        d.check()
            .with_context(|| format!("{} convicts no one, so it is not filed", file.display()))?;
    }
    let (id, height, _) = submit_and_wait(client, key_file, TxBody::Dispute { record }).await?;
    println!(
        "{}",
        serde_json::json!({"id": id, "height": height, "outcome": "convicted"})
    );
    Ok(())
}

/// `vouch deposit`, `vouch stake`, `vouch unstake`: an amount moved between
/// the signer's balance and its escrow or stake.
pub(crate) async fn move_funds(
    client: &Client,
    what: &str,
    amount: u64,
    key_file: &Path,
) -> Result<()> {
    let body = match what {
        "deposit" => TxBody::Deposit { amount },
        "stake" => TxBody::Bond { amount },
        "unstake" => TxBody::Unbond { amount },
        other => bail!("unknown move `{other}`"),
    };
    let (id, height, account) = submit_and_wait(client, key_file, body).await?;
    println!(
        "{}",
        serde_json::json!({"id": id, what: amount, "height": height, "balance": account["balance"],
            "escrow": account["escrow"]})
    );
    Ok(())
}

/// Who signs a governance transaction.
pub(crate) enum Signer {
    /// This key file, here.
    Key(std::path::PathBuf),
    /// The node, with its operator key: `POST /v1/ledger/operator-tx`,
    /// which the admin token authorizes.
    Node,
}

/// Submits a governance transaction signed as `signer` and waits for its
/// block: its id, the block's height and the signer's key.
async fn submit_as(
    client: &Client,
    signer: &Signer,
    body: TxBody,
) -> Result<(String, u64, String)> {
    match signer {
        Signer::Key(key_file) => {
            let (id, height, _) = submit_and_wait(client, key_file, body).await?;
            let key = vouch_node::keyfile::load(key_file)?.public().to_string();
            Ok((id, height, key))
        }
        Signer::Node => {
            eprintln!("the node signs with its operator key; waiting for a block");
            let answer: serde_json::Value = client
                .post_json(
                    "/v1/ledger/operator-tx",
                    &serde_json::json!({"body": hex::encode(body.encode())}),
                )
                .await?;
            let field = |name: &str| {
                answer[name]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("the node's answer has no `{name}`: {answer}"))
            };
            let height = answer["height"]
                .as_u64()
                .ok_or_else(|| anyhow!("the node's answer has no `height`: {answer}"))?;
            Ok((field("id")?, height, field("signer")?))
        }
    }
}

/// `vouch propose --set NAME=VALUE...`: prints the proposal (one JSON
/// line) once a block took it.
pub(crate) async fn propose(
    client: &Client,
    set: &[String],
    spend: &[String],
    (allow, retire): (&[String], &[String]),
    signer: &Signer,
) -> Result<()> {
    let mut releases = Vec::new();
    for spec in allow {
        let (version, digest) = match spec.split_once('=') {
            Some((v, d)) => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(d.trim().trim_start_matches("blake3:"), &mut bytes)
                    .map_err(|_| anyhow!("--allow-release {spec}: the digest is 64 hex digits"))?;
                (v.trim().to_string(), bytes)
            }
            None => (spec.trim().to_string(), [0u8; 32]),
        };
        releases.push((version, digest, true));
    }
    for version in retire {
        releases.push((version.trim().to_string(), [0u8; 32], false));
    }
    let spends = spend
        .iter()
        .map(|s| {
            let (to, amount) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("--spend {s}: write KEY=AMOUNT"))?;
            let amount = amount
                .trim()
                .parse::<u64>()
                .map_err(|_| anyhow!("--spend {s}: `{amount}` is not a whole number"))?;
            Ok((parse_key(to.trim())?, amount))
        })
        .collect::<Result<Vec<_>>>()?;
    let changes = set
        .iter()
        .map(|s| {
            let (name, value) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("--set {s}: write NAME=VALUE"))?;
            let value = value
                .trim()
                .parse::<u64>()
                .map_err(|_| anyhow!("--set {s}: `{value}` is not a whole number"))?;
            vouch_node::ledger::Params::check(name.trim(), value)
                .map_err(|e| anyhow!("--set {s}: {e}"))?;
            Ok((name.trim().to_string(), value))
        })
        .collect::<Result<Vec<_>>>()?;
    let (id, height, signer) = submit_as(
        client,
        signer,
        TxBody::Propose {
            changes,
            spends,
            releases,
        },
    )
    .await?;
    // The proposal a block took from this transaction: the newest one
    // proposed at that height by this key.
    let proposals = client.get_value("/v1/ledger/proposals").await?;
    let proposal = proposals
        .as_array()
        .and_then(|all| {
            all.iter()
                .rev()
                .find(|p| p["proposed"] == height && p["proposer"] == signer.as_str())
        })
        .ok_or_else(|| anyhow!("transaction {id} was applied but its proposal is not listed"))?;
    println!("{}", serde_json::to_string(proposal)?);
    Ok(())
}

/// `vouch vote ID yes|no`.
pub(crate) async fn vote(client: &Client, proposal: u64, yes: bool, signer: &Signer) -> Result<()> {
    let (id, height, _) = submit_as(client, signer, TxBody::Vote { proposal, yes }).await?;
    println!(
        "{}",
        serde_json::json!({"id": id, "proposal": proposal, "vote": if yes { "yes" } else { "no" }, "height": height})
    );
    Ok(())
}

/// `vouch genesis`: every operator funded and staked.
pub(crate) fn genesis(
    operators: &[String],
    chain_id: String,
    funds: u64,
    stake: u64,
) -> Result<()> {
    let keys = operators
        .iter()
        .map(|k| parse_key(k))
        .collect::<Result<Vec<_>>>()?;
    let g = vouch_node::ledger::Genesis {
        chain_id,
        params: vouch_node::ledger::Params::default(),
        accounts: keys.iter().map(|k| (*k, funds)).collect(),
        operators: keys
            .iter()
            .map(|k| (*k, stake, vouch_node::ledger::Offer::default()))
            .collect(),
    };
    println!("{}", vouch_node::ledger::genesis_to_json(&g));
    Ok(())
}

/// Reads a genesis file, saying what is wrong with it.
pub(crate) fn read_genesis(path: &Path) -> Result<vouch_node::ledger::Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the genesis file {}", path.display()))?;
    vouch_node::ledger::genesis_from_json(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// `OPERATOR_KEY@HOST:PORT`.
pub(crate) fn parse_chain_peer(s: &str) -> Result<(vouch_types::PublicKey, std::net::SocketAddr)> {
    let (key, addr) = s
        .split_once('@')
        .ok_or_else(|| anyhow!("--chain-bootstrap `{s}`: write OPERATOR_KEY@HOST:PORT"))?;
    let addr = addr
        .parse()
        .map_err(|e| anyhow!("--chain-bootstrap `{s}`: `{addr}` is not HOST:PORT ({e})"))?;
    Ok((parse_key(key)?, addr))
}
