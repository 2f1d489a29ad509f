//! Service configuration. Every field has a default: no flag is required.

use std::net::SocketAddr;
use std::path::PathBuf;

use vouch_types::{Digest, EngineInfo, Kind};

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the store, registry and operator key live.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Largest accepted inference request body, bytes.
    pub max_request_bytes: usize,
    /// Largest accepted model upload, bytes.
    pub max_upload_bytes: u64,
    /// Memory budget of the loaded-model cache, bytes.
    pub cache_bytes: usize,
    /// Inferences run at once (the blocking pool's size).
    pub workers: usize,
    /// Hash every step's outputs into the receipt's trace commitment.
    pub trace: bool,
    /// Fetch and serve models when a peer asks (`vouch model pin --replicas`).
    pub accept_pins: bool,
    /// Largest share of the requests this node routes that one operator may
    /// take while others can serve them (0 to 1).
    pub max_share: f64,
    /// Share (0 to 1) of other operators' gossiped receipts, for models
    /// this node serves, that it re-executes to audit them.
    pub audit_rate: f64,
    /// How long this node keeps a request's inputs and outputs for
    /// auditors.
    pub retention: std::time::Duration,
    /// Price per inference this node asks, in the ledger's smallest unit
    /// (announced, and stated in every receipt).
    pub price: u64,
    /// A deliberate fault in every answer (demonstrations and tests of the
    /// network's checks only): a perturbed trace step for ONNX models, the
    /// runner-up token from generated token `step` (or 0) on for LLMs.
    pub fault: Option<vouch_engine::Fault>,
    /// With the `Substitute` LLM fault: the GGUF file this node generates
    /// with while its receipts name the model requested.
    pub llm_substitute: Option<PathBuf>,
    /// A deliberate lie in LLM receipts (demonstrations and tests only):
    /// the accelerator backend they state (`+NAME` after the engine
    /// version) though llama.cpp runs on this node's CPU, which buys the
    /// accelerator rule's leniency (`--fault llm-claim=NAME`).
    pub llm_claim: Option<String>,
    /// Models served from external OpenAI-compatible servers (their
    /// receipts say the model is not attested).
    pub externals: Vec<ExternalModel>,
    /// Sequences each loaded language model decodes together; more serve
    /// more chats at once, each costing a context's KV cache in memory.
    pub llm_slots: usize,
    /// Most tokens (prompt + answer) per sequence of a language model (the
    /// model's training context when smaller).
    pub llm_context: usize,
    /// Tokens llama.cpp computes at once (`GgufEngine::ubatch`).
    pub llm_ubatch: usize,
    /// CPU threads llama.cpp decodes one token per sequence with (0:
    /// `vouch_engine::gguf::default_threads`).
    pub llm_threads: usize,
    /// CPU threads an ONNX inference that runs alone splits over (0: one
    /// per core; `vouch_engine::onnx::set_threads`).
    pub onnx_threads: usize,
    /// The admin token operator actions over HTTP must present (`None`:
    /// the one in `data_dir/admin-token`, created on first start).
    pub admin_token: Option<String>,
    /// Host names (beside IP addresses and `localhost`) that requests may
    /// name in their `Host` header: the names this node is reached by.
    /// Any other is refused, so a page on another site cannot reach the
    /// node by rebinding its own name to the node's address.
    pub allowed_hosts: Vec<String>,
    /// Operators this node admits beside itself (until the ledger says who
    /// is staked): only they may form quorums with it, referee its audits,
    /// or settle a dispute it cannot re-execute.
    pub admitted: Vec<vouch_types::PublicKey>,
    /// Evidence records (quorum disagreements, disputes) kept; the oldest
    /// go first.
    pub max_evidence: u64,
    /// Most texts in one embeddings request.
    pub max_embedding_inputs: usize,
    /// Most tokens, all texts together, in one embeddings request.
    pub max_embedding_tokens: usize,
    /// How long receipts (and their trace leaves) are kept; `None` keeps
    /// them all.
    pub receipt_retention: Option<std::time::Duration>,
    /// How long an external engine may go without sending a byte (and
    /// take to connect, at most 10 s) before its answer fails.
    pub external_timeout: std::time::Duration,
    /// Generations that may wait for a language model's slots; one more is
    /// refused (503) rather than queued without end.
    pub llm_queue: usize,
    /// HTTP connections served at once; beyond them a new connection is
    /// answered 503 and closed.
    pub max_connections: usize,
    /// HTTP connections served at once from any one address; beyond them a
    /// new connection from it is answered 503 (others are still served).
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: std::time::Duration,
    /// How long a request body may go without sending a byte.
    pub body_idle_timeout: std::time::Duration,
    /// Bytes per second a request body must average after its first ten
    /// seconds (0: no minimum).
    pub min_body_rate: u64,
}

