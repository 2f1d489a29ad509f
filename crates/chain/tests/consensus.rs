//! Four validators on Commonware's deterministic runtime and simulated
//! network: they finalize the same blocks, apply the same transactions and
//! reach the same state root; with one validator cut off the rest go on,
//! with two they halt, and once linked again they resume without a fork.

use std::time::Duration;

use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::simulated::{Config, Link, Network, Oracle};
use commonware_runtime::{Clock, Quota, Runner, Supervisor as _, deterministic};
use commonware_utils::{NZU32, NZUsize, probability};
use vouch_chain::{Chain, ChainConfig, Committed, block::MAX_BLOCK_BYTES};
use vouch_ledger::{Genesis, Params, Tx, TxBody};
use vouch_types::SecretKey;

const CHAIN: &str = "vouch-test";
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

fn account(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32])
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        params: Params::default(),
        accounts: (0..4).map(|i| (account(i).public(), 1_000)).collect(),
        operators: vec![],
    }
}

fn link() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        success_rate: probability!(1.0),
    }
}

/// A simulated network of `peers`, started.
async fn simulated(
    context: &deterministic::Context,
    peers: &[ed25519::PublicKey],
) -> Oracle<ed25519::PublicKey, deterministic::Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        Config {
            max_size: (MAX_BLOCK_BYTES + 1024) as u32,
            max_peers_per_set: std::num::NonZeroUsize::new(peers.len()).unwrap(),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        peers.to_vec(),
    )
    .await;
    network.start();
    oracle
}

/// Starts the validator `key` of `validators` over `chain`, its four
/// channels registered on the simulated network.
async fn start_validator(
    context: deterministic::Context,
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    key: &ed25519::PrivateKey,
    validators: &[ed25519::PublicKey],
    chain: Chain,
    partition: String,
) -> Chain {
    let control = oracle.control(key.public_key());
    let channel = async |c| control.register(c, QUOTA).await.unwrap();
    let (votes, certificates, resolver, blocks) = (
        channel(0).await,
        channel(1).await,
        channel(2).await,
        channel(3).await,
    );
    let (chain, _) = vouch_chain::start(
        context,
        chain,
        ChainConfig {
            signer: key.clone(),
            validators: validators.to_vec(),
            partition,
            leader_timeout: Duration::from_secs(1),
            empty_block_interval: Duration::from_millis(200),
        },
        oracle.control(key.public_key()),
        votes,
        certificates,
        resolver,
        blocks,
    );
    chain
}

/// A transfer of `amount` from `account(from)` to `account(3)`.
fn pay(from: u8, nonce: u64, amount: u64) -> Vec<u8> {
    let to = account(3).public();
    Tx::sign(
        CHAIN,
        &account(from),
        nonce,
        TxBody::Transfer { to, amount },
    )
    .encode()
}

/// Each of `count` transactions went into one block only, and was applied:
/// none was proposed again while its block waited to be applied (and
/// refused there as a replay).
fn applied_once(chain: &Chain, count: usize) {
    let outcomes: Vec<_> = chain
        .committed(1)
        .into_iter()
        .flat_map(|c| c.outcomes)
        .collect();
    assert_eq!(outcomes.len(), count, "{outcomes:?}");
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
}

/// Links (or unlinks) every ordered pair within `keys` (a pair already
/// linked stays so).
async fn links(
    oracle: &mut Oracle<ed25519::PublicKey, deterministic::Context>,
    keys: &[ed25519::PublicKey],
    on: bool,
) {
    for a in keys {
        for b in keys {
            if a != b {
                if on {
                    match oracle.add_link(a.clone(), b.clone(), link()).await {
                        Ok(()) | Err(commonware_p2p::simulated::Error::LinkExists) => {}
                        Err(e) => panic!("{e}"),
                    }
                } else {
                    oracle.remove_link(a.clone(), b.clone()).await.unwrap();
                }
            }
        }
    }
}

/// Waits (in simulated time) until `f` holds for every chain.
async fn until(
    context: &deterministic::Context,
    chains: &[Chain],
    what: &str,
    f: impl Fn(&Chain) -> bool,
) {
    for _ in 0..600 {
        if chains.iter().all(&f) {
            return;
        }
        context.sleep(Duration::from_millis(100)).await;
    }
    let heights: Vec<u64> = chains.iter().map(height).collect();
    let outcomes: Vec<_> = chains[0]
        .committed(1)
        .into_iter()
        .filter(|c| !c.outcomes.is_empty())
        .map(|c| (c.height, c.outcomes))
        .collect();
    panic!("timed out waiting for {what}: heights {heights:?}, transactions applied {outcomes:?}");
}

fn height(chain: &Chain) -> u64 {
    chain.read(|l| l.height())
}

/// Every validator applied the same block at each height, with the same
/// state after it.
fn agree(chains: &[Chain]) {
    let histories: Vec<Vec<Committed>> = chains.iter().map(|c| c.committed(1)).collect();
    let shortest = histories.iter().map(Vec::len).min().unwrap();
    assert!(shortest > 0, "no block applied");
    for h in &histories {
        assert_eq!(h[..shortest], histories[0][..shortest]);
        for (i, c) in h.iter().enumerate() {
            assert_eq!(c.height, i as u64 + 1, "heights run without gaps");
        }
    }
}

#[test]
fn four_validators_agree_go_on_with_one_down_halt_with_two_and_resume() {
    // Each seed orders the simulated network's deliveries differently.
    for seed in 0..4 {
        run(seed);
    }
}

fn run(seed: u64) {
    run_with(seed, None);
}

