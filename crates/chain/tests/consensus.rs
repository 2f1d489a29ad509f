//! Validators on Commonware's deterministic runtime and simulated network:
//! four finalize the same blocks, apply the same transactions and reach
//! the same state root across epochs; with one validator cut off the rest
//! go on, with two they halt, and once linked again they resume without a
//! fork. The validator set follows stake from one epoch to the next, a
//! validator that missed whole epochs catches up, and a validator that
//! signs conflicting votes is slashed on the evidence its peers report.

use std::time::Duration;

use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::simplex::types::{Notarize, Proposal, Vote};
use commonware_cryptography::{Signer as _, ed25519, sha256::Digest};
use commonware_p2p::simulated::{Config, Link, Network, Oracle};
use commonware_p2p::utils::mux::Muxer;
use commonware_p2p::{Receiver as _, Recipients, Sender as _};
use commonware_runtime::{
    Clock, Quota, Runner, Spawner as _, Storage as _, Supervisor as _, deterministic,
};
use commonware_utils::{NZU32, NZUsize, probability};
use vouch_chain::{Chain, ChainConfig, Committed, Scheme, block::MAX_BLOCK_BYTES};
use vouch_ledger::{Genesis, Offer, Params, Tx, TxBody};
use vouch_types::SecretKey;

const CHAIN: &str = "vouch-test";
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

fn account(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32])
}

/// Validator `i`'s operator key.
fn operator(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[100 + i; 32])
}

/// Its consensus key: the same seed.
fn signer(i: u8) -> ed25519::PrivateKey {
    vouch_chain::consensus_signer(&operator(i))
}

/// Four accounts and four validators (operators staked 10,000 each, with
/// 50,000 to spend), epochs of four blocks.
fn genesis() -> Genesis {
    genesis_of(&[10_000; 4], 4)
}

/// Operators with `stakes`, and the four accounts; epochs of
/// `epoch_length` blocks, at most four validators.
fn genesis_of(stakes: &[u64], epoch_length: u64) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        params: Params {
            epoch_length,
            max_validators: 4,
            ..Params::default()
        },
        accounts: (0..4)
            .map(|i| (account(i).public(), 1_000))
            .chain((0..stakes.len() as u8).map(|i| (operator(i).public(), 50_000)))
            .collect(),
        operators: stakes
            .iter()
            .enumerate()
            .map(|(i, stake)| (operator(i as u8).public(), *stake, Offer::default()))
            .collect(),
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

