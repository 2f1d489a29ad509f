//! A validator in a node: Commonware's Tokio runtime on a thread of its
//! own (the node's runtime stays the node's), its authenticated transport
//! on a port of its own, the engine's journal in a directory of the node's.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use commonware_cryptography::{ChaCha20Poly1305, ed25519};
use commonware_p2p::authenticated::discovery;
use commonware_p2p::max_message_size;
use commonware_p2p::utils::mux;
use commonware_runtime::{Quota, Runner, Supervisor as _, tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::{NZU32, NZUsize};
use vouch_ledger::evidence::namespace;

use crate::block::MAX_BLOCK_BYTES;
use crate::{Chain, ChainConfig, Scheme};

/// Peers one tracked set (an epoch's validators and the operators that
/// follow) may hold, at most.
const MAX_PEERS: usize = 256;
/// Messages per second each peer may send on each channel. With the
/// peers, it sizes the transport's queues, which are allocated up front.
const RATE: u32 = 1_000;

/// Where and with whom a node's validator runs.
pub struct Validator {
    /// The chain, opened from the node's data directory.
    pub chain: Chain,
    /// The engine's settings (the operator's key as its consensus key).
    pub config: ChainConfig,
    /// Where the transport listens.
    pub listen: SocketAddr,
    /// Validators to dial first: key and address.
    pub bootstrappers: Vec<(ed25519::PublicKey, SocketAddr)>,
    /// The engine's journal.
    pub storage: PathBuf,
}

impl Validator {
    /// Starts the validator on a thread of its own and returns at once;
    /// the thread runs for the life of the process.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("vouch-chain".into())
            .spawn(move || self.run())
    }

    fn run(self) {
        // Room for twice the operators registered now (at least 8, at most
        // MAX_PEERS): the network can grow that much before its nodes
        // restart with more.
        let (chain_id, peers) = self.chain.read(|l| {
            let peers = (l.operators().len() * 2).clamp(8, MAX_PEERS);
            (l.chain_id().to_string(), peers)
        });
        // The engines' messages travel behind their epoch's sub-channel
        // number; a set of all those peers sizes them.
        let payload = mux::prefixed(crate::simplex::max_payload_size::<
            Scheme,
            commonware_cryptography::sha256::Digest,
        >(peers as u32));
        let message = max_message_size(&[payload, MAX_BLOCK_BYTES + 1]);
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: self.config.signer.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let bootstrappers = self
            .bootstrappers
            .iter()
            .map(|(key, addr)| (key.clone(), (*addr).into()))
            .collect();
        let build = if self.listen.ip().is_loopback() {
            discovery::Config::local
        } else {
            discovery::Config::recommended
        };
        let p2p = build(
            handshake,
            &namespace(&chain_id, b"\0p2p"),
            self.listen,
            self.listen,
            bootstrappers,
            NonZeroUsize::new(peers).expect("at least 8"),
            message,
            NZUsize!(1_000),
        );
        let executor =
            tokio::Runner::new(tokio::Config::new().with_storage_directory(&self.storage));
        executor.start(async move |context| {
            let (mut network, oracle) = discovery::Network::new(context.child("network"), p2p);
            let rate = Quota::per_second(NZU32!(RATE));
            let votes = network.register(0, rate);
            let certificates = network.register(1, rate);
            let resolver = network.register(2, rate);
            let blocks = network.register(3, rate);
            network.start();
            let (_, engine) = crate::start(
                context.child("chain"),
                self.chain,
                self.config,
                oracle.clone(),
                oracle,
                votes,
                certificates,
                resolver,
                blocks,
            );
            if let Err(e) = engine.await {
                tracing::error!(?e, "the consensus engine stopped");
            }
        });
    }
}
