//! Equivocation evidence: a validator's two consensus votes that no honest
//! validator signs both of, checked by the ledger so that the validator
//! can be slashed (`docs/ledger.md`, Equivocation).
//!
//! The votes are Commonware `simplex`'s (the engine `vouch-chain` runs), so
//! the evidence is the engine's own encoding of its evidence types, behind
//! one tag byte:
//!
//! - `0`: `ConflictingNotarize`: notarize votes for two proposals of one
//!   round;
//! - `1`: `ConflictingFinalize`: finalize votes for two proposals of one
//!   round;
//! - `2`: `NullifyFinalize`: a nullify and a finalize vote in one round.
//!
//! Each vote is an ed25519 signature by the validator at its index in the
//! epoch's validator set (the set sorted by key), over the chain's vote
//! namespace ([`namespace`]). Checking is deterministic: one signature at a
//! time, never a randomized batch.

use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::simplex::types::{
    Activity, Attributable as _, ConflictingFinalize, ConflictingNotarize, NullifyFinalize,
};
use commonware_consensus::{Epochable as _, Viewable as _};
use commonware_cryptography::{ed25519, sha256::Digest as Sha256};
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use rand_core::SeedableRng as _;
use vouch_types::PublicKey;

/// The signing scheme of consensus votes: ed25519, the key kind operators
/// hold, with a validator's operator key as its consensus key.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;

/// The namespace a chain's messages are bound to (votes: `what` empty; the
/// validators' transport: `"\0p2p"`), so that no message of one chain
/// counts on another.
pub fn namespace(chain_id: &str, what: &[u8]) -> Vec<u8> {
    [b"vouch chain\0".as_slice(), chain_id.as_bytes(), what].concat()
}

/// An operator's public key as a consensus public key (the same bytes).
pub fn consensus_key(key: &PublicKey) -> ed25519::PublicKey {
    ed25519::PublicKey::decode(key.as_bytes().to_vec()).expect("a valid ed25519 public key")
}

/// The validator set `keys` as the engine orders it (sorted, without
/// duplicates): a vote's signer is an index into it.
pub fn participants(keys: &[PublicKey]) -> Set<ed25519::PublicKey> {
    Set::from_iter_dedup(keys.iter().map(consensus_key))
}

/// The evidence bytes of an activity the engine reports, if it is evidence
/// of equivocation.
pub fn encode(activity: &Activity<Scheme, Sha256>) -> Option<Vec<u8>> {
    let (tag, body) = match activity {
        Activity::ConflictingNotarize(e) => (0u8, e.encode()),
        Activity::ConflictingFinalize(e) => (1, e.encode()),
        Activity::NullifyFinalize(e) => (2, e.encode()),
        _ => return None,
    };
    Some([&[tag], body.as_ref()].concat())
}

/// What checked evidence proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The epoch of the two votes.
    pub epoch: u64,
    /// Their view.
    pub view: u64,
    /// The validator that signed both (its operator key).
    pub validator: PublicKey,
}

/// Checks `bytes` as evidence against the validator set of its epoch, as
/// `set_of` gives it (`None`: an epoch the ledger does not know or no
/// longer keeps). The error says what is wrong with the evidence.
pub fn check(
    chain_id: &str,
    bytes: &[u8],
    set_of: impl Fn(u64) -> Option<Vec<PublicKey>>,
) -> Result<Equivocation, String> {
    let Some((&tag, body)) = bytes.split_first() else {
        return Err("the evidence is empty".into());
    };
    let malformed = |e: commonware_codec::Error| {
        format!("the evidence does not decode as two conflicting votes of one round: {e}")
    };
    // The signer, epoch and view, and the check of both signatures.
    type Verify = Box<dyn Fn(&Scheme) -> bool>;
    let (signer, epoch, view, verify): (u32, u64, u64, Verify) = match tag {
        0 => {
            let e =
                ConflictingNotarize::<Scheme, Sha256>::decode(body.to_vec()).map_err(malformed)?;
            let at = (e.signer().get(), e.epoch().get(), e.view().get());
            (
                at.0,
                at.1,
                at.2,
                Box::new(move |s| e.verify(&mut rng(), s, &Sequential)),
            )
        }
        1 => {
            let e =
                ConflictingFinalize::<Scheme, Sha256>::decode(body.to_vec()).map_err(malformed)?;
            let at = (e.signer().get(), e.epoch().get(), e.view().get());
            (
                at.0,
                at.1,
                at.2,
                Box::new(move |s| e.verify(&mut rng(), s, &Sequential)),
            )
        }
        2 => {
            let e = NullifyFinalize::<Scheme, Sha256>::decode(body.to_vec()).map_err(malformed)?;
            let at = (e.signer().get(), e.epoch().get(), e.view().get());
            (
                at.0,
                at.1,
                at.2,
                Box::new(move |s| e.verify(&mut rng(), s, &Sequential)),
            )
        }
        other => {
            return Err(format!(
                "evidence kind {other} is unknown: 0 (conflicting notarize), 1 (conflicting finalize) or 2 (nullify and finalize)"
            ));
        }
    };
    let keys = set_of(epoch).ok_or_else(|| {
        format!("the ledger holds no validator set for epoch {epoch} (too old, or not begun)")
    })?;
    let set = participants(&keys);
    let validator = set
        .get(signer as usize)
        .ok_or_else(|| {
            format!(
                "signer {signer} is not in epoch {epoch}'s validator set of {}",
                set.len()
            )
        })?
        .encode();
    let validator = <[u8; 32]>::try_from(validator.as_ref())
        .ok()
        .and_then(|b| PublicKey::from_bytes(&b).ok())
        .ok_or("the signer's key is not an ed25519 key")?;
    if !verify(&Scheme::verifier(&namespace(chain_id, b""), set)) {
        return Err(format!(
            "the votes' signatures do not verify for validator {validator} on chain `{chain_id}`"
        ));
    }
    Ok(Equivocation {
        epoch,
        view,
        validator,
    })
}

/// A generator the engine's verification API takes and single ed25519
/// verification never draws from; seeded, so nothing here is random.
fn rng() -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::from_seed([0; 32])
}
