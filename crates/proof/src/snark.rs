//! The proof system: Spartan as nova-snark implements it
//! (`spartan::direct::DirectSNARK` over `spartan::snark::RelaxedR1CSSNARK`),
//! with Pedersen commitments and an inner-product argument over the Pallas
//! curve. Its keys come from the circuit and public generators alone (no
//! trusted setup), so a verifier derives them from the circuit file.
//!
//! `DirectSNARK` proves a step circuit `z -> F(z)` with `z` and `F(z)`
//! public. Here `z` is the model's input followed by its output, and `F` is
//! the identity whose constraints are the circuit's: the public values are
//! the input and output (twice, as `DirectSNARK` states both sides), and no
//! variable or constraint is spent on padding.

use std::sync::Arc;

use ff::PrimeField;
use nova_snark::frontend::{
    ConstraintSystem, LinearCombination, SynthesisError, num::AllocatedNum,
};
use nova_snark::provider::PallasEngine;
use nova_snark::provider::ipa_pc::{self, EvaluationEngine};
use nova_snark::r1cs::R1CSShape;
use nova_snark::spartan::direct::{DirectSNARK, ProverKey, VerifierKey};
use nova_snark::spartan::snark::{self, RelaxedR1CSSNARK};
use nova_snark::traits::Engine;
use nova_snark::traits::circuit::StepCircuit;
use nova_snark::traits::commitment::{CommitmentEngineTrait, Len};
use serde::{Deserialize, Serialize};

use crate::ProofError;
use crate::circuit::Circuit;
use crate::r1cs::{Lc, R1cs, Var};

type E = PallasEngine;
type F = <E as Engine>::Scalar;
type S = RelaxedR1CSSNARK<E, EvaluationEngine<E>>;
type Snark = DirectSNARK<E, S, Step>;

/// The proof system, as receipts and documents name it.
pub const SYSTEM: &str = "spartan (nova-snark 0.76 DirectSNARK, IPA over Pallas)";

/// The largest proof this code reads.
const MAX_PROOF_BYTES: usize = 1 << 20;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::legacy().with_limit::<{ 64 << 20 }>()
}

/// Keys hold the circuit's matrices and one generator per variable: a
/// CNN's run to tens of MB.
fn key_config() -> impl bincode::config::Config {
    bincode::config::legacy().with_limit::<{ 1 << 30 }>()
}

fn field(v: i128) -> F {
    if v >= 0 {
        F::from_u128(v as u128)
    } else {
        -F::from_u128(v.unsigned_abs())
    }
}

/// The circuit as nova's step circuit: the constraint system, already
/// written, copied into nova's.
#[derive(Clone)]
struct Step {
    r1cs: Arc<R1cs>,
    arity: usize,
}

impl StepCircuit<F> for Step {
    fn arity(&self) -> usize {
        self.arity
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let r = &self.r1cs;
        let inputs = r.inputs.len();
        let aux = r
            .aux
            .iter()
            .enumerate()
            .map(|(i, &v)| cs.alloc(|| format!("aux {i}"), || Ok(field(v))))
            .collect::<Result<Vec<_>, _>>()?;
        let var = |v: Var| match v {
            Var::One => CS::one(),
            Var::In(i) => z[i as usize].get_variable(),
            Var::Out(i) => z[inputs + i as usize].get_variable(),
            Var::Aux(i) => aux[i as usize],
        };
        let lc = |l: &Lc| {
            l.0.iter()
                .fold(LinearCombination::<F>::zero(), |acc, &(v, k)| {
                    acc.add_unsimplified((field(k), var(v)))
                })
        };
        for (n, [a, b, c]) in r.constraints.iter().enumerate() {
            let (a, b, c) = (lc(a), lc(b), lc(c));
            cs.enforce(|| format!("c{n}"), |_| a, |_| b, |_| c);
        }
        Ok(z.to_vec())
    }
}

fn arity(c: &Circuit) -> usize {
    c.input_len() + c.output_len()
}

/// The step's `z`: the input, then the output.
fn step_input(input: &[i128], outputs: &[i128]) -> Vec<F> {
    input.iter().chain(outputs).map(|&v| field(v)).collect()
}

