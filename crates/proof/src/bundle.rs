//! What a proven answer carries, and the whole check a verifier runs on it.
//!
//! A proven answer's receipt names the engine [`ENGINE`]; its trace
//! commitment is a one-leaf Merkle tree over the proof ([`commitment`]).
//! The [`Bundle`] beside it holds the model's manifest (whose digest is the
//! receipt's model id, and which names the circuit file) and the proof. With
//! the circuit file, the request's inputs and the returned outputs, anyone
//! checks it ([`check`]): no model file, no node.

use serde::{Deserialize, Serialize};
use vouch_types::blob::BlobHasher;
use vouch_types::digest::{Digest, Kind};
use vouch_types::manifest::Manifest;
use vouch_types::receipt::{EngineInfo, Receipt, TraceCommitment};
use vouch_types::tensor::{DType, Tensor, TensorMap};

use crate::ProofError;
use crate::circuit::{Circuit, VERSION};
use crate::snark::{Keys, Proof, VerifyingKey, verify};

/// The engine name of proven answers.
pub const ENGINE: &str = "vouch-proof";

/// The role of the circuit file in a provable model's manifest.
pub const CIRCUIT_ROLE: &str = "circuit";

/// The engine receipts of proven answers name.
pub fn engine_info() -> EngineInfo {
    EngineInfo {
        name: ENGINE.into(),
        version: format!("circuit-{VERSION}+spartan-nova-snark-0.76"),
    }
}

/// The proof's digest: a trace leaf over its output count, outputs (16
/// bytes each, little-endian two's complement) and proof bytes.
pub fn leaf(proof: &Proof) -> Digest {
    let mut bytes = Vec::with_capacity(8 + proof.outputs.len() * 16 + proof.snark.len());
    bytes.extend_from_slice(&(proof.outputs.len() as u64).to_le_bytes());
    for v in &proof.outputs {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(&proof.snark);
    Digest::of(Kind::TraceLeaf, &bytes)
}

/// The trace commitment a proven answer's receipt carries.
pub fn commitment(proof: &Proof) -> TraceCommitment {
    TraceCommitment {
        root: vouch_types::merkle::root(&[leaf(proof)]),
        len: 1,
    }
}

/// The blob digest of a circuit file, as a manifest names it.
pub fn circuit_digest(bytes: &[u8]) -> Digest {
    BlobHasher::table_of(bytes).root()
}

/// What comes with a proven answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The model's canonical manifest bytes: their digest is the receipt's
    /// model id, and they name the circuit.
    #[serde(with = "crate::b64")]
    pub manifest: Vec<u8>,
    /// The circuit file's blob digest (as the manifest names it), to fetch
    /// it by: `GET /v1/hub/blobs/{circuit}` on any node with the model.
    pub circuit: Digest,
    /// The proof.
    pub proof: Proof,
}

/// What a check established.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The circuit checked against.
    pub circuit: Circuit,
    /// The model's manifest.
    pub manifest: Manifest,
}

/// One tensor's float32 values, by name.
fn floats<'a>(map: &'a TensorMap, name: &str, what: &str) -> Result<&'a Tensor, ProofError> {
    let t = map
        .get(name)
        .ok_or_else(|| ProofError::Input(format!("the {what} hold no tensor `{name}`")))?;
    if t.dtype() != DType::F32 {
        return Err(ProofError::Input(format!(
            "{what} `{name}` must be float32"
        )));
    }
    Ok(t)
}

/// The float32 values of the circuit's input in `inputs`, checked for
/// name, type and shape.
pub fn input_values(circuit: &Circuit, inputs: &TensorMap) -> Result<Vec<f32>, ProofError> {
    if inputs.len() != 1 {
        return Err(ProofError::Input(format!(
            "a proven model takes one input, `{}`; got {}",
            circuit.input.name,
            inputs.len()
        )));
    }
    let t = floats(inputs, &circuit.input.name, "inputs")?;
    if t.shape() != circuit.input.shape.as_slice() {
        return Err(ProofError::Input(format!(
            "input `{}` has shape {:?}; the circuit takes {:?}",
            circuit.input.name,
            t.shape(),
            circuit.input.shape
        )));
    }
    Ok(t.to_f64_vec().into_iter().map(|v| v as f32).collect())
}

/// The integers the circuit takes for `inputs`: its one input, checked for
/// name and shape, quantized.
pub fn quantized_input(circuit: &Circuit, inputs: &TensorMap) -> Result<Vec<i128>, ProofError> {
    circuit.quantize_input(&input_values(circuit, inputs)?)
}

