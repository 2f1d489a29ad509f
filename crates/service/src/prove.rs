//! Proven answers (`verify: "proof"`): a provable model's circuit, compiled
//! at push time and named in its manifest, run on the request and proved
//! ([`vouch_proof`]). The receipt names the engine `vouch-proof` and commits
//! to the proof; the answer carries the proof and the manifest, which a
//! client checks with the circuit file alone.

use std::sync::Arc;

use vouch_proof::bundle::{self, Bundle, CIRCUIT_ROLE};
use vouch_proof::circuit::Circuit;
use vouch_proof::snark::{self, Keys, Prover, VerifyingKey};
use vouch_store::ModelRecord;
use vouch_types::{Determinism, Digest, ModelFormat, TensorMap};

use crate::error::NodeError;
use crate::service::{Answer, Ran, Service, check_nonce};

/// A proven answer: the outputs, the receipt and what a client checks them
/// with.
#[derive(Clone, Debug)]
pub struct Proven {
    /// Outputs and receipt.
    pub answer: Answer,
    /// The proof and the manifest.
    pub bundle: Bundle,
}

impl Service {
    /// The circuit and keys of provable model `record`: its circuit file,
    /// checked to be what its ONNX file compiles to (a publisher's circuit
    /// for another model would prove that model's answers under this
    /// one's name).
    pub async fn prover(&self, record: &ModelRecord) -> Result<Arc<Prover>, NodeError> {
        let id = record.id();
        if let Some(p) = self
            .provers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(p.clone());
        }
        let manifest = &record.signed.manifest;
        let label = record.label();
        let model = manifest
            .file("model")
            .ok_or_else(|| NodeError::InvalidModel(format!("{label} names no model file")))?
            .digest;
        let Some(entry) = manifest.file(CIRCUIT_ROLE).cloned() else {
            if manifest.format != ModelFormat::Onnx {
                return Err(NodeError::InvalidModel(format!(
                    "{label} is not an ONNX model: proofs cover small ONNX models"
                )));
            }
            // Say why: the operators it lacks, or the flag it was pushed
            // without.
            let store = self.store.clone();
            let compiled = self
                .compute(move || Ok(Circuit::from_onnx(&store.read_blob(&model)?)))
                .await?;
            return Err(NodeError::InvalidModel(match compiled {
                Err(e) => format!("{label} is not provable: {e}"),
                Ok(_) => format!(
                    "{label} was pushed without --provable: its manifest names no circuit to prove against; push it again with `vouch model push --provable`"
                ),
            }));
        };
        let store = self.store.clone();
        let prover = self
            .compute(move || {
                let bytes = store.read_blob(&entry.digest)?;
                let circuit = Circuit::decode(&bytes)?;
                let again = Circuit::compile(&store.read_blob(&model)?, &circuit.options())?;
                if again != circuit {
                    return Err(NodeError::InvalidModel(format!(
                        "{label}'s circuit is not what its ONNX file compiles to: its publisher's proofs cannot be trusted, and this node does not prove with it"
                    )));
                }
                let keys = Keys::setup(&circuit)?;
                Ok(Arc::new(Prover { circuit, keys }))
            })
            .await?;
        self.provers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, prover.clone());
        Ok(prover)
    }

    /// The outputs provable model `id`'s circuit gives for `inputs`, without
    /// a proof (what an auditor of a proven answer compares).
    pub async fn run_circuit(
        &self,
        id: &Digest,
        inputs: &TensorMap,
    ) -> Result<TensorMap, NodeError> {
        let prover = self.prover(&self.model_record(id)?).await?;
        let x = bundle::quantized_input(&prover.circuit, inputs)?;
        self.compute(move || {
            let outputs = prover.circuit.evaluate(&x)?;
            Ok(bundle::output_map(&prover.circuit, &outputs))
        })
        .await
    }

    /// [`Service::prove_record`] for registered model `id`.
    pub async fn prove_id(
        &self,
        id: &Digest,
        inputs: TensorMap,
        nonce: String,
    ) -> Result<Proven, NodeError> {
        self.prove_record(self.model_record(id)?, inputs, nonce)
            .await
    }

    /// The verifying key of circuit file `bytes` (digest `digest`), derived
    /// once and kept (the last [`KEPT_VERIFIERS`](crate::service::KEPT_VERIFIERS)):
    /// what this node checks the proofs of others with.
    pub async fn verifying_key(
        &self,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> Result<Arc<VerifyingKey>, NodeError> {
        let kept = self
            .verifiers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest);
        if let Some(vk) = kept {
            return Ok(vk);
        }
        let vk = self
            .compute(move || Ok(Arc::new(VerifyingKey::derive(&Circuit::decode(&bytes)?)?)))
            .await?;
        self.verifiers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*digest, vk.clone());
        Ok(vk)
    }

    /// Runs provable model `record`'s circuit on `inputs`, proves it and
    /// signs a receipt that commits to the proof.
    pub async fn prove_record(
        &self,
        record: ModelRecord,
        inputs: TensorMap,
        nonce: String,
    ) -> Result<Proven, NodeError> {
        check_nonce(&nonce)?;
        let prover = self.prover(&record).await?;
        self.receipts.check()?;
        let x = bundle::quantized_input(&prover.circuit, &inputs)?;
        let signer = self.signer();
        let model = record.id();
        let manifest = record.signed.manifest.encode();
        let circuit = record
            .signed
            .manifest
            .file(CIRCUIT_ROLE)
            .map(|f| f.digest)
            .expect("a prover's manifest names its circuit");
        let label = record.label();
        let started = std::time::Instant::now();
        let proven = self
            .compute(move || {
                let proof = snark::prove(&prover.keys, &prover.circuit, &x)?;
                let answer = signer.sign(
                    Ran {
                        model,
                        inputs: &inputs,
                        outputs: bundle::output_map(&prover.circuit, &proof.outputs),
                        leaves: vec![bundle::leaf(&proof)],
                        engine: bundle::engine_info(),
                        determinism: Determinism::Exact,
                    },
                    nonce,
                )?;
                Ok(Proven {
                    answer,
                    bundle: Bundle {
                        manifest,
                        circuit,
                        proof,
                    },
                })
            })
            .await;
        self.metrics()
            .inference(&label, proven.is_ok(), started.elapsed().as_secs_f64());
        let proven = proven?;
        self.proofs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(proven.answer.receipt.id, Arc::new(proven.bundle.clone()));
        Ok(proven)
    }

    /// The proof behind a proven answer this node gave (one of its last
    /// [`KEPT_PROOFS`](crate::service::KEPT_PROOFS)).
    pub fn proof(&self, id: &Digest) -> Result<Bundle, NodeError> {
        self.proofs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|b| (*b).clone())
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "no proof kept for receipt {id}: this node keeps the proofs of its last {} proven answers",
                    crate::service::KEPT_PROOFS
                ))
            })
    }
}
