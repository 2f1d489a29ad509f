//! What each command does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use vouch_api::{InferRequest, ModelInfo, OutputsFile, PinStatus, to_map};
use vouch_client::{Client, PushParams};
use vouch_node::service::Fault;
use vouch_node::{Node, NodeConfig, P2pConfig};
use vouch_types::llm::Transcript;
use vouch_types::{Digest, Kind, PublicKey, Receipt};

mod ask;
mod disputes;
mod hub;
mod ledger;
mod serve;

use ask::*;
use disputes::*;
use hub::*;
use ledger::*;
use serve::*;

use crate::cli::{
    ChatArgs, Cli, Command, InferArgs, ModelCommand, P2pArgs, PayArgs, ReceiptsCommand, ServeArgs,
    UpArgs, VerifyArgs,
};

pub(crate) async fn run(cli: Cli) -> Result<()> {
    let client = Client::new(&cli.node).with_token(admin_token(&cli));
    match cli.command {
        Command::Up(args) => {
            let data_dir = match &cli.data_dir {
                Some(d) => d.clone(),
                None => default_data_dir()?,
            };
            let models = args
                .models
                .clone()
                .unwrap_or_else(vouch_node::samples::models_dir);
            if let Some(i) = args.member {
                return up_member(&args, &data_dir, &models, i).await;
            }
            if args.nodes > 1 {
                return up_network(&args, &data_dir).await;
            }
            serve(
                config(data_dir, args.listen, &args.serve)?,
                p2p_config(&args.serve.p2p)?,
                &args.serve.p2p.serve_models,
                Some(models),
                Some(ChainStart {
                    genesis: None,
                    listen: args.chain_listen,
                    bootstrap: vec![],
                    empty_block_interval: std::time::Duration::from_secs(args.chain_block_secs),
                    redeem_interval: std::time::Duration::from_secs(args.serve.redeem_secs),
                }),
            )
            .await
        }
        Command::Node(args) => {
            let data_dir = cli.data_dir.clone().ok_or_else(|| {
                anyhow!(
                    "vouch node needs --data-dir DIR: where its store, key and admin token live"
                )
            })?;
            let chain = match (&args.genesis, args.chain_listen) {
                (Some(file), Some(listen)) => Some(ChainStart {
                    genesis: Some(read_genesis(file)?),
                    listen,
                    bootstrap: args
                        .chain_bootstrap
                        .iter()
                        .map(|b| parse_chain_peer(b))
                        .collect::<Result<_>>()?,
                    empty_block_interval: std::time::Duration::from_secs(args.chain_block_secs),
                    redeem_interval: std::time::Duration::from_secs(args.serve.redeem_secs),
                }),
                _ => None,
            };
            serve(
                config(data_dir, args.listen, &args.serve)?,
                p2p_config(&args.serve.p2p)?,
                &args.serve.p2p.serve_models,
                None,
                chain,
            )
            .await
        }
        Command::Network { json } => network(&client, json).await,
        Command::Evidence { dispute, out, json } => evidence(&client, dispute, out, json).await,
        Command::Trace { id, json } => trace(&client, &id, json).await,
        Command::VerifyDispute {
            file,
            input,
            admitted,
            ledger,
            replay,
        } => {
            let parties = if ledger {
                if !admitted.is_empty() {
                    bail!("give --admit or --ledger, not both");
                }
                Parties::Ledger
            } else {
                Parties::Admitted(
                    admitted
                        .iter()
                        .map(|k| parse_key(k))
                        .collect::<Result<_>>()?,
                )
            };
            verify_dispute(&client, &file, input.as_deref(), &parties, replay).await
        }
        Command::Model(cmd) => model(&client, cmd).await,
        Command::Infer(args) => infer(&client, args).await,
        Command::Verify(args) => verify(&client, args).await,
        Command::Gc => gc(&client).await,
        Command::Ledger(cmd) => ledger(&client, cmd).await,
        Command::Genesis {
            operators,
            chain_id,
            funds,
            stake,
        } => genesis(&operators, chain_id, funds, stake),
        Command::Dispute { file, key } => {
            file_dispute(&client, &file, &signing_key(&cli.data_dir, key)?).await
        }
        Command::Transfer { to, amount, key } => {
            transfer(&client, &to, amount, &signing_key(&cli.data_dir, key)?).await
        }
        Command::Deposit { amount, key } => {
            move_funds(
                &client,
                "deposit",
                amount,
                &signing_key(&cli.data_dir, key)?,
            )
            .await
        }
        Command::Propose {
            set,
            spend,
            allow_release,
            retire_release,
            key,
            by_node,
        } => {
            propose(
                &client,
                &set,
                &spend,
                (&allow_release, &retire_release),
                &signer(&cli.data_dir, key, by_node)?,
            )
            .await
        }
        Command::Vote {
            id,
            choice,
            key,
            by_node,
        } => {
            vote(
                &client,
                id,
                choice == "yes",
                &signer(&cli.data_dir, key, by_node)?,
            )
            .await
        }
        Command::Stake { amount, key } => {
            move_funds(&client, "stake", amount, &signing_key(&cli.data_dir, key)?).await
        }
        Command::Unstake { amount, key } => {
            move_funds(
                &client,
                "unstake",
                amount,
                &signing_key(&cli.data_dir, key)?,
            )
            .await
        }
        Command::Chat(args) => chat(&client, args).await,
        Command::Receipts(ReceiptsCommand::Show { id }) => {
            let id = Digest::parse_kind(Kind::Receipt, &id).map_err(|e| anyhow!("`{id}`: {e}"))?;
            let receipt = client.receipt(&id).await?;
            receipt
                .verify()
                .context("the node returned a receipt that does not verify")?;
            println!("{}", serde_json::to_string_pretty(&receipt)?);
            Ok(())
        }
    }
}
/// The key file a ledger command signs with: --key, else the operator key
/// in --data-dir (or `vouch up`'s default directory).
/// Who signs a governance transaction: the node (`--by-node`), or a key
/// file ([`signing_key`]).
fn signer(
    data_dir: &Option<PathBuf>,
    key: Option<PathBuf>,
    by_node: bool,
) -> Result<ledger::Signer> {
    Ok(if by_node {
        ledger::Signer::Node
    } else {
        ledger::Signer::Key(signing_key(data_dir, key)?)
    })
}

