//! Signed transactions and payment vouchers, and their canonical bytes
//! (`docs/ledger.md`).

use vouch_types::encode::{DecodeError, Reader, Sink};
use vouch_types::{PublicKey, SecretKey, Signature};

/// The transaction format this code reads and writes.
pub const TX_VERSION: u8 = 1;
/// The most bytes a transaction may take; larger ones are refused before
/// they are decoded.
pub const MAX_TX_BYTES: usize = 1 << 20;
/// The most vouchers one `Redeem` may settle.
pub const MAX_VOUCHERS: usize = 10_000;
/// The most addresses an operator may list, and the longest string a
/// transaction may carry (contact, address).
pub const MAX_ADDRESSES: usize = 16;
/// See [`MAX_ADDRESSES`].
pub const MAX_STRING: usize = 256;
/// The most models an operator's offer may declare.
pub const MAX_MODELS: usize = 256;
/// The most parameter changes and treasury spends, together, one proposal
/// carries.
pub const MAX_CHANGES: usize = 16;

/// What a transaction's signature covers: this prefix, then its unsigned
/// bytes.
const TX_DOMAIN: &[u8] = b"vouch ledger tx v1\0";
/// What a voucher's signature covers: this prefix, then its fields.
const VOUCHER_DOMAIN: &[u8] = b"vouch ledger voucher v1\0";

/// A transaction's id: BLAKE3 (derive-key `vouch v1 ledger tx`) of its
/// signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub [u8; 32]);

impl std::fmt::Display for TxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tx:{}", hex::encode(self.0))
    }
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    /// The chain it is for; another chain's transaction is refused, so a
    /// signature cannot be replayed across chains.
    pub chain_id: String,
    /// The account that signs it and pays for it.
    pub signer: PublicKey,
    /// The signer's next nonce (0 for its first transaction): each nonce is
    /// used once, in order.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
    /// The signer's signature over [`Tx::signing_bytes`].
    pub signature: Signature,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxBody {
    /// Moves `amount` from the signer's balance to `to`'s.
    Transfer {
        /// The receiving account.
        to: PublicKey,
        /// How much.
        amount: u64,
    },
    /// Moves `amount` of the signer's balance into its escrow, from which
    /// operators redeem its vouchers.
    Deposit {
        /// How much.
        amount: u64,
    },
    /// Starts moving `amount` of the signer's escrow back to its balance; it
    /// arrives after the escrow delay, so that an operator holding the
    /// signer's vouchers has time to redeem them.
    Withdraw {
        /// How much.
        amount: u64,
    },
    /// Registers the signer as an operator (no stake yet).
    Register(Offer),
    /// Changes a registered operator's offer.
    SetOffer(Offer),
    /// Moves `amount` of an operator's balance into its stake.
    Bond {
        /// How much.
        amount: u64,
    },
    /// Starts moving `amount` of an operator's stake back to its balance;
    /// it arrives after the unbonding delay, and can be slashed until then.
    Unbond {
        /// How much.
        amount: u64,
    },
    /// Makes `key` the operator's receipt-signing key from the next block;
    /// receipts signed with its earlier keys stay attributable to it.
    RotateKey {
        /// The new key.
        key: PublicKey,
    },
    /// Records the signer as the publisher of model `model` (a `model:`
    /// digest's 32 bytes).
    PublishModel {
        /// The model id.
        model: [u8; 32],
    },
    /// Settles the signer's (an operator's) vouchers: each pays the
    /// operator what it signs beyond what was redeemed before, from the
    /// client's escrow.
    Redeem {
        /// The newest voucher of each client (a later one of the same client
        /// supersedes an earlier one).
        vouchers: Vec<Voucher>,
    },
    /// A dispute record (the JSON of a tensor `Dispute`, an `LlmDispute`,
    /// a `PoolDispute` or a `ProofDispute`) that convicts an executor: it
    /// is slashed, the auditor (for a proof dispute, the signer) rewarded.
    Dispute {
        /// The record's bytes.
        record: Vec<u8>,
    },
    /// Proposes parameter changes and treasury spends (`governance`).
    Propose {
        /// The parameters to set, by name.
        changes: Vec<(String, u64)>,
        /// Payments from the treasury: (to, amount).
        spends: Vec<(PublicKey, u64)>,
        /// Software releases allowed (true) or retired (false): (version,
        /// the binary's BLAKE3 digest or zeros, allowed).
        releases: Vec<(String, [u8; 32], bool)>,
    },
    /// Votes on a proposal with the signer's bonded stake.
    Vote {
        /// The proposal's number.
        proposal: u64,
        /// For (true) or against.
        yes: bool,
    },
    /// Evidence that a validator signed two conflicting consensus votes
    /// (`evidence`): the validator is slashed, the signer rewarded.
    Equivocation {
        /// The evidence's bytes ([`crate::evidence`]).
        evidence: Vec<u8>,
    },
    /// The party a dispute convicted appeals, within `appeal_window`
    /// blocks, to a panel the next block's beacon draws.
    Appeal {
        /// The disputed executor receipt's id (its 32 bytes).
        receipt: [u8; 32],
    },
    /// A panel member's verdict on an appeal: who computed wrongly.
    AppealVote {
        /// The disputed executor receipt's id (its 32 bytes).
        receipt: [u8; 32],
        /// True: the executor is faulty; false: the auditor.
        executor_faulty: bool,
    },
    /// A drawn auditor's report that an executor receipt passed its audit
    /// (the JSON of a `vouch_types::audit::AuditReport`): the auditors'
    /// pool pays the signer (`audits`).
    Audited {
        /// The report's bytes.
        report: Vec<u8>,
    },
}

