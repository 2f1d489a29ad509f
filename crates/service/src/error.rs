//! Service errors, each with a stable code and an HTTP status.

use vouch_engine::EngineError;
use vouch_store::StoreError;

/// What a node operation can fail with.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The request is malformed (bad JSON, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The inputs do not fit the model.
    #[error("{0}")]
    InvalidInput(String),
    /// An uploaded model cannot be served.
    #[error("{0}")]
    InvalidModel(String),
    /// An uploaded model uses operators the engine lacks.
    #[error("{0}")]
    UnsupportedOperator(String),
    /// No such model, receipt or blob.
    #[error("{0}")]
    NotFound(String),
    /// Name and version already hold other content.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// A stored blob failed its digest check.
    #[error("{0}")]
    Corrupt(String),
    /// Execution failed on valid-looking inputs.
    #[error("{0}")]
    InferenceFailed(String),
    /// The disk or database failed.
    #[error("{0}")]
    Storage(String),
    /// The disk is full.
    #[error("{0}")]
    DiskFull(String),
    /// A bug or an unexpected condition.
    #[error("{0}")]
    Internal(String),
    /// The network or a peer cannot do it now.
    #[error("{0}")]
    Unavailable(String),
    /// The operators asked did not agree.
    #[error("{0}")]
    NoQuorum(String),
    /// An operator action without the admin token.
    #[error("{0}")]
    Unauthorized(String),
    /// A request from another site, or for a host name this node is not.
    #[error("{0}")]
    Forbidden(String),
    /// The node charges for this request and its voucher is missing, bad,
    /// or too low.
    #[error("{0}")]
    PaymentRequired(String),
    /// The client's escrow on the ledger does not cover its voucher.
    #[error("{0}")]
    InsufficientFunds(String),
    /// A request field this node does not apply: refused, not ignored.
    #[error("{message}")]
    UnsupportedParameter {
        /// The field.
        param: String,
        /// What to change.
        message: String,
    },
}

impl NodeError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::BadRequest(_) => "bad_request",
            NodeError::InvalidInput(_) => "invalid_input",
            NodeError::InvalidModel(_) => "invalid_model",
            NodeError::UnsupportedOperator(_) => "unsupported_operator",
            NodeError::NotFound(_) => "not_found",
            NodeError::Conflict(_) => "version_exists",
            NodeError::TooLarge(_) => "payload_too_large",
            NodeError::Corrupt(_) => "blob_corrupted",
            NodeError::InferenceFailed(_) => "inference_failed",
            NodeError::Storage(_) => "storage_error",
            NodeError::DiskFull(_) => "disk_full",
            NodeError::Internal(_) => "internal",
            NodeError::Unavailable(_) => "unavailable",
            NodeError::NoQuorum(_) => "no_quorum",
            NodeError::Unauthorized(_) => "unauthorized",
            NodeError::Forbidden(_) => "forbidden",
            NodeError::PaymentRequired(_) => "payment_required",
            NodeError::InsufficientFunds(_) => "insufficient_funds",
            NodeError::UnsupportedParameter { .. } => "unsupported_parameter",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            NodeError::BadRequest(_)
            | NodeError::InvalidInput(_)
            | NodeError::UnsupportedParameter { .. } => 400,
            NodeError::Unauthorized(_) => 401,
            NodeError::PaymentRequired(_) | NodeError::InsufficientFunds(_) => 402,
            NodeError::Forbidden(_) => 403,
            NodeError::NotFound(_) => 404,
            NodeError::Conflict(_) => 409,
            NodeError::TooLarge(_) => 413,
            NodeError::InvalidModel(_)
            | NodeError::UnsupportedOperator(_)
            | NodeError::InferenceFailed(_) => 422,
            NodeError::DiskFull(_) => 507,
            NodeError::Unavailable(_) => 503,
            NodeError::NoQuorum(_) => 502,
            NodeError::Corrupt(_) | NodeError::Storage(_) | NodeError::Internal(_) => 500,
        }
    }
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> NodeError {
        match &e {
            StoreError::Corrupt { .. } => NodeError::Corrupt(e.to_string()),
            StoreError::MissingBlob(_) => NodeError::NotFound(e.to_string()),
            StoreError::VersionTaken { .. } => NodeError::Conflict(e.to_string()),
            StoreError::Io { source, .. } | StoreError::RegistryIo(source)
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                NodeError::DiskFull(format!("{e}; free disk space and retry"))
            }
            _ => NodeError::Storage(e.to_string()),
        }
    }
}

impl From<EngineError> for NodeError {
    fn from(e: EngineError) -> NodeError {
        match &e {
            EngineError::Input(_) => NodeError::InvalidInput(e.to_string()),
            EngineError::UnsupportedOps { .. } => NodeError::UnsupportedOperator(e.to_string()),
            EngineError::Malformed { .. } | EngineError::ExternalData(_) | EngineError::Load(_) => {
                NodeError::InvalidModel(e.to_string())
            }
            EngineError::Run(_) => NodeError::InferenceFailed(e.to_string()),
            EngineError::Busy(_) => NodeError::Unavailable(e.to_string()),
            _ => NodeError::Internal(e.to_string()),
        }
    }
}

impl From<vouch_proof::ProofError> for NodeError {
    fn from(e: vouch_proof::ProofError) -> NodeError {
        match e {
            vouch_proof::ProofError::Unsupported(m) | vouch_proof::ProofError::Model(m) => {
                NodeError::InvalidModel(m)
            }
            vouch_proof::ProofError::Input(m) => NodeError::InvalidInput(m),
            e @ vouch_proof::ProofError::Invalid(_) => NodeError::BadRequest(e.to_string()),
            e => NodeError::Internal(e.to_string()),
        }
    }
}