/// The admin token's file name in a data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// [`NodeConfig::llm_ubatch`]'s default: `vouch_engine::gguf::UBATCH_TOKENS`.
pub const DEFAULT_LLM_UBATCH: u16 = vouch_engine::gguf::UBATCH_TOKENS as u16;

impl NodeConfig {
    /// Defaults for a node whose data lives in `data_dir`.
    pub fn new(data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_request_bytes: 64 << 20,
            max_upload_bytes: 4 << 30,
            cache_bytes: 2 << 30,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            trace: true,
            accept_pins: false,
            max_share: 0.5,
            audit_rate: 0.05,
            retention: std::time::Duration::from_secs(600),
            price: 0,
            fault: None,
            llm_substitute: None,
            llm_claim: None,
            externals: Vec::new(),
            llm_slots: 4,
            llm_context: 4096,
            llm_ubatch: usize::from(DEFAULT_LLM_UBATCH),
            llm_threads: 0,
            onnx_threads: 0,
            admin_token: None,
            allowed_hosts: Vec::new(),
            admitted: Vec::new(),
            max_evidence: 10_000,
            max_embedding_inputs: 2048,
            max_embedding_tokens: 300_000,
            llm_queue: 16,
            external_timeout: std::time::Duration::from_secs(120),
            receipt_retention: None,
            max_connections: 256,
            max_connections_per_ip: 64,
            header_timeout: std::time::Duration::from_secs(30),
            body_idle_timeout: std::time::Duration::from_secs(60),
            min_body_rate: 1024,
        }
    }
}

/// A model served from an external OpenAI-compatible server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalModel {
    /// Name clients ask for on this node.
    pub name: String,
    /// The server's API base, e.g. `http://127.0.0.1:8081/v1`.
    pub url: String,
    /// Model name the server knows it by.
    pub remote: String,
}

impl ExternalModel {
    /// Parses `NAME=URL` or `NAME=URL#REMOTE` (the remote model name
    /// defaults to NAME).
    pub fn parse(spec: &str) -> Result<ExternalModel, String> {
        let (name, rest) = spec.split_once('=').ok_or_else(|| {
            format!("external model `{spec}` should read NAME=URL or NAME=URL#REMOTE_MODEL")
        })?;
        let (url, remote) = rest.split_once('#').unwrap_or((rest, name));
        let url = url.trim_end_matches('/');
        if name.is_empty() || remote.is_empty() {
            return Err(format!(
                "external model `{spec}` has an empty name; write NAME=URL"
            ));
        }
        if url.starts_with("https://") {
            return Err(format!(
                "external model `{name}`: `{url}` is https, and this build has no TLS; reach the server over http:// (on this machine or a private network), or put a TLS-terminating proxy beside this node"
            ));
        }
        if !url.starts_with("http://") {
            return Err(format!(
                "external model `{name}`: `{url}` is not an http URL; give the server's API base, e.g. http://127.0.0.1:8081/v1"
            ));
        }
        Ok(ExternalModel {
            name: name.into(),
            url: url.into(),
            remote: remote.into(),
        })
    }

    /// The model id in its receipts: a digest of the endpoint, not of any
    /// weights.
    pub fn id(&self) -> Digest {
        let mut bytes = b"vouch external v1\0".to_vec();
        bytes.extend_from_slice(self.url.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(self.remote.as_bytes());
        Digest::of(Kind::Model, &bytes)
    }

    /// The engine named in its receipts.
    pub fn engine(&self) -> EngineInfo {
        EngineInfo {
            name: vouch_types::receipt::UNATTESTED.into(),
            version: format!("{}#{}", self.url, self.remote),
        }
    }
}