/// What an operator offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// Price per request, in the ledger's smallest unit.
    pub price: u64,
    /// Who answers for the operator (an email address, a URL).
    pub contact: String,
    /// Where its node listens (multiaddresses or URLs).
    pub addresses: Vec<String>,
    /// The models it serves (`model:` ids' 32 bytes, ascending): the
    /// operators drawn to audit a receipt are those declaring its model.
    pub models: Vec<[u8; 32]>,
}

/// A client's promise to pay an operator: the cumulative amount it owes
/// that operator so far. Only the newest matters; redeeming it pays the
/// difference from the last one redeemed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voucher {
    /// The paying client.
    pub client: PublicKey,
    /// Everything the client owes the operator so far.
    pub cumulative: u64,
    /// The client's signature over [`Voucher::signing_bytes`].
    pub signature: Signature,
}

impl Voucher {
    /// What a voucher's signature covers (the operator is the one that
    /// redeems it).
    pub fn signing_bytes(
        chain_id: &str,
        client: &PublicKey,
        operator: &PublicKey,
        cumulative: u64,
    ) -> Vec<u8> {
        let mut b = VOUCHER_DOMAIN.to_vec();
        b.put_str(chain_id);
        b.put(client.as_bytes());
        b.put(operator.as_bytes());
        b.put_u64(cumulative);
        b
    }

    /// A voucher `client` signs for `operator`.
    pub fn sign(
        chain_id: &str,
        client: &SecretKey,
        operator: &PublicKey,
        cumulative: u64,
    ) -> Voucher {
        let public = client.public();
        Voucher {
            client: public,
            cumulative,
            signature: client.sign(&Voucher::signing_bytes(
                chain_id, &public, operator, cumulative,
            )),
        }
    }

    /// Whether the client signed it for `operator` on `chain_id`.
    pub fn verify(&self, chain_id: &str, operator: &PublicKey) -> bool {
        self.client.verify(
            &Voucher::signing_bytes(chain_id, &self.client, operator, self.cumulative),
            &self.signature,
        )
    }

