//! [`Node`]: the local service with the network layer around it.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock, RwLock};

use futures_util::future::BoxFuture;
use vouch_service::{Hooks, NodeConfig, NodeError, Service};
use vouch_types::llm::Transcript;
use vouch_types::{PublicKey, Receipt};

use crate::state::Network;

/// A node: the local [`Service`] it holds (and derefs to, for the
/// service's own operations), the network it joins, and the operators it
/// admits. The service never holds the node: it hears of nothing above
/// it except through [`Hooks`], which the node implements.
pub struct Node {
    service: Arc<Service>,
    pub(crate) network: OnceLock<Arc<Network>>,
    /// Operators this node admits beside itself ([`Node::admitted`]).
    admitted: RwLock<BTreeSet<PublicKey>>,
    /// The ledger chain it validates ([`Node::start_chain`]).
    pub(crate) chain: OnceLock<vouch_chain::Chain>,
    /// The vouchers it holds ([`Node::charge`]).
    pub(crate) payments: crate::payments::Payments,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("service", &self.service)
            .field("joined", &self.network.get().is_some())
            .finish()
    }
}

impl std::ops::Deref for Node {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

impl Node {
    /// Opens the node's store and operator key under `config.data_dir`;
    /// [`Node::join`] then joins a network.
    pub fn open(config: NodeConfig) -> Result<Arc<Node>, NodeError> {
        Ok(Node::over(Service::open(config)?))
    }

    /// A node over `service`, not yet on a network.
    pub fn over(service: Arc<Service>) -> Arc<Node> {
        let admitted = service.config().admitted.iter().copied().collect();
        let node = Arc::new(Node {
            service,
            network: OnceLock::new(),
            admitted: RwLock::new(admitted),
            chain: OnceLock::new(),
            payments: Default::default(),
        });
        let hooks: std::sync::Weak<dyn Hooks> = Arc::downgrade(&node) as _;
        node.service.set_hooks(hooks);
        node
    }

    /// The local service.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// The operators this node admits. Where it runs a ledger chain: the
    /// staked operators (every key each ever signed with), as the ledger's
    /// own dispute checks see them, so that draws here and there agree.
    /// Otherwise: itself, those configured, and those admitted since
    /// ([`Node::admit`]). Only they form quorums with it, referee its
    /// audits, or settle a dispute it cannot re-execute; peer ids are
    /// free, admission is not.
    pub fn admitted(&self) -> BTreeSet<PublicKey> {
        if let Some(chain) = self.chain.get() {
            return chain.read(|l| l.staked_keys());
        }
        let mut set = self
            .admitted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        set.insert(self.public_key());
        set
    }

    /// Whether `key` is admitted ([`Node::admitted`]).
    pub fn is_admitted(&self, key: &PublicKey) -> bool {
        if let Some(chain) = self.chain.get() {
            return chain.read(|l| {
                l.operator_of(key)
                    .and_then(|op| l.operators().get(&op))
                    .is_some_and(|op| op.stake >= l.params().min_stake)
            });
        }
        *key == self.public_key()
            || self
                .admitted
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(key)
    }

    /// Admits operator `key`.
    pub fn admit(&self, key: PublicKey) {
        self.admitted
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
    }

    /// No longer admits operator `key` (one configured or admitted since):
    /// an operator that left should not stay in the referee draw, where
    /// each dead one drawn costs a dispute one of its few tries.
    pub fn expel(&self, key: &PublicKey) {
        self.admitted
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

impl Hooks for Node {
    fn models_changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.announce())
    }

    fn generated<'a>(&'a self, receipt: &'a Receipt, transcript: Transcript) -> BoxFuture<'a, ()> {
        Box::pin(self.after_generation(receipt, transcript))
    }
}