/// The public values in the order the proof states them: `z` and `F(z)`,
/// the same.
fn public_io(input: &[i128], outputs: &[i128]) -> Vec<F> {
    let z = step_input(input, outputs);
    z.iter().chain(&z).copied().collect()
}

/// A circuit's proving key (and its verifying key).
pub struct Keys {
    pk: ProverKey<E, S>,
    vk: VerifyingKey,
    constraints: usize,
}

/// A circuit's verifying key.
pub struct VerifyingKey {
    vk: VerifierKey<E, S>,
    arity: usize,
    inputs: usize,
    outputs: usize,
}

type Ck = <<E as Engine>::CE as CommitmentEngineTrait<E>>::CommitmentKey;
type Dk = <<E as Engine>::CE as CommitmentEngineTrait<E>>::DerandKey;

/// A kept key: every part but the generators the inner-product argument
/// checks against, which follow it uncompressed ([`VerifyingKey::to_bytes`]).
#[derive(Serialize, Deserialize)]
struct KeptKey {
    arity: usize,
    inputs: usize,
    outputs: usize,
    derand: Dk,
    shape: R1CSShape<E>,
    scalar_key: Ck,
    digest: F,
    generators: usize,
}

/// What a stored verifying key starts with: this format's version and the
/// proof system's name, so that a key another version wrote is derived
/// again rather than misread.
fn key_magic() -> Vec<u8> {
    format!("vouch-proof verifying key 2, {SYSTEM}\n").into_bytes()
}

/// The label nova-snark derives the commitment generators from (in
/// `R1CSShape::commitment_key`); a kept key's generators are read back
/// under it.
const GENERATORS_LABEL: &[u8] = b"ck";

impl VerifyingKey {
    /// Derives the verifying key from the circuit alone (most of the time
    /// goes to the public generators).
    pub fn derive(circuit: &Circuit) -> Result<VerifyingKey, ProofError> {
        Ok(Keys::setup(circuit)?.vk)
    }

    /// The key's bytes, to keep: a verifier that reads them back skips the
    /// derivation. Only bytes this verifier derived itself are worth
    /// keeping; a key taken from elsewhere could verify anything.
    ///
    /// The generators are written uncompressed and the key's digest is
    /// kept, so reading the key back costs neither a square root per
    /// generator nor hashing the whole key again: what nova-snark's own
    /// serialization of the key would cost (0.15 s and 30 ms for the MNIST
    /// MLP).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (derand, snark) = self.vk.parts();
        let (ee, shape, digest) = snark.parts();
        let (generators, scalar_key) = ee.parts();
        let kept = KeptKey {
            arity: self.arity,
            inputs: self.inputs,
            outputs: self.outputs,
            derand: derand.clone(),
            shape: shape.clone(),
            scalar_key: scalar_key.clone(),
            digest,
            generators: generators.length(),
        };
        let mut out = key_magic();
        bincode::serde::encode_into_std_write(&kept, &mut out, key_config())
            .expect("a verifying key encodes");
        let mut points = std::io::Cursor::new(out);
        points.set_position(points.get_ref().len() as u64);
        <E as Engine>::CE::save_setup(generators, &mut points).expect("generators write to memory");
        points.into_inner()
    }

    /// Reads back what [`VerifyingKey::to_bytes`] wrote, checking that
    /// each generator is a point of the curve.
    pub fn from_bytes(bytes: &[u8]) -> Result<VerifyingKey, ProofError> {
        let unreadable = |e: &dyn std::fmt::Display| {
            ProofError::Model(format!("the verifying key does not decode: {e}"))
        };
        let body = bytes.strip_prefix(key_magic().as_slice()).ok_or_else(|| {
            ProofError::Model("not a verifying key of this version of vouch-proof".into())
        })?;
        let (kept, read): (KeptKey, usize) =
            bincode::serde::decode_from_slice(body, key_config()).map_err(|e| unreadable(&e))?;
        let rest = &body[read..];
        // The generators, uncompressed: a head, then the blinding
        // generator and the rest, 64 bytes each.
        let size = (kept.generators.checked_add(1))
            .and_then(|n| n.checked_mul(64))
            .and_then(|n| n.checked_add(12));
        if !kept.generators.is_power_of_two() || size != Some(rest.len()) {
            return Err(unreadable(&format!(
                "{} bytes do not hold {} generators",
                rest.len(),
                kept.generators
            )));
        }
        let generators = <E as Engine>::CE::load_setup(
            &mut std::io::Cursor::new(rest),
            GENERATORS_LABEL,
            kept.generators,
        )
        .map_err(|e| unreadable(&e))?;
        let ee = ipa_pc::VerifierKey::<E>::from_parts(generators, kept.scalar_key);
        let snark =
            snark::VerifierKey::<E, EvaluationEngine<E>>::from_parts(ee, kept.shape, kept.digest);
        Ok(VerifyingKey {
            vk: VerifierKey::from_parts(kept.derand, snark),
            arity: kept.arity,
            inputs: kept.inputs,
            outputs: kept.outputs,
        })
    }
}