    /// The voucher as the `Vouch-Voucher` request header carries it: the
    /// client key, the cumulative amount in decimal and the signature's 128
    /// hex digits, separated by single spaces.
    pub fn to_header(&self) -> String {
        format!(
            "{} {} {}",
            self.client,
            self.cumulative,
            hex::encode(self.signature.to_bytes())
        )
    }

    /// Reads [`Voucher::to_header`]'s form; the error says what is wrong
    /// with it (the signature is not checked here).
    pub fn from_header(value: &str) -> Result<Voucher, String> {
        const FORM: &str = "a voucher is `ed25519:<64 hex digits> <cumulative amount> <128 hex digits of signature>`";
        let mut parts = value.trim().split(' ');
        let (Some(client), Some(cumulative), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{FORM}: it has not three parts"));
        };
        let client: PublicKey = client
            .parse()
            .map_err(|e| format!("{FORM}: the client key: {e}"))?;
        let cumulative: u64 = cumulative
            .parse()
            .map_err(|_| format!("{FORM}: `{cumulative}` is not an amount"))?;
        let bytes: [u8; 64] = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{FORM}: the signature is not 128 hex digits"))?;
        Ok(Voucher {
            client,
            cumulative,
            signature: Signature::from_bytes(&bytes),
        })
    }
}

impl TxBody {
    /// The body's bytes alone (as in a transaction, after the nonce): what
    /// a client sends a node to sign with its operator key.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        encode_body(&mut b, self);
        b
    }

    /// Reads a body from [`TxBody::encode`]'s bytes; anything else is an
    /// error that says where.
    pub fn decode(bytes: &[u8]) -> Result<TxBody, DecodeError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(DecodeError::Invalid(format!(
                "a transaction body of {} bytes is over the limit of {MAX_TX_BYTES}",
                bytes.len()
            )));
        }
        let mut r = Reader::new(bytes);
        let body = decode_body(&mut r)?;
        r.finish()?;
        Ok(body)
    }

    /// The transaction's kind, as `docs/ledger.md` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::Transfer { .. } => "transfer",
            TxBody::Deposit { .. } => "deposit",
            TxBody::Withdraw { .. } => "withdraw",
            TxBody::Register(_) => "register",
            TxBody::SetOffer(_) => "set_offer",
            TxBody::Bond { .. } => "bond",
            TxBody::Unbond { .. } => "unbond",
            TxBody::RotateKey { .. } => "rotate_key",
            TxBody::PublishModel { .. } => "publish_model",
            TxBody::Redeem { .. } => "redeem",
            TxBody::Dispute { .. } => "dispute",
            TxBody::Propose { .. } => "propose",
            TxBody::Vote { .. } => "vote",
            TxBody::Equivocation { .. } => "equivocation",
            TxBody::Appeal { .. } => "appeal",
            TxBody::AppealVote { .. } => "appeal_vote",
            TxBody::Audited { .. } => "audited",
        }
    }
}

impl Tx {
    /// Signs `body` as `key`'s transaction number `nonce` on `chain_id`.
    pub fn sign(chain_id: &str, key: &SecretKey, nonce: u64, body: TxBody) -> Tx {
        let signer = key.public();
        let signature = key.sign(&signing_bytes(chain_id, &signer, nonce, &body));
        Tx {
            chain_id: chain_id.into(),
            signer,
            nonce,
            body,
            signature,
        }
    }

