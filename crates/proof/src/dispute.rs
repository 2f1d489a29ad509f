//! Disputes over proven answers: evidence, checkable by anyone with no
//! model file and no re-execution, that an executor signed a proven answer
//! that does not check.
//!
//! The evidence is what the answer carried: the executor's receipt, the
//! bundle (manifest and proof), the circuit file the manifest names, and
//! the request's inputs and returned outputs. [`bind`](crate::bundle::bind)
//! ties them to the executor's signature and the model id: the receipt
//! names these inputs, these outputs and this proof, and the model's
//! manifest names this circuit. What can fail after that the executor
//! alone signed: outputs that are not what the proof's integers stand for,
//! inputs the circuit cannot take, or a proof that does not verify. An
//! honest node checks all three before it signs, so none is honest
//! variation: the ledger slashes on it with no referee and no appeal
//! (`docs/proofs.md`, Disputes).

use serde::{Deserialize, Serialize};
use vouch_types::receipt::{EngineInfo, Receipt};
use vouch_types::tensor::TensorMap;
use vouch_types::{Digest, PublicKey};

use crate::ProofError;
use crate::bundle::{Bundle, answer_checks, bind, engine_info};
use crate::circuit::Circuit;

/// The most constraints a circuit may have for a dispute over its answers
/// to be judged: every validator derives the circuit's keys to judge it
/// (about 70 µs a constraint on one core, so about 1.2 s at this bound),
/// so a larger one is refused rather than stalling the chain. The MNIST
/// MLP has 2,026.
pub const MAX_JUDGED_CONSTRAINTS: usize = 1 << 14;

/// Evidence that an executor signed a proven answer that does not check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofDispute {
    /// The executor's receipt for the proven answer.
    pub receipt: Receipt,
    /// What the answer carried: the model's manifest and the proof.
    pub bundle: Bundle,
    /// The circuit file the manifest names.
    #[serde(with = "crate::b64")]
    pub circuit: Vec<u8>,
    /// The request's inputs (`TensorMap` canonical encoding).
    #[serde(with = "crate::b64")]
    pub inputs: Vec<u8>,
    /// The outputs the executor returned (`TensorMap` canonical encoding).
    #[serde(with = "crate::b64")]
    pub outputs: Vec<u8>,
}

/// Why a dispute over a proven answer convicts no one.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DisputeError {
    /// The record does not bind its answer to the executor and the model,
    /// or cannot be judged here.
    #[error("not evidence against the executor: {0}")]
    NotEvidence(String),
    /// The answer checks.
    #[error("the proven answer checks: there is nothing to convict")]
    Checks,
}

impl ProofDispute {
    /// The evidence of one proven answer.
    pub fn new(
        receipt: Receipt,
        bundle: Bundle,
        circuit: Vec<u8>,
        inputs: &TensorMap,
        outputs: &TensorMap,
    ) -> ProofDispute {
        ProofDispute {
            receipt,
            bundle,
            circuit,
            inputs: inputs.encode(),
            outputs: outputs.encode(),
        }
    }

    /// The receipt disputed: a proven answer is convicted on once.
    pub fn receipt_id(&self) -> Digest {
        self.receipt.id
    }

    /// The key the executor signed with.
    pub fn executor(&self) -> PublicKey {
        self.receipt.body.node
    }

    /// Judges the evidence: `Ok` with what fails when the executor signed
    /// a proven answer that does not check; otherwise why no one is
    /// convicted. Deterministic, no IO: a ledger's validators all reach
    /// the same verdict.
    pub fn check(&self) -> Result<String, DisputeError> {
        let not = |why: String| DisputeError::NotEvidence(why);
        judged_engine(&self.receipt.body.engine).map_err(not)?;
        let inputs = TensorMap::decode(&self.inputs)
            .map_err(|e| not(format!("the inputs do not decode: {e}")))?;
        let outputs = TensorMap::decode(&self.outputs)
            .map_err(|e| not(format!("the outputs do not decode: {e}")))?;
        let bound = bind(
            &self.receipt,
            &self.bundle,
            &self.circuit,
            &inputs,
            &outputs,
        )
        .map_err(|e| not(e.to_string()))?;
        judged_circuit(&bound.circuit).map_err(not)?;
        match answer_checks(&bound.circuit, &self.bundle, &inputs, &outputs, None) {
            Ok(()) => Err(DisputeError::Checks),
            // Deriving the keys failed: the verifier's trouble, not the
            // executor's.
            Err(ProofError::Prover(e)) => Err(not(format!("the keys could not be derived: {e}"))),
            Err(e) => Ok(e.to_string()),
        }
    }
}

/// Whether disputes over answers of `engine` are judged: a proof of
/// another circuit encoding or proof system may be sound and still fail
/// this verifier, so only this version's are.
fn judged_engine(engine: &EngineInfo) -> Result<(), String> {
    let ours = engine_info();
    if *engine != ours {
        return Err(format!(
            "the receipt names engine {} {}; this verifier judges {} {} only",
            engine.name, engine.version, ours.name, ours.version
        ));
    }
    Ok(())
}

/// Whether disputes over answers of `circuit` are judged: circuits of at
/// most [`MAX_JUDGED_CONSTRAINTS`].
fn judged_circuit(circuit: &Circuit) -> Result<(), String> {
    let constraints = circuit.constraints().map_err(|e| e.to_string())?;
    if constraints > MAX_JUDGED_CONSTRAINTS {
        return Err(format!(
            "the circuit has {constraints} constraints; disputes are judged over circuits of at most {MAX_JUDGED_CONSTRAINTS}"
        ));
    }
    Ok(())
}

/// Whether a dispute over a proven answer that `engine` signed for
/// `circuit` would be judged ([`ProofDispute::check`] refuses the others
/// before judging): what a node asks before it files one, since a refused
/// transaction only costs the chain.
pub fn judgeable(engine: &EngineInfo, circuit: &Circuit) -> Result<(), String> {
    judged_engine(engine)?;
    judged_circuit(circuit)
}