/// Runs the scenario; with `dir`, each validator keeps its applied blocks
/// in `dir/validator-I.redb`. Returns each validator's height and state
/// root at the end.
fn run_with(seed: u64, dir: Option<&std::path::Path>) -> Vec<(u64, [u8; 32])> {
    let executor = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    executor.start(|context| async move {
        let keys: Vec<ed25519::PrivateKey> = (0..4).map(ed25519::PrivateKey::from_seed).collect();
        let publics: Vec<ed25519::PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let mut oracle = simulated(&context, &publics).await;
        links(&mut oracle, &publics, true).await;
        let mut chains = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let chain = match dir {
                Some(dir) => {
                    Chain::open(&genesis(), &dir.join(format!("validator-{i}.redb"))).unwrap()
                }
                None => Chain::new(&genesis()),
            };
            let context = context.child("validator").with_attribute("index", i);
            let partition = format!("validator-{i}");
            chains.push(start_validator(context, &oracle, key, &publics, chain, partition).await);
        }

        // Transactions submitted to two validators are applied everywhere.
        chains[0].submit(pay(0, 0, 100)).unwrap();
        chains[2].submit(pay(1, 0, 250)).unwrap();
        // A bad one is refused at the door, saying why.
        let mut forged = pay(2, 0, 999);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(chains[1].submit(forged).is_err());
        until(&context, &chains, "both transfers everywhere", |c| {
            c.read(|l| l.account(&account(3).public()).balance) == 1_350
        })
        .await;
        until(&context, &chains, "ten blocks", |c| height(c) >= 10).await;
        agree(&chains);
        applied_once(&chains[0], 2);

        // One validator cut off: the other three go on.
        let cut = &publics[3..];
        for a in &publics[..3] {
            oracle.remove_link(a.clone(), cut[0].clone()).await.unwrap();
            oracle.remove_link(cut[0].clone(), a.clone()).await.unwrap();
        }
        let at = height(&chains[0]);
        until(
            &context,
            &chains[..3],
            "blocks without one validator",
            |c| height(c) >= at + 5,
        )
        .await;

        // Two cut off: no block is finalized.
        for a in &publics[..2] {
            oracle
                .remove_link(a.clone(), publics[2].clone())
                .await
                .unwrap();
            oracle
                .remove_link(publics[2].clone(), a.clone())
                .await
                .unwrap();
        }
        let stalled: Vec<u64> = chains.iter().map(height).collect();
        context.sleep(Duration::from_secs(2)).await;
        let settled: Vec<u64> = chains.iter().map(height).collect();
        context.sleep(Duration::from_secs(20)).await;
        assert!(
            settled
                .iter()
                .zip(chains.iter().map(height))
                .all(|(a, b)| *a == b),
            "blocks were finalized with two of four validators cut off: {stalled:?} -> {settled:?}"
        );

        // Linked again: every validator catches up to the same chain.
        links(&mut oracle, &publics, true).await;
        let top = settled.iter().max().copied().unwrap();
        until(&context, &chains, "blocks after the network heals", |c| {
            height(c) >= top + 5
        })
        .await;
        agree(&chains);
        chains
            .iter()
            .map(|c| c.read(|l| (l.height(), l.state_root())))
            .collect()
    })
}

/// A validator that stops keeps what it applied: opened again, its chain
/// is at the same height with the same state. A store from another
/// genesis, or one cut short, is refused with the reason.
#[test]
fn applied_blocks_survive_a_restart_and_a_damaged_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ended = run_with(7, Some(dir.path()));
    for (i, (height, root)) in ended.iter().enumerate() {
        let path = dir.path().join(format!("validator-{i}.redb"));
        let chain = Chain::open(&genesis(), &path).unwrap();
        assert_eq!(
            chain.read(|l| (l.height(), l.state_root())),
            (*height, *root)
        );
        assert_eq!(
            chain.read(|l| l.account(&account(3).public()).balance),
            1_350
        );
    }
    drop(ended);
    let path = dir.path().join("validator-0.redb");
    let mut other = genesis();
    other.chain_id = "another-chain".into();
    let err = Chain::open(&other, &path).err().expect("another genesis");
    assert!(
        err.to_string().contains("starts from another genesis"),
        "{err}"
    );
    // A file cut short (a disk that lost its tail) is refused, saying
    // which file.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    match Chain::open(&genesis(), &path) {
        Err(e) => assert!(e.to_string().contains("chain store"), "{e}"),
        Ok(chain) => panic!(
            "a damaged store opened at height {}",
            chain.read(|l| l.height())
        ),
    }
}

/// A lone validator leads every view, so it proposes on blocks not yet
/// applied: a transaction in one of them is not proposed again (where it
/// would be refused as a replay, and its sender told so).
#[test]
fn a_lone_validator_proposes_each_transaction_once() {
    let executor = deterministic::Runner::timed(Duration::from_secs(120));
    executor.start(|context| async move {
        let key = ed25519::PrivateKey::from_seed(0);
        let oracle = simulated(&context, &[key.public_key()]).await;
        let chain = Chain::new(&genesis());
        let chain = start_validator(
            context.child("validator"),
            &oracle,
            &key,
            &[key.public_key()],
            chain,
            "lone".into(),
        )
        .await;
        for nonce in 0..3 {
            chain.submit(pay(0, nonce, 1)).unwrap();
        }
        let chains = [chain];
        until(&context, &chains, "the transfers", |c| {
            c.read(|l| l.account(&account(3).public()).balance) == 1_003
        })
        .await;
        until(&context, &chains, "more blocks", |c| height(c) >= 10).await;
        applied_once(&chains[0], 3);
    });
}
