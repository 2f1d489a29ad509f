//! A validator in a node: Commonware's Tokio runtime on a thread of its
//! own (the node's runtime stays the node's), its authenticated transport
//! on a port of its own, the engine's journal in a directory of the node's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519};
use commonware_p2p::authenticated::{self, discovery};
use commonware_p2p::{Manager as _, max_message_size};
use commonware_runtime::{Quota, Runner, Supervisor as _, tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::{NZU32, NZUsize, ordered::Set};

use crate::block::MAX_BLOCK_BYTES;
use crate::{Chain, ChainConfig, Scheme, namespace};

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
        let chain_id = self.chain.read(|l| l.chain_id().to_string());
        let validators: Set<ed25519::PublicKey> =
            Set::from_iter_dedup(self.config.validators.iter().cloned());
        let max_peers =
            authenticated::peer_set_limit(&validators, &self.config.signer.public_key());
        let payload = crate::simplex::max_payload_size::<
            Scheme,
            commonware_cryptography::sha256::Digest,
        >(validators.len() as u32);
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
            max_peers,
            message,
            NZUsize!(1_000),
        );
        let executor =
            tokio::Runner::new(tokio::Config::new().with_storage_directory(&self.storage));
        executor.start(async move |context| {
            let (mut network, mut oracle) = discovery::Network::new(context.child("network"), p2p);
            oracle.track(0, validators.clone());
            let rate = Quota::per_second(NZU32!(10_000));
            let votes = network.register(0, rate);
            let certificates = network.register(1, rate);
            let resolver = network.register(2, rate);
            let blocks = network.register(3, rate);
            network.start();
            let (_, engine) = crate::start(
                context.child("chain"),
                self.chain,
                self.config,
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
