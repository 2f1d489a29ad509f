//! Spike (issue 25): one validator of a local chain on commonware-consensus
//! `simplex` with ed25519 votes, over commonware's authenticated p2p on
//! loopback, its consensus journal in `--storage`. Wired as the published
//! `commonware-log` example wires it; the payload is a digest the leader
//! makes (what a ledger block's hash would be).
//!
//!   bft-commonware --me I --port P --validators N [--bootstrap J@ADDR] --storage DIR
//!
//! Prints one JSON line per finalized view: the view, the payload and, on
//! the validator that proposed it, the milliseconds from its proposal to its
//! own sight of the finalization (commit latency).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use commonware_actor::Feedback;
use commonware_consensus::simplex::types::{Activity, Context};
use commonware_consensus::simplex::{self, ForwardPolicy, Plan, SkipPolicy, elector::RoundRobin};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter, Viewable};
use commonware_cryptography::{
    ChaCha20Poly1305, Hasher, Sha256, Signer as _, ed25519, sha256::Digest,
};
use commonware_p2p::authenticated::{self, discovery};
use commonware_p2p::{Manager as _, max_message_size};
use commonware_parallel::Sequential;
use commonware_runtime::{Quota, Runner, Supervisor as _, buffer::paged::CacheRef, tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::channel::oneshot;
use commonware_utils::{NZDuration, NZU16, NZU32, NZUsize, TryCollect, ordered::Set, union};

type Scheme = simplex::scheme::ed25519::Scheme;

const NAMESPACE: &[u8] = b"_VOUCH_SPIKE_LEDGER";

/// Digests this validator proposed, and when.
type Proposed = Arc<Mutex<HashMap<Digest, Instant>>>;

/// The application: proposes a fresh digest, accepts every digest (a
/// ledger would check the block behind it here).
#[derive(Clone)]
struct App {
    proposed: Proposed,
    me: u64,
    count: Arc<Mutex<u64>>,
}

impl Automaton for App {
    type Digest = Digest;
    type Context = Context<Digest, ed25519::PublicKey>;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let n = {
            let mut c = self.count.lock().unwrap();
            *c += 1;
            *c
        };
        let view = context.round.view().get();
        let digest = Sha256::hash(&[
            &self.me.to_le_bytes(),
            &n.to_le_bytes(),
            &view.to_le_bytes(),
        ]);
        self.proposed.lock().unwrap().insert(digest, Instant::now());
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(digest);
        rx
    }

    async fn verify(&mut self, _: Self::Context, _: Digest) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(true);
        rx
    }
}

impl CertifiableAutomaton for App {}

impl Relay for App {
    type Digest = Digest;
    type PublicKey = ed25519::PublicKey;
    type Plan = Plan<ed25519::PublicKey>;

    fn broadcast(&mut self, _: Digest, _: Self::Plan) -> Feedback {
        // A ledger sends the block behind the digest here.
        Feedback::Ok
    }
}

/// Prints each finalization, with the commit latency where we proposed.
#[derive(Clone)]
struct Log {
    proposed: Proposed,
}

impl Reporter for Log {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let view = activity.view().get();
        if let Activity::Finalization(f) = activity {
            let payload = f.proposal.payload;
            let latency = self
                .proposed
                .lock()
                .unwrap()
                .remove(&payload)
                .map(|t| t.elapsed().as_secs_f64() * 1e3);
            println!(
                "{}",
                serde_json::json!({"view": view, "payload": format!("{payload:?}"), "latency_ms": latency})
            );
        }
        Feedback::Ok
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let me: u64 = arg("--me").expect("--me I").parse().unwrap();
    let port: u16 = arg("--port").expect("--port P").parse().unwrap();
    let n: u64 = arg("--validators").expect("--validators N").parse().unwrap();
    let storage = arg("--storage").expect("--storage DIR");
    let signer = ed25519::PrivateKey::from_seed(me);
    let validators: Set<_> = (0..n)
        .map(|i| ed25519::PrivateKey::from_seed(i).public_key())
        .try_collect()
        .expect("distinct keys");
    let bootstrappers: Vec<_> = arg("--bootstrap")
        .map(|b| {
            let (who, addr) = b.split_once('@').expect("--bootstrap J@ADDR");
            let key = ed25519::PrivateKey::from_seed(who.parse().unwrap()).public_key();
            vec![(key, addr.parse::<SocketAddr>().unwrap().into())]
        })
        .unwrap_or_default();
    let max_peers = authenticated::peer_set_limit(&validators, &signer.public_key());
    let payload = simplex::max_payload_size::<Scheme, Digest>(n as u32);
    let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let p2p = discovery::Config::local(
        Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: signer.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        ),
        &union(NAMESPACE, b"_P2P"),
        address,
        address,
        bootstrappers,
        max_peers,
        max_message_size(&[payload]),
        NZUsize!(1_000),
    );
    let executor = tokio::Runner::new(tokio::Config::new().with_storage_directory(storage));
    executor.start(async |context| {
        let (mut network, mut oracle) = discovery::Network::new(context.child("network"), p2p);
        oracle.track(0, validators.clone());
        let rate = Quota::per_second(NZU32!(10_000));
        let votes = network.register(0, rate);
        let certificates = network.register(1, rate);
        let resolver = network.register(2, rate);
        let scheme = Scheme::signer(&union(NAMESPACE, b"_CONSENSUS"), validators, signer)
            .expect("our key is a validator");
        let proposed = Proposed::default();
        let app = App {
            proposed: proposed.clone(),
            me,
            count: Arc::default(),
        };
        let genesis = Sha256::hash(&[b"vouch genesis".as_slice()]);
        let mailbox: NonZeroUsize = NZUsize!(1024);
        let engine = simplex::Engine::new(
            context.child("engine"),
            simplex::Config {
                scheme,
                elector: RoundRobin::<Sha256>::default(),
                blocker: oracle,
                automaton: app.clone(),
                relay: app,
                reporter: Log { proposed },
                partition: String::from("ledger"),
                mailbox_size: mailbox,
                epoch: Epoch::zero(),
                floor: simplex::Floor::Genesis(genesis),
                replay_buffer: NZUsize!(1024 * 1024),
                write_buffer: NZUsize!(1024 * 1024),
                leader_timeout: Duration::from_secs(1),
                certification_timeout: Duration::from_secs(2),
                timeout_retry: Duration::from_secs(10),
                fetch_timeout: NZDuration!(Duration::from_secs(1)),
                fetch_retry_delay: Duration::from_millis(100),
                view_retention: ViewDelta::new(10),
                skip: SkipPolicy::Enabled {
                    timeout: Duration::from_secs(11),
                    budget: simplex::SkipBudget::Participants,
                },
                page_cache: CacheRef::new(NZU16!(16_384), NZUsize!(10_000)),
                strategy: Sequential,
                forward: ForwardPolicy::Disabled,
                track_historical_votes: false,
            },
        );
        network.start();
        engine.start(votes, certificates, resolver).await.ok();
    });
}