    /// What the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(&self.chain_id, &self.signer, self.nonce, &self.body)
    }

    /// Whether the signer signed it.
    pub fn verify(&self) -> bool {
        self.signer.verify(&self.signing_bytes(), &self.signature)
    }

    /// The canonical signed bytes: the unsigned bytes, then the 64-byte
    /// signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = unsigned(&self.chain_id, &self.signer, self.nonce, &self.body);
        b.put(&self.signature.to_bytes());
        b
    }

    /// The transaction's id.
    pub fn id(&self) -> TxId {
        tx_id(&self.encode())
    }

    /// Reads a transaction from its canonical bytes; anything else (a
    /// truncated or oversized one, an unknown tag, trailing bytes) is an
    /// error that says where.
    pub fn decode(bytes: &[u8]) -> Result<Tx, DecodeError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(DecodeError::Invalid(format!(
                "a transaction of {} bytes is over the limit of {MAX_TX_BYTES}",
                bytes.len()
            )));
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(DecodeError::Invalid(format!(
                "transaction version {version} is not supported (this ledger reads version {TX_VERSION})"
            )));
        }
        let chain_id = string(&mut r)?;
        let signer = key(&mut r)?;
        let nonce = r.u64()?;
        let body = decode_body(&mut r)?;
        let signature = Signature::from_bytes(&r.array::<64>()?);
        r.finish()?;
        Ok(Tx {
            chain_id,
            signer,
            nonce,
            body,
            signature,
        })
    }
}

/// The id of a transaction's signed bytes.
pub fn tx_id(bytes: &[u8]) -> TxId {
    TxId(
        *blake3::Hasher::new_derive_key("vouch v1 ledger tx")
            .update(bytes)
            .finalize()
            .as_bytes(),
    )
}

fn signing_bytes(chain_id: &str, signer: &PublicKey, nonce: u64, body: &TxBody) -> Vec<u8> {
    let mut b = TX_DOMAIN.to_vec();
    b.extend_from_slice(&unsigned(chain_id, signer, nonce, body));
    b
}

fn unsigned(chain_id: &str, signer: &PublicKey, nonce: u64, body: &TxBody) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u8(TX_VERSION);
    b.put_str(chain_id);
    b.put(signer.as_bytes());
    b.put_u64(nonce);
    encode_body(&mut b, body);
    b
}

fn encode_offer(b: &mut Vec<u8>, o: &Offer) {
    b.put_u64(o.price);
    b.put_str(&o.contact);
    b.put_u32(o.addresses.len() as u32);
    for a in &o.addresses {
        b.put_str(a);
    }
    b.put_u32(o.models.len() as u32);
    for m in &o.models {
        b.put(m);
    }
}

fn encode_body(b: &mut Vec<u8>, body: &TxBody) {
    match body {
        TxBody::Transfer { to, amount } => {
            b.put_u8(1);
            b.put(to.as_bytes());
            b.put_u64(*amount);
        }
        TxBody::Deposit { amount } => {
            b.put_u8(2);
            b.put_u64(*amount);
        }
        TxBody::Withdraw { amount } => {
            b.put_u8(3);
            b.put_u64(*amount);
        }
        TxBody::Register(o) => {
            b.put_u8(4);
            encode_offer(b, o);
        }
        TxBody::SetOffer(o) => {
            b.put_u8(5);
            encode_offer(b, o);
        }
        TxBody::Bond { amount } => {
            b.put_u8(6);
            b.put_u64(*amount);
        }
        TxBody::Unbond { amount } => {
            b.put_u8(7);
            b.put_u64(*amount);
        }
        TxBody::RotateKey { key } => {
            b.put_u8(8);
            b.put(key.as_bytes());
        }
        TxBody::PublishModel { model } => {
            b.put_u8(9);
            b.put(model);
        }
        TxBody::Redeem { vouchers } => {
            b.put_u8(10);
            b.put_u32(vouchers.len() as u32);
            for v in vouchers {
                b.put(v.client.as_bytes());
                b.put_u64(v.cumulative);
                b.put(&v.signature.to_bytes());
            }
        }
        TxBody::Dispute { record } => {
            b.put_u8(11);
            b.put_u32(record.len() as u32);
            b.put(record);
        }
        TxBody::Propose {
            changes,
            spends,
            releases,
        } => {
            b.put_u8(12);
            b.put_u32(changes.len() as u32);
            for (name, value) in changes {
                b.put_str(name);
                b.put_u64(*value);
            }
            b.put_u32(spends.len() as u32);
            for (to, amount) in spends {
                b.put(to.as_bytes());
                b.put_u64(*amount);
            }
            b.put_u32(releases.len() as u32);
            for (version, digest, allowed) in releases {
                b.put_str(version);
                b.put(digest);
                b.put_u8(u8::from(*allowed));
            }
        }
        TxBody::Vote { proposal, yes } => {
            b.put_u8(13);
            b.put_u64(*proposal);
            b.put_u8(u8::from(*yes));
        }
        TxBody::Equivocation { evidence } => {
            b.put_u8(14);
            b.put_u32(evidence.len() as u32);
            b.put(evidence);
        }
        TxBody::Appeal { receipt } => {
            b.put_u8(15);
            b.put(receipt);
        }
        TxBody::AppealVote {
            receipt,
            executor_faulty,
        } => {
            b.put_u8(16);
            b.put(receipt);
            b.put_u8(u8::from(*executor_faulty));
        }
        TxBody::Audited { report } => {
            b.put_u8(17);
            b.put_u32(report.len() as u32);
            b.put(report);
        }
    }
}