/// Starts the validator `key` over `chain`, its four channels registered
/// on the simulated network; the ledger says in which epochs it votes.
async fn start_validator(
    context: deterministic::Context,
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    key: &ed25519::PrivateKey,
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
            partition,
            leader_timeout: Duration::from_secs(1),
            empty_block_interval: Duration::from_millis(200),
        },
        oracle.control(key.public_key()),
        oracle.manager(),
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
        let keys: Vec<ed25519::PrivateKey> = (0..4).map(signer).collect();
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
            chains.push(start_validator(context, &oracle, key, chain, partition).await);
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
        assert!(
            chains[0].read(|l| l.epoch()) >= 2,
            "epochs changed on the way"
        );
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
        let key = signer(0);
        let oracle = simulated(&context, &[key.public_key()]).await;
        let chain = Chain::new(&genesis_of(&[10_000], 4));
        let chain = start_validator(
            context.child("validator"),
            &oracle,
            &key,
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

/// A transaction signed by validator `i`'s operator key with its next nonce
/// as `chain` sees it.
fn operator_tx(chain: &Chain, i: u8, body: TxBody) -> Vec<u8> {
    let nonce = chain.read(|l| l.account(&operator(i).public()).nonce);
    Tx::sign(CHAIN, &operator(i), nonce, body).encode()
}

/// Cuts validator `who` off from (or links it to) every other of `all`.
async fn isolate(
    oracle: &mut Oracle<ed25519::PublicKey, deterministic::Context>,
    all: &[ed25519::PublicKey],
    who: &ed25519::PublicKey,
    cut: bool,
) {
    for other in all.iter().filter(|k| *k != who) {
        for (a, b) in [(who, other), (other, who)] {
            use commonware_p2p::simulated::Error;
            match if cut {
                oracle.remove_link(a.clone(), b.clone()).await
            } else {
                oracle.add_link(a.clone(), b.clone(), link()).await
            } {
                // Cut or linked already, from the other's side.
                Ok(()) | Err(Error::LinkMissing | Error::LinkExists) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// Five operators, four validators. Operator 4 bonds into the set and
/// operator 3 unbonds out of it; from the next epoch on, the new set makes
/// blocks with operators 0 and 3 cut off (the old set could not: two of
/// its four). Linked again, both catch up across the epochs they missed.
#[test]
fn the_validator_set_follows_stake_and_a_validator_that_missed_epochs_catches_up() {
    let executor = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(3)
            .with_timeout(Some(Duration::from_secs(900))),
    );
    executor.start(|context| async move {
        let genesis = genesis_of(&[10_000, 10_000, 10_000, 10_000, 1_000], 4);
        let publics: Vec<ed25519::PublicKey> = (0..5).map(|i| signer(i).public_key()).collect();
        let mut oracle = simulated(&context, &publics).await;
        links(&mut oracle, &publics, true).await;
        let mut chains = Vec::new();
        for i in 0..5u8 {
            let context = context.child("validator").with_attribute("index", i);
            let chain = Chain::new(&genesis);
            chains
                .push(start_validator(context, &oracle, &signer(i), chain, format!("v{i}")).await);
        }
        let first: std::collections::BTreeSet<_> =
            chains[0].read(|l| l.epoch_validators(0).unwrap().iter().copied().collect());
        assert_eq!(first, (0..4).map(|i| operator(i).public()).collect());
        until(&context, &chains, "blocks", |c| height(c) >= 2).await;
        chains[0]
            .submit(operator_tx(&chains[0], 4, TxBody::Bond { amount: 30_000 }))
            .unwrap();
        chains[0]
            .submit(operator_tx(
                &chains[0],
                3,
                TxBody::Unbond { amount: 10_000 },
            ))
            .unwrap();
        let new_set = |c: &Chain| {
            c.read(|l| {
                let set = l.epoch_validators(l.epoch()).unwrap();
                set.contains(&operator(4).public()) && !set.contains(&operator(3).public())
            })
        };
        until(&context, &chains, "the set to follow stake", new_set).await;
        agree(&chains);

        isolate(&mut oracle, &publics, &publics[0], true).await;
        isolate(&mut oracle, &publics, &publics[3], true).await;
        let live = [chains[1].clone(), chains[2].clone(), chains[4].clone()];
        let (at, epoch) = live[0].read(|l| (l.height(), l.epoch()));
        until(
            &context,
            &live,
            "blocks from the new set, across epochs",
            |c| c.read(|l| l.height() >= at + 10 && l.epoch() >= epoch + 2),
        )
        .await;
        assert!(height(&chains[0]) < at + 10 && height(&chains[3]) < at + 10);

        isolate(&mut oracle, &publics, &publics[0], false).await;
        isolate(&mut oracle, &publics, &publics[3], false).await;
        let top = live.iter().map(height).max().unwrap();
        until(&context, &chains, "the cut-off two to catch up", |c| {
            height(c) >= top + 2
        })
        .await;
        agree(&chains);
        // Each validator keeps the journals of its last two epochs only.
        let now = chains[1].read(|l| l.epoch());
        let current = context.scan(&format!("v1-{now}")).await;
        assert!(
            current.is_ok_and(|b| !b.is_empty()),
            "epoch {now}'s journal"
        );
        let first = context.scan("v1-0").await;
        assert!(
            first.as_ref().map_or(true, Vec::is_empty),
            "epoch 0's journal was kept: {first:?}"
        );
    });
}

/// A validator that notarizes two blocks in a round, on every round it
/// hears of, to every peer: what `simplex` reports as evidence.
async fn conflicter(
    context: &deterministic::Context,
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    i: u8,
    set: &[vouch_types::PublicKey],
) {
    let key = signer(i);
    let control = oracle.control(key.public_key());
    let (sender, receiver) = control.register(0, QUOTA).await.unwrap();
    // The other channels, held open.
    let mut others = Vec::new();
    for c in 1..4 {
        others.push(control.register(c, QUOTA).await.unwrap());
    }
    let (mux, mut handle) = Muxer::new(context.child("mux"), sender, receiver);
    mux.start();
    let (mut sender, mut receiver) = handle.register(0).await.unwrap();
    let scheme = Scheme::signer(
        &vouch_ledger::evidence::namespace(CHAIN, b""),
        vouch_ledger::evidence::participants(set),
        key,
    )
    .unwrap();
    context.child("conflicter").spawn(move |_| async move {
        let _others = others;
        while let Ok((_, message)) = receiver.recv().await {
            let Ok(Vote::Notarize(n)) = Vote::<Scheme, Digest>::decode(message) else {
                continue;
            };
            for payload in [n.proposal.payload, Digest([0xAB; 32])] {
                let p = Proposal::new(n.proposal.round, n.proposal.parent, payload);
                let vote = Vote::<Scheme, Digest>::Notarize(Notarize::sign(&scheme, p).unwrap());
                sender.send(Recipients::All, vote.encode(), true);
            }
        }
    });
}

/// Validator 3 notarizes two blocks per round. The honest three go on,
/// report the evidence, and an `Equivocation` transaction from validator 0
/// slashes validator 3 on every ledger: 10% of its stake, half of that to
/// validator 0.
#[test]
fn a_validator_that_signs_conflicting_votes_is_slashed_on_its_peers_evidence() {
    let executor = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(5)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    executor.start(|context| async move {
        let genesis = genesis_of(&[10_000; 4], 1_000);
        let set: Vec<vouch_types::PublicKey> =
            Chain::new(&genesis).read(|l| l.epoch_validators(0).unwrap().to_vec());
        let publics: Vec<ed25519::PublicKey> = (0..4).map(|i| signer(i).public_key()).collect();
        let mut oracle = simulated(&context, &publics).await;
        links(&mut oracle, &publics, true).await;
        let mut chains = Vec::new();
        for i in 0..3u8 {
            let context = context.child("validator").with_attribute("index", i);
            let chain = Chain::new(&genesis);
            chains
                .push(start_validator(context, &oracle, &signer(i), chain, format!("v{i}")).await);
        }
        conflicter(&context, &oracle, 3, &set).await;

        let mut evidence = Vec::new();
        for _ in 0..600 {
            evidence.extend(chains.iter().flat_map(Chain::take_evidence));
            if !evidence.is_empty() {
                break;
            }
            context.sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !evidence.is_empty(),
            "no validator reported the equivocation"
        );
        let balance = chains[0].read(|l| l.account(&operator(0).public()).balance);
        let tx = operator_tx(
            &chains[0],
            0,
            TxBody::Equivocation {
                evidence: evidence[0].clone(),
            },
        );
        let id = chains[0].submit(tx).unwrap();
        until(&context, &chains, "the equivocator slashed", |c| {
            c.read(|l| l.operators()[&operator(3).public()].slashed) == 1_000
        })
        .await;
        assert_eq!(chains[0].outcome(&id).unwrap().1, Ok(()));
        for c in &chains {
            assert_eq!(
                c.read(|l| l.account(&operator(0).public()).balance),
                balance + 500
            );
        }
        agree(&chains);
    });
}
