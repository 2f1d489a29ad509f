//! Helpers the ledger's integration tests share: keys by a byte, blocks
//! of transactions signed with the signers' next nonces, and disputes.
#![allow(dead_code, unreachable_pub)]

use vouch_ledger::{Block, Ledger, Tx, TxBody, TxOutcome};
use vouch_types::dispute::{DISPUTE_VERSION, LlmDispute, Party, TokenVerdict};
use vouch_types::llm::{Finish, LlmRequest, Sampling, Transcript};
use vouch_types::receipt::{Determinism, EngineInfo, ReceiptBody, TraceCommitment};
use vouch_types::{Digest, Kind, PublicKey, SecretKey};

/// The key whose seed is 32 copies of `b`.
pub fn key(b: u8) -> SecretKey {
    SecretKey::from_bytes(&[b; 32])
}

/// Its public key.
pub fn pk(b: u8) -> PublicKey {
    key(b).public()
}

/// Applies the next block on `chain`, with `txs` (signer byte, body) each
/// signed with its signer's next nonce, stamped 1 ms per height; the
/// outcomes.
pub fn block(chain: &str, l: &mut Ledger, txs: Vec<(u8, TxBody)>) -> Vec<TxOutcome> {
    block_every(chain, l, txs, 1)
}

/// [`block`], the block stamped `ms_per_block` × its height.
pub fn block_every(
    chain: &str,
    l: &mut Ledger,
    txs: Vec<(u8, TxBody)>,
    ms_per_block: u64,
) -> Vec<TxOutcome> {
    let mut nonces = std::collections::BTreeMap::new();
    let bytes = txs
        .into_iter()
        .map(|(s, body)| {
            let n = nonces.entry(s).or_insert_with(|| l.account(&pk(s)).nonce);
            let tx = Tx::sign(chain, &key(s), *n, body).encode();
            *n += 1;
            tx
        })
        .collect();
    let height = l.height() + 1;
    l.apply_block(&Block {
        height,
        time_ms: height * ms_per_block,
        txs: bytes,
    })
    .unwrap()
}

/// A rejected outcome's error, as text.
pub fn err(o: &TxOutcome) -> String {
    o.as_ref().unwrap_err().to_string()
}

/// An executor's generated answer to "question `seed`" (key `e`, greedy
/// with seed `seed`): `n` tokens, stamped at `at`, its engine version
/// `engine` (a `+BACKEND` suffix states an accelerator).
pub fn llm_answer(
    e: &SecretKey,
    seed: u64,
    n: usize,
    at: u64,
    engine: &str,
) -> (vouch_types::Receipt, Transcript) {
    let transcript = Transcript {
        request: LlmRequest::completion(
            format!("question {seed}"),
            n as u32,
            Sampling {
                temperature: 0.0,
                top_p: 1.0,
                top_k: 0,
                seed,
            },
        ),
        tokens: vec![11; n],
        texts: vec!["a".into(); n],
        finish_reason: Finish::Length,
        logprobs: vec![],
    };
    let receipt = ReceiptBody {
        version: 1,
        model: Digest::of(Kind::Model, b"llm"),
        request: transcript.request.digest(),
        output: transcript.chain().output(Finish::Length),
        trace: TraceCommitment {
            root: Digest::of(Kind::TraceNode, b"t"),
            len: n as u64,
        },
        engine: EngineInfo {
            name: "llama.cpp".into(),
            version: engine.into(),
        },
        determinism: Determinism::Tolerant { rtol: 1e-3 },
        seed: Some(seed),
        node: e.public(),
        nonce: String::new(),
        timestamp_ms: at,
        price: 0,
    }
    .sign(e);
    (receipt, transcript)
}

/// An executor's generated answer (key `e`, sampling seed `seed`, stamped
/// at 1 ms), an auditor's accusation at token 1 (key `a`) and a referee's
/// verdict (key `r`) agreeing with it.
pub fn llm_dispute(e: &SecretKey, a: &SecretKey, r: &SecretKey, seed: u64) -> LlmDispute {
    let (executor, transcript) = llm_answer(e, seed, 3, 1, "x");
    let why = "token 1: not the argmax".to_string();
    LlmDispute {
        version: DISPUTE_VERSION,
        auditor: TokenVerdict::sign(a, &executor.id, Some(1), why.clone()),
        referee: TokenVerdict::sign(r, &executor.id, Some(1), why),
        executor,
        transcript,
        faulty: Party::Executor,
    }
}
