//! A Vouch node's local service: the model hub, inference that signs a
//! receipt for every answer, the receipt log, LLM generation and
//! embeddings, external engines and the loaded-model cache.
//!
//! This is the bottom layer of a node. It knows nothing of peers or of
//! HTTP: the network layer (`vouch-network`) holds a [`Service`] and
//! hears of its work through [`Hooks`]; the HTTP layer (`vouch-http`)
//! sits on top of both.

pub mod cache;
pub mod config;
pub mod error;
pub mod external;
pub mod keyfile;
pub mod llm;
pub mod metrics;
pub mod prove;
mod receipt_log;
pub mod samples;
pub mod service;
mod workers;

pub use config::{DEFAULT_LLM_UBATCH, NodeConfig};
pub use error::NodeError;
pub use service::{Hooks, PushOptions, Service};