impl Keys {
    /// Derives the keys from the circuit alone.
    pub fn setup(circuit: &Circuit) -> Result<Keys, ProofError> {
        let r = circuit.synthesize(&vec![0; circuit.input_len()])?;
        let constraints = r.constraints.len();
        let step = Step {
            r1cs: Arc::new(r),
            arity: arity(circuit),
        };
        let (pk, vk) = Snark::setup(step).map_err(|e| ProofError::Prover(e.to_string()))?;
        Ok(Keys {
            pk,
            vk: VerifyingKey {
                vk,
                arity: arity(circuit),
                inputs: circuit.input_len(),
                outputs: circuit.output_len(),
            },
            constraints,
        })
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.vk
    }

    /// The constraints of the circuit.
    pub fn constraints(&self) -> usize {
        self.constraints
    }
}

/// A circuit with its keys: what a node proves with.
pub struct Prover {
    /// The circuit.
    pub circuit: Circuit,
    /// Its keys.
    pub keys: Keys,
}

/// A proof and the exact integer outputs it states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The circuit's outputs, integers at its output scale.
    #[serde(with = "crate::ints")]
    pub outputs: Vec<i128>,
    /// The proof's bytes.
    #[serde(with = "crate::b64")]
    pub snark: Vec<u8>,
}

/// Runs `circuit` on the integer `input` and proves the outputs.
pub fn prove(keys: &Keys, circuit: &Circuit, input: &[i128]) -> Result<Proof, ProofError> {
    let r = circuit.synthesize(input)?;
    debug_assert_eq!(r.unsatisfied(), None);
    let outputs = r.outputs.clone();
    let step = Step {
        r1cs: Arc::new(r),
        arity: keys.vk.arity,
    };
    let z = step_input(input, &outputs);
    let snark = Snark::prove(&keys.pk, step, &z).map_err(|e| ProofError::Prover(e.to_string()))?;
    let snark = bincode::serde::encode_to_vec(&snark, bincode_config())
        .map_err(|e| ProofError::Prover(e.to_string()))?;
    Ok(Proof { outputs, snark })
}

/// Checks that `proof` shows the circuit behind `vk` maps the integer
/// `input` to the proof's outputs.
pub fn verify(vk: &VerifyingKey, input: &[i128], proof: &Proof) -> Result<(), ProofError> {
    if input.len() != vk.inputs || proof.outputs.len() != vk.outputs {
        return Err(ProofError::Invalid(format!(
            "the circuit has {} inputs and {} outputs; the proof states {} and {}",
            vk.inputs,
            vk.outputs,
            input.len(),
            proof.outputs.len()
        )));
    }
    if proof.snark.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Invalid(format!(
            "{} bytes is not a proof",
            proof.snark.len()
        )));
    }
    let (snark, read): (Snark, usize) =
        bincode::serde::decode_from_slice(&proof.snark, bincode_config())
            .map_err(|e| ProofError::Invalid(format!("unreadable: {e}")))?;
    if read != proof.snark.len() {
        return Err(ProofError::Invalid("trailing bytes after the proof".into()));
    }
    snark
        .verify(&vk.vk, &public_io(input, &proof.outputs))
        .map_err(|e| ProofError::Invalid(e.to_string()))
}