/// The outputs a circuit's integer outputs stand for, as a node returns them.
pub fn output_map(circuit: &Circuit, outputs: &[i128]) -> TensorMap {
    let mut map = TensorMap::new();
    let t = Tensor::from_f32(circuit.output.shape.clone(), &circuit.dequantize(outputs))
        .expect("the circuit's output shape holds its outputs");
    map.insert(circuit.output.name.clone(), t);
    map
}

/// Checks a proven answer end to end: the receipt's signature, that it
/// names the bundle's manifest, the proof, these inputs and outputs; that
/// the manifest names this circuit; that the outputs are what the proof's
/// integers stand for; and the proof itself, under the key derived from
/// the circuit (or `vk`, derived before from the same circuit).
pub fn check(
    receipt: &Receipt,
    bundle: &Bundle,
    circuit_bytes: &[u8],
    inputs: &TensorMap,
    outputs: &TensorMap,
    vk: Option<&VerifyingKey>,
) -> Result<Checked, ProofError> {
    let checked = bind(receipt, bundle, circuit_bytes, inputs, outputs)?;
    answer_checks(&checked.circuit, bundle, inputs, outputs, vk)?;
    Ok(checked)
}

/// The first half of [`check`]: what binds the answer to its signer and
/// its model. The receipt's signature, its engine, that it names the
/// bundle's manifest, the proof, these inputs and outputs, and that the
/// manifest names this circuit, which decodes. Whoever fails here is not
/// the executor's answer (or not its model's circuit); whatever fails
/// after it, in [`answer_checks`], the executor signed.
pub fn bind(
    receipt: &Receipt,
    bundle: &Bundle,
    circuit_bytes: &[u8],
    inputs: &TensorMap,
    outputs: &TensorMap,
) -> Result<Checked, ProofError> {
    let bad = |s: String| ProofError::Invalid(s);
    receipt
        .verify()
        .map_err(|e| bad(format!("the receipt: {e}")))?;
    if receipt.body.engine.name != ENGINE {
        return Err(bad(format!(
            "the receipt is for an answer the engine `{}` ran, not a proven one",
            receipt.body.engine.name
        )));
    }
    let manifest = Manifest::decode(&bundle.manifest)
        .map_err(|e| bad(format!("the bundle's manifest does not decode: {e}")))?;
    if manifest.id() != receipt.body.model {
        return Err(bad(format!(
            "the bundle's manifest is model {}; the receipt names {}",
            manifest.id(),
            receipt.body.model
        )));
    }
    let named = manifest.file(CIRCUIT_ROLE).ok_or_else(|| {
        bad(format!(
            "model {} names no circuit: it is not provable",
            manifest.id()
        ))
    })?;
    let digest = circuit_digest(circuit_bytes);
    if named.digest != digest || bundle.circuit != digest {
        return Err(bad(format!(
            "the circuit file is {digest}; the model's manifest names {}",
            named.digest
        )));
    }
    if receipt.body.trace != commitment(&bundle.proof) {
        return Err(bad("the receipt commits to another proof".into()));
    }
    receipt
        .verify_inputs(inputs)
        .map_err(|e| bad(format!("the inputs: {e}")))?;
    receipt
        .verify_outputs(outputs)
        .map_err(|e| bad(format!("the outputs: {e}")))?;
    let circuit = Circuit::decode(circuit_bytes)?;
    Ok(Checked { circuit, manifest })
}

/// The second half of [`check`], over what [`bind`] bound: the inputs fit
/// the circuit, the outputs are what the proof's integers stand for, and
/// the proof verifies (under `vk` if given, derived from `circuit`).
pub fn answer_checks(
    circuit: &Circuit,
    bundle: &Bundle,
    inputs: &TensorMap,
    outputs: &TensorMap,
    vk: Option<&VerifyingKey>,
) -> Result<(), ProofError> {
    let x = quantized_input(circuit, inputs)?;
    if output_map(circuit, &bundle.proof.outputs) != *outputs {
        return Err(ProofError::Invalid(
            "the outputs are not what the proof's integer outputs stand for".into(),
        ));
    }
    match vk {
        Some(vk) => verify(vk, &x, &bundle.proof),
        None => verify(Keys::setup(circuit)?.verifying_key(), &x, &bundle.proof),
    }
}