fn signing_key(data_dir: &Option<PathBuf>, key: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match (key, data_dir) {
        (Some(k), _) => k,
        (None, Some(d)) => d.join("operator.key"),
        (None, None) => default_data_dir()?.join("operator.key"),
    })
}

/// Where `vouch up` keeps its data when no --data-dir is given.
fn default_data_dir() -> Result<PathBuf> {
    Ok(dirs::data_dir()
        .ok_or_else(|| anyhow!("no user data directory on this system; pass --data-dir"))?
        .join("vouch"))
}
/// The admin token to present: --token / $VOUCH_TOKEN, else the token file
/// of a node on this machine (--data-dir, or `vouch up`'s default), read
/// only when --node is a loopback address, so a local node's token is
/// never sent elsewhere.
pub(crate) fn admin_token(cli: &Cli) -> Option<String> {
    if let Some(t) = &cli.token {
        return Some(t.clone());
    }
    if !Client::new(&cli.node).is_loopback() {
        return None;
    }
    let dir = cli.data_dir.clone().or_else(|| default_data_dir().ok())?;
    let text = std::fs::read_to_string(dir.join(vouch_node::config::ADMIN_TOKEN_FILE)).ok()?;
    Some(text.trim().to_string())
}
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("vouch-partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", path.display()))
}
fn random_nonce() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
    }
    hex::encode(b)
}
fn parse_key(s: &str) -> Result<PublicKey> {
    s.parse().map_err(|e| anyhow!("`{s}`: {e}"))
}
/// This machine's clock, in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
/// When the node asked signed `receipt` itself (it answered directly, so
/// this client is the receipt's first receiver), checks that it was
/// signed just now (`Receipt::check_fresh`): an executor must not backdate
/// a receipt to a ledger beacon it already knows. A gateway checked the
/// receipts it relays as they reached it.
async fn check_fresh_if_direct(client: &Client, receipt: &Receipt) -> Result<()> {
    let now = now_ms();
    if client.health().await?.node == receipt.body.node {
        receipt
            .check_fresh(now)
            .context("the receipt was not signed just now")?;
    }
    Ok(())
}