fn string(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let at = r.offset();
    let s = r.str()?;
    if s.len() > MAX_STRING {
        return Err(DecodeError::Invalid(format!(
            "the string at offset {at} is {} bytes, over the limit of {MAX_STRING}",
            s.len()
        )));
    }
    Ok(s)
}

fn key(r: &mut Reader<'_>) -> Result<PublicKey, DecodeError> {
    let at = r.offset();
    PublicKey::from_bytes(&r.array::<32>()?)
        .map_err(|e| DecodeError::Invalid(format!("the key at offset {at}: {e}")))
}

fn decode_offer(r: &mut Reader<'_>) -> Result<Offer, DecodeError> {
    let price = r.u64()?;
    let contact = string(r)?;
    let n = r.u32()? as usize;
    if n > MAX_ADDRESSES {
        return Err(DecodeError::Invalid(format!(
            "{n} addresses, over the limit of {MAX_ADDRESSES}"
        )));
    }
    let addresses = (0..n).map(|_| string(r)).collect::<Result<_, _>>()?;
    let n = r.u32()? as usize;
    if n > MAX_MODELS {
        return Err(DecodeError::Invalid(format!(
            "{n} models, over the limit of {MAX_MODELS}"
        )));
    }
    let models: Vec<[u8; 32]> = (0..n).map(|_| r.array::<32>()).collect::<Result<_, _>>()?;
    if !models.windows(2).all(|w| w[0] < w[1]) {
        return Err(DecodeError::Invalid(
            "an offer's models must be ascending, each once".into(),
        ));
    }
    Ok(Offer {
        price,
        contact,
        addresses,
        models,
    })
}

