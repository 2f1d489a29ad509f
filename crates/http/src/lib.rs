//! A Vouch node's HTTP layer, on top of the network layer
//! (`vouch-network`) and the local service (`vouch-service`): the API
//! routes ([`http::router`]), the OpenAI-compatible API, the chat UI, the
//! OpenAPI document, Prometheus metrics, and the guard in front of the
//! operator's routes. It talks to the layers below only through their
//! public APIs, and [`serve`] runs the router on a listener.

#![recursion_limit = "256"]

pub mod error;
pub mod guard;
pub mod http;
pub mod ledger;
pub mod openai;
pub mod openapi;
pub mod rate;
mod serve;

pub use serve::serve;
