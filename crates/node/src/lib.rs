//! A Vouch node, whole: the three layers it is built of, under the names
//! the CLI, the tests and the benchmarks use.
//!
//! - `vouch-service` ([`service`], [`llm`], [`external`], ...): the local
//!   service: hub, receipted inference, LLM generation, embeddings. No
//!   peers, no HTTP.
//! - `vouch-network` ([`network`], [`route`], [`audit`]): the network
//!   layer; its [`Node`] holds the service.
//! - `vouch-http` ([`http`], [`openai`], [`guard`], [`openapi`]): the HTTP
//!   layer on top; [`serve`] runs it.
//!
//! Each layer uses only those below it; the compiler enforces it, since
//! each is its own crate.

pub use vouch_http::{guard, http, openai, openapi, serve};
pub use vouch_network::{
    Fetch, FetchState, LlmQuorum, NetworkModel, Node, PeerRecord, audit, ledger, llm_pool, network,
    route,
};
pub use vouch_p2p::{self as p2p, P2pConfig};
pub use vouch_service::{
    DEFAULT_LLM_UBATCH, NodeConfig, NodeError, PushOptions, cache, config, error, external,
    keyfile, llm, metrics, samples, service,
};
