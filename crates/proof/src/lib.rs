//! Zero-knowledge proofs for small ONNX models (`"verify": "proof"`).
//!
//! A model whose operators are all covered ([`circuit::SUPPORTED`]) is
//! compiled once into a [`Circuit`]: fixed-point integer weights, and a
//! rank-1 constraint system ([`r1cs`]) in which every linear layer is free
//! and each Relu or max costs one bit decomposition. A node runs the
//! circuit on the quantized input, and proves with Spartan (nova-snark's
//! `DirectSNARK`, an inner-product argument over the Pallas curve: no
//! trusted setup, keys anyone derives from the circuit alone) that the
//! stated integer outputs are the circuit applied to the stated integer
//! inputs. A verifier needs the circuit (bound to the model id by the
//! model's manifest), the input and the output: not the model file, not a
//! node.

pub mod bundle;
pub mod circuit;
pub mod dispute;
pub mod r1cs;
pub mod snark;

mod ints {
    //! i128 values as decimal strings: JSON numbers lose them beyond 2^53
    //! in most readers.
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[i128], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.to_string()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i128>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

pub use bundle::{Bundle, check};
pub use circuit::Circuit;
pub use dispute::ProofDispute;
pub use snark::{Keys, Proof, Prover, VerifyingKey};

/// Why a model cannot be proved, or a proof does not check.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ProofError {
    /// The model uses what a circuit does not cover.
    #[error("{0}")]
    Unsupported(String),
    /// The model or circuit file cannot be read.
    #[error("{0}")]
    Model(String),
    /// The input does not fit the circuit.
    #[error("{0}")]
    Input(String),
    /// The proof does not verify, or cannot be read.
    #[error("the proof does not verify: {0}")]
    Invalid(String),
    /// The proof system failed while proving.
    #[error("proving failed: {0}")]
    Prover(String),
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        STANDARD
            .decode(String::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}
