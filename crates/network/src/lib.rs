//! A Vouch node's network layer, over its local service (`vouch-service`)
//! and the peer transport (`vouch-p2p`): joining and announcing, model
//! replication, routing with failover, quorums, sampled audits with
//! bisection disputes, and LLM generation across nodes.
//!
//! [`Node`] holds the [`Service`](vouch_service::Service) and is never
//! held by it. The HTTP layer (`vouch-http`) sits on top.

#![recursion_limit = "256"]

mod appeals;
pub mod audit;
mod audit_pay;
pub mod ledger;
mod llm_audit;
mod llm_net;
pub mod llm_pool;
pub mod network;
mod node;
pub mod payments;
mod providers;
mod replicate;
pub mod route;
mod state;
mod trace;

pub use llm_net::LlmQuorum;
pub use node::Node;
pub use state::{Fetch, FetchState, NetworkModel, PeerRecord};