fn decode_body(r: &mut Reader<'_>) -> Result<TxBody, DecodeError> {
    let at = r.offset();
    Ok(match r.u8()? {
        1 => TxBody::Transfer {
            to: key(r)?,
            amount: r.u64()?,
        },
        2 => TxBody::Deposit { amount: r.u64()? },
        3 => TxBody::Withdraw { amount: r.u64()? },
        4 => TxBody::Register(decode_offer(r)?),
        5 => TxBody::SetOffer(decode_offer(r)?),
        6 => TxBody::Bond { amount: r.u64()? },
        7 => TxBody::Unbond { amount: r.u64()? },
        8 => TxBody::RotateKey { key: key(r)? },
        9 => TxBody::PublishModel {
            model: r.array::<32>()?,
        },
        10 => {
            let n = r.u32()? as usize;
            if n > MAX_VOUCHERS {
                return Err(DecodeError::Invalid(format!(
                    "{n} vouchers, over the limit of {MAX_VOUCHERS} per transaction"
                )));
            }
            let mut vouchers = Vec::with_capacity(n.min(r.remaining() / 104));
            for _ in 0..n {
                vouchers.push(Voucher {
                    client: key(r)?,
                    cumulative: r.u64()?,
                    signature: Signature::from_bytes(&r.array::<64>()?),
                });
            }
            TxBody::Redeem { vouchers }
        }
        11 => {
            let n = r.u32()? as usize;
            TxBody::Dispute {
                record: r.take(n)?.to_vec(),
            }
        }
        12 => {
            let n = r.u32()? as usize;
            if n > MAX_CHANGES {
                return Err(DecodeError::Invalid(format!(
                    "{n} changes, over the limit of {} per proposal",
                    MAX_CHANGES
                )));
            }
            let mut changes = Vec::with_capacity(n);
            for _ in 0..n {
                changes.push((string(r)?, r.u64()?));
            }
            let m = r.u32()? as usize;
            if n + m > MAX_CHANGES {
                return Err(DecodeError::Invalid(format!(
                    "{n} changes and {m} spends, over the limit of {MAX_CHANGES} per proposal"
                )));
            }
            let mut spends = Vec::with_capacity(m);
            for _ in 0..m {
                spends.push((key(r)?, r.u64()?));
            }
            let k = r.u32()? as usize;
            if n + m + k > MAX_CHANGES {
                return Err(DecodeError::Invalid(format!(
                    "{n} changes, {m} spends and {k} releases, over the limit of {MAX_CHANGES} per proposal"
                )));
            }
            let mut releases = Vec::with_capacity(k);
            for _ in 0..k {
                let version = string(r)?;
                let digest = r.array::<32>()?;
                let allowed = match r.u8()? {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(DecodeError::Invalid(format!(
                            "a release is allowed (1) or retired (0), not {other}"
                        )));
                    }
                };
                releases.push((version, digest, allowed));
            }
            TxBody::Propose {
                changes,
                spends,
                releases,
            }
        }
        13 => TxBody::Vote {
            proposal: r.u64()?,
            yes: match r.u8()? {
                0 => false,
                1 => true,
                other => {
                    return Err(DecodeError::Invalid(format!(
                        "a vote is 0 (no) or 1 (yes), not {other}"
                    )));
                }
            },
        },
        14 => {
            let n = r.u32()? as usize;
            TxBody::Equivocation {
                evidence: r.take(n)?.to_vec(),
            }
        }
        15 => TxBody::Appeal {
            receipt: r.array::<32>()?,
        },
        16 => TxBody::AppealVote {
            receipt: r.array::<32>()?,
            executor_faulty: match r.u8()? {
                0 => false,
                1 => true,
                other => {
                    return Err(DecodeError::Invalid(format!(
                        "an appeal vote names the executor (1) or the auditor (0) faulty, not {other}"
                    )));
                }
            },
        },
        17 => {
            let n = r.u32()? as usize;
            TxBody::Audited {
                report: r.take(n)?.to_vec(),
            }
        }
        tag => {
            return Err(DecodeError::BadTag {
                what: "transaction",
                tag,
                offset: at,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes(&[b; 32])
    }

    fn every_body() -> Vec<TxBody> {
        let offer = Offer {
            price: 7,
            contact: "ops@example.org".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
            models: vec![[1; 32], [2; 32]],
        };
        vec![
            TxBody::Transfer {
                to: key(2).public(),
                amount: 5,
            },
            TxBody::Deposit { amount: 1 },
            TxBody::Withdraw { amount: 2 },
            TxBody::Register(offer.clone()),
            TxBody::SetOffer(offer),
            TxBody::Bond { amount: 3 },
            TxBody::Unbond { amount: 4 },
            TxBody::RotateKey {
                key: key(3).public(),
            },
            TxBody::PublishModel { model: [9; 32] },
            TxBody::Redeem {
                vouchers: vec![Voucher::sign("c", &key(4), &key(1).public(), 10)],
            },
            TxBody::Dispute {
                record: b"{}".to_vec(),
            },
            TxBody::Propose {
                changes: vec![("audit_rate_ppm".into(), 7), ("timelock".into(), 0)],
                spends: vec![(key(5).public(), 9)],
                releases: vec![("0.2.0".into(), [3; 32], true)],
            },
            TxBody::Vote {
                proposal: 3,
                yes: true,
            },
            TxBody::Equivocation {
                evidence: vec![0, 1, 2],
            },
            TxBody::Appeal { receipt: [4; 32] },
            TxBody::AppealVote {
                receipt: [4; 32],
                executor_faulty: true,
            },
            TxBody::Audited {
                report: b"{}".to_vec(),
            },
        ]
    }

    #[test]
    fn a_voucher_round_trips_through_its_header_and_bad_headers_say_why() {
        let v = Voucher::sign("c", &key(4), &key(1).public(), 1234);
        let header = v.to_header();
        assert_eq!(Voucher::from_header(&header).unwrap(), v);
        assert!(
            Voucher::from_header(&header)
                .unwrap()
                .verify("c", &key(1).public())
        );
        let sig = hex::encode(v.signature.to_bytes());
        let client = v.client.to_string();
        for (bad, why) in [
            (String::new(), "three parts"),
            (format!("{client} 1234"), "three parts"),
            (format!("{header} extra"), "three parts"),
            (format!("ed25519:zz 1234 {sig}"), "client key"),
            (format!("{client} -5 {sig}"), "not an amount"),
            (format!("{client} 1234 {}", &sig[..100]), "128 hex digits"),
        ] {
            let err = Voucher::from_header(&bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn every_transaction_round_trips_and_verifies() {
        for (n, body) in every_body().into_iter().enumerate() {
            let tx = Tx::sign("chain", &key(1), n as u64, body);
            let bytes = tx.encode();
            let back = Tx::decode(&bytes).unwrap();
            assert_eq!(back, tx);
            assert_eq!(TxBody::decode(&tx.body.encode()).unwrap(), tx.body);
            assert!(back.verify());
            assert_eq!(back.id(), tx_id(&bytes));
        }
    }

    #[test]
    fn any_changed_byte_breaks_the_signature_or_the_decoding() {
        let tx = Tx::sign(
            "chain",
            &key(1),
            0,
            TxBody::Transfer {
                to: key(2).public(),
                amount: 5,
            },
        );
        let bytes = tx.encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            if let Ok(t) = Tx::decode(&b) {
                assert!(
                    !t.verify(),
                    "byte {i} changed and the signature still holds"
                );
            }
        }
        // Truncations and trailing bytes are errors, not panics.
        for n in 0..bytes.len() {
            assert!(Tx::decode(&bytes[..n]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(Tx::decode(&long), Err(DecodeError::Trailing(1))));
    }

    #[test]
    fn a_voucher_binds_chain_client_operator_and_amount() {
        let v = Voucher::sign("a", &key(4), &key(1).public(), 10);
        assert!(v.verify("a", &key(1).public()));
        assert!(!v.verify("b", &key(1).public()));
        assert!(!v.verify("a", &key(2).public()));
        let more = Voucher {
            cumulative: 11,
            ..v.clone()
        };
        assert!(!more.verify("a", &key(1).public()));
    }

    #[test]
    fn oversized_counts_are_refused_before_allocating() {
        let mut b = unsigned("c", &key(1).public(), 0, &TxBody::Deposit { amount: 0 });
        // Rewrite the body as a Redeem claiming u32::MAX vouchers.
        b.truncate(b.len() - 9);
        b.put_u8(10);
        b.put_u32(u32::MAX);
        let err = Tx::decode(&b).unwrap_err().to_string();
        assert!(err.contains("over the limit"), "{err}");
    }
}
