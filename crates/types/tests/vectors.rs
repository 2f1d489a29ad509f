//! Test vectors for docs/receipts.md, committed as docs/receipt-vectors.json
//! and re-checked by an independent Python implementation
//! (tests/python/test_receipt_vectors.py). This test fails when the Rust
//! encodings drift from the committed file; run with VOUCH_BLESS=1 to
//! rewrite it after an intended format change.

use serde_json::{Value, json};
use vouch_types::blob::BlobHasher;
use vouch_types::merkle::{self, LeafHasher};
use vouch_types::{
    DType, Determinism, Digest, Dim, EngineInfo, FileEntry, Kind, Manifest, ModelFormat,
    ReceiptBody, Schema, SecretKey, Tensor, TensorMap, TensorSpec, TraceCommitment,
};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn tensors() -> Vec<(&'static str, Tensor)> {
    vec![
        ("f32_vec", Tensor::from_f32(vec![2], &[1.5, -2.0]).unwrap()),
        (
            "i64_matrix",
            Tensor::from_i64(vec![2, 2], &[1, -1, i64::MAX, i64::MIN]).unwrap(),
        ),
        (
            "bool_vec",
            Tensor::new(DType::Bool, vec![3], vec![1, 0, 1]).unwrap(),
        ),
        (
            "f16_scalar",
            Tensor::new(
                DType::F16,
                vec![],
                half::f16::from_f32(0.5).to_le_bytes().to_vec(),
            )
            .unwrap(),
        ),
        (
            "u8_empty",
            Tensor::new(DType::U8, vec![0, 3], vec![]).unwrap(),
        ),
    ]
}

fn leaf(i: u64) -> Digest {
    let mut l = LeafHasher::new(i, &format!("step{i}"), 1);
    l.tensor(DType::U8, &[1], &merkle::tensor_data(&[i as u8]));
    l.finish()
}

fn strings(ds: &[Digest]) -> Vec<String> {
    ds.iter().map(|d| d.to_string()).collect()
}

fn vectors() -> Value {
    let digests: Vec<Value> = Kind::ALL
        .iter()
        .flat_map(|&k| {
            [&b""[..], b"abc"].map(|data| {
                json!({"context": k.context(), "data_hex": hex::encode(data), "digest": Digest::of(k, data).to_string()})
            })
        })
        .collect();

    let tensor_vectors: Vec<Value> = tensors()
        .iter()
        .map(|(name, t)| {
            json!({"name": name, "dtype": t.dtype().name(), "shape": t.shape(), "data_hex": hex::encode(t.data()), "encoding_hex": hex::encode(t.encode())})
        })
        .collect();

    let map: TensorMap = tensors()
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
    let map_vector = json!({
        "names": map.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "encoding_hex": hex::encode(map.encode()),
        "input_digest": map.digest(Kind::Input).to_string(),
        "output_digest": map.digest(Kind::Output).to_string(),
    });

    let blobs: Vec<Value> = [0usize, 5, (1 << 20) + 5]
        .iter()
        .map(|&n| {
            let t = BlobHasher::table_of(&pattern(n));
            json!({"size": n, "rule": "byte i is i % 251", "chunks": strings(&t.chunks), "digest": t.root().to_string()})
        })
        .collect();

    let merkle_vectors: Vec<Value> = (0..8u64)
        .map(|n| {
            let leaves: Vec<Digest> = (0..n).map(leaf).collect();
            let proofs: Vec<Value> =
                (0..n as usize).map(|i| json!(strings(&merkle::proof(&leaves, i).unwrap()))).collect();
            json!({"len": n, "leaf_rule": "leaf i: index i, name \"step{i}\", one uint8 [1] tensor holding i", "leaves": strings(&leaves), "root": merkle::root(&leaves).to_string(), "proofs": proofs})
        })
        .collect();

    let key = SecretKey::from_bytes(&[7; 32]);
    let manifest = Manifest {
        name: "iris".into(),
        version: "1".into(),
        format: ModelFormat::Onnx,
        files: vec![FileEntry {
            role: "model".into(),
            digest: BlobHasher::table_of(&pattern(5)).root(),
            size: 5,
        }],
        schema: Schema {
            inputs: vec![TensorSpec {
                name: "float_input".into(),
                dtype: Some(DType::F32),
                shape: Some(vec![Dim::Symbol("N".into()), Dim::Fixed(4)]),
            }],
            outputs: vec![TensorSpec {
                name: "label".into(),
                dtype: Some(DType::I64),
                shape: None,
            }],
        },
        license: "MIT".into(),
        publisher: key.public(),
    };
    let signed = manifest.clone().sign(&key);
    let manifest_vector = json!({
        "encoding_hex": hex::encode(manifest.encode()),
        "model_id": manifest.id().to_string(),
        "signature": hex::encode(signed.signature.to_bytes()),
    });

    let receipts: Vec<Value> = [
        (Determinism::Tolerant { rtol: 1e-4 }, None, "client-nonce"),
        (Determinism::Exact, Some(42u64), ""),
    ]
    .into_iter()
    .map(|(determinism, seed, nonce)| {
        let body = ReceiptBody {
            version: 1,
            model: manifest.id(),
            request: map.digest(Kind::Input),
            output: map.digest(Kind::Output),
            trace: TraceCommitment { root: merkle::root(&(0..5).map(leaf).collect::<Vec<_>>()), len: 5 },
            engine: EngineInfo { name: "tract-onnx".into(), version: "0.23.9".into() },
            determinism,
            seed,
            node: key.public(),
            nonce: nonce.into(),
            timestamp_ms: 1_790_000_000_000,
            price: 7,
        };
        let r = body.clone().sign(&key);
        json!({"body_hex": hex::encode(body.encode()), "receipt": serde_json::to_value(&r).unwrap()})
    })
    .collect();

    json!({
        "about": "Vouch v1 canonical encodings; see docs/receipts.md. Generated by crates/types/tests/vectors.rs.",
        "signing_key_seed_hex": hex::encode([7u8; 32]),
        "digests": digests,
        "tensors": tensor_vectors,
        "tensor_map": map_vector,
        "blobs": blobs,
        "merkle": merkle_vectors,
        "manifest": manifest_vector,
        "receipts": receipts,
    })
}

#[test]
fn committed_vectors_match_this_implementation() {
    // Cargo sets the package directory at run time too; prefer it, so a
    // test binary reused from a shared target directory reads this
    // checkout's vectors, not those of the clone that built it.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let path = dir.join("../../docs/receipt-vectors.json");
    // Keys sorted at every level, whatever order serde_json keeps (a
    // dependency turns on its `preserve_order`).
    let mut vectors = vectors();
    vectors.sort_all_objects();
    let text = serde_json::to_string_pretty(&vectors).unwrap() + "\n";
    if std::env::var_os("VOUCH_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .expect("docs/receipt-vectors.json exists (VOUCH_BLESS=1 writes it)");
    assert_eq!(
        committed, text,
        "the encodings changed: if intended, rerun with VOUCH_BLESS=1 and update docs/receipts.md"
    );
}
