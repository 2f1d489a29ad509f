//! The JSON shapes of the public HTTP API, shared by the node (server) and
//! the client and CLI, so both sides read and write the same bytes.
//!
//! Tensors travel as `{"dtype": "float32", "shape": [..], "data": [..]}`
//! with numpy dtype names and flat row-major data. Floats that JSON cannot
//! hold travel as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
//! This crate does no IO.

pub mod chat;
pub mod npz;

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use vouch_types::tensor::TensorError;
use vouch_types::{
    DType, Digest, Manifest, PublicKey, Receipt, Schema, SignedManifest, Tensor, TensorMap,
    TensorSpec,
};

/// A tensor in JSON. Serializing writes numbers straight from the tensor's
/// bytes; deserializing reads `data` once the dtype is known.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonTensor(pub Tensor);

struct Data<'a>(&'a Tensor);

fn float_str(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

impl Serialize for Data<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let n = t.dtype().size();
        let mut seq = s.serialize_seq(Some(t.len()))?;
        for c in t.data().chunks_exact(n) {
            match t.dtype() {
                DType::Bool => seq.serialize_element(&(c[0] != 0))?,
                DType::U8 => seq.serialize_element(&c[0])?,
                DType::I8 => seq.serialize_element(&(c[0] as i8))?,
                DType::U16 => seq.serialize_element(&u16::from_le_bytes([c[0], c[1]]))?,
                DType::I16 => seq.serialize_element(&i16::from_le_bytes([c[0], c[1]]))?,
                DType::U32 => {
                    seq.serialize_element(&u32::from_le_bytes([c[0], c[1], c[2], c[3]]))?
                }
                DType::I32 => {
                    seq.serialize_element(&i32::from_le_bytes([c[0], c[1], c[2], c[3]]))?
                }
                DType::U64 => seq.serialize_element(&u64::from_le_bytes(arr8(c)))?,
                DType::I64 => seq.serialize_element(&i64::from_le_bytes(arr8(c)))?,
                DType::F16 => {
                    let v = half::f16::from_le_bytes([c[0], c[1]]);
                    if v.is_finite() {
                        seq.serialize_element(&v.to_f32())?
                    } else {
                        seq.serialize_element(float_str(v.to_f64()))?
                    }
                }
                DType::F32 => {
                    let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    if v.is_finite() {
                        seq.serialize_element(&v)?
                    } else {
                        seq.serialize_element(float_str(v as f64))?
                    }
                }
                DType::F64 => {
                    let v = f64::from_le_bytes(arr8(c));
                    if v.is_finite() {
                        seq.serialize_element(&v)?
                    } else {
                        seq.serialize_element(float_str(v))?
                    }
                }
            }
        }
        seq.end()
    }
}

fn arr8(c: &[u8]) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    b
}

impl Serialize for JsonTensor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            dtype: &'static str,
            shape: &'a [u64],
            data: Data<'a>,
        }
        Out {
            dtype: self.0.dtype().name(),
            shape: self.0.shape(),
            data: Data(&self.0),
        }
        .serialize(s)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FloatOrName {
    Num(f64),
    Name(String),
}

fn parse_floats(raw: &str) -> Result<Vec<f64>, String> {
    if let Ok(v) = serde_json::from_str::<Vec<f64>>(raw) {
        return Ok(v);
    }
    let vals: Vec<FloatOrName> = serde_json::from_str(raw)
        .map_err(|e| format!("`data` must be a flat array of numbers: {e}"))?;
    vals.into_iter()
        .map(|v| match v {
            FloatOrName::Num(x) => Ok(x),
            FloatOrName::Name(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(format!(
                    "`{s}` is not a number (NaN, Infinity and -Infinity are the only names)"
                )),
            },
        })
        .collect()
}

fn parse_ints<T: serde::de::DeserializeOwned>(raw: &str, dtype: DType) -> Result<Vec<T>, String> {
    serde_json::from_str(raw)
        .map_err(|e| format!("`data` must be a flat array of {dtype} integers within range: {e}"))
}

fn le<T, const N: usize>(v: Vec<T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.into_iter().flat_map(f).collect()
}

/// Builds a tensor from a dtype name, a shape and the raw JSON of `data`.
pub fn tensor_from_json(dtype: &str, shape: Vec<u64>, data: &str) -> Result<Tensor, String> {
    let dt = DType::from_name(dtype).ok_or_else(|| {
        // A short name (Rust's `f32`, NumPy's `i8`) gets its full one.
        let full = [("f", "float"), ("i", "int"), ("u", "uint")]
            .iter()
            .find_map(|(short, long)| {
                let bits = dtype.strip_prefix(short)?;
                DType::from_name(&format!("{long}{bits}"))
            });
        match full {
            Some(d) => format!("unknown dtype `{dtype}`; did you mean `{}`?", d.name()),
            None => {
                let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
                format!("unknown dtype `{dtype}`; use one of {}", names.join(", "))
            }
        }
    })?;
    let bytes = match dt {
        DType::Bool => {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum B {
                B(bool),
                N(u8),
            }
            let v: Vec<B> = serde_json::from_str(data)
                .map_err(|e| format!("`data` must be a flat array of true/false: {e}"))?;
            v.into_iter()
                .map(|b| match b {
                    B::B(b) => Ok(b as u8),
                    B::N(n @ (0 | 1)) => Ok(n),
                    B::N(n) => Err(format!("bool data holds true/false (or 0/1), not {n}")),
                })
                .collect::<Result<Vec<u8>, String>>()?
        }
        DType::U8 => parse_ints::<u8>(data, dt)?,
        DType::I8 => le(parse_ints::<i8>(data, dt)?, i8::to_le_bytes),
        DType::U16 => le(parse_ints::<u16>(data, dt)?, u16::to_le_bytes),
        DType::I16 => le(parse_ints::<i16>(data, dt)?, i16::to_le_bytes),
        DType::U32 => le(parse_ints::<u32>(data, dt)?, u32::to_le_bytes),
        DType::I32 => le(parse_ints::<i32>(data, dt)?, i32::to_le_bytes),
        DType::U64 => le(parse_ints::<u64>(data, dt)?, u64::to_le_bytes),
        DType::I64 => le(parse_ints::<i64>(data, dt)?, i64::to_le_bytes),
        DType::F16 => le(parse_floats(data)?, |x| {
            half::f16::from_f64(x).to_le_bytes()
        }),
        DType::F32 => le(parse_floats(data)?, |x| (x as f32).to_le_bytes()),
        DType::F64 => le(parse_floats(data)?, f64::to_le_bytes),
    };
    Tensor::new(dt, shape, bytes).map_err(|e| match e {
        TensorError::Length { shape, expected, actual_bytes, dtype, .. } => format!(
            "`data` has {} elements but shape {shape:?} needs {expected}: send exactly {expected} values, flat and row-major",
            actual_bytes / dtype.size()
        ),
        other => other.to_string(),
    })
}

impl<'de> Deserialize<'de> for JsonTensor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JsonTensor, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct In<'a> {
            dtype: String,
            shape: Vec<u64>,
            #[serde(borrow)]
            data: &'a RawValue,
        }
        let t = In::deserialize(d)?;
        tensor_from_json(&t.dtype, t.shape, t.data.get())
            .map(JsonTensor)
            .map_err(D::Error::custom)
    }
}

/// Named tensors in JSON, converted to and from a [`TensorMap`].
pub type JsonTensors = BTreeMap<String, JsonTensor>;

/// Converts JSON tensors to a canonical map.
pub fn to_map(t: JsonTensors) -> TensorMap {
    t.into_iter().map(|(k, v)| (k, v.0)).collect()
}

/// Converts a canonical map to JSON tensors.
pub fn from_map(m: TensorMap) -> JsonTensors {
    m.into_iter().map(|(k, v)| (k, JsonTensor(v))).collect()
}

/// `POST /v1/infer/{name}` body; also the CLI's `--input` file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferRequest {
    /// Inputs by name.
    pub inputs: JsonTensors,
    /// A client nonce echoed in the receipt (at most 256 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Verification level: `receipt` (default), `audit`, or `quorum:N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
}

/// `POST /v1/infer/{name}` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InferResponse {
    /// Outputs by name.
    pub outputs: JsonTensors,
    /// The signed receipt of the node that computed `outputs`.
    pub receipt: Receipt,
    /// Which node ran it (absent from older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_by: Option<Executor>,
    /// Peer ids the request went through: the node asked, then the
    /// executor(s) when they are others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<String>,
    /// Every receipt behind a quorum's answer, dissenters included (absent
    /// for a single execution, whose one receipt is `receipt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<Receipt>,
    /// How a quorum went, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumJson>,
    /// For `verify: "proof"`: the proof and the model's manifest, checked
    /// with the circuit file (`vouch_proof::check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<vouch_proof::Bundle>,
}

/// The node that ran a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executor {
    /// Its libp2p peer id.
    pub peer: String,
    /// Its operator key (the receipt's signer).
    pub operator: vouch_types::PublicKey,
    /// Whether the node that answered admits the operator: on a ledger
    /// chain, registered with at least the minimum stake (false: one it
    /// does not admit served, as routing allows when no admitted one can).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted: Option<bool>,
}

/// How a quorum went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumJson {
    /// Operators asked.
    pub wanted: u64,
    /// Operators whose answers formed the majority.
    pub agreed: u64,
    /// Operators outside the majority, with their receipt ids.
    pub dissent: Vec<Dissent>,
}

/// An operator whose answer disagreed with the majority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dissent {
    /// Its peer id.
    pub peer: String,
    /// Its operator key.
    pub operator: vouch_types::PublicKey,
    /// Its receipt.
    pub receipt: vouch_types::Digest,
}

/// The CLI's `--out` file: just the outputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputsFile {
    /// Outputs by name.
    pub outputs: JsonTensors,
}

/// A dimension in JSON: a number, or a symbol's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JsonDim {
    /// Fixed size.
    Fixed(u64),
    /// Symbolic size.
    Symbol(String),
}

/// A declared input or output in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSpec {
    /// Name.
    pub name: String,
    /// numpy dtype name, or null when the model does not say.
    pub dtype: Option<String>,
    /// Dims, or null when the rank is unknown.
    pub shape: Option<Vec<JsonDim>>,
}

impl From<&TensorSpec> for JsonSpec {
    fn from(s: &TensorSpec) -> JsonSpec {
        JsonSpec {
            name: s.name.clone(),
            dtype: s.dtype.map(|d| d.name().to_string()),
            shape: s.shape.as_ref().map(|dims| {
                dims.iter()
                    .map(|d| match d {
                        vouch_types::Dim::Fixed(n) => JsonDim::Fixed(*n),
                        vouch_types::Dim::Symbol(s) => JsonDim::Symbol(s.clone()),
                    })
                    .collect()
            }),
        }
    }
}

/// Schema in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSchema {
    /// Inputs.
    pub inputs: Vec<JsonSpec>,
    /// Outputs.
    pub outputs: Vec<JsonSpec>,
}

impl From<&Schema> for JsonSchema {
    fn from(s: &Schema) -> JsonSchema {
        JsonSchema {
            inputs: s.inputs.iter().map(JsonSpec::from).collect(),
            outputs: s.outputs.iter().map(JsonSpec::from).collect(),
        }
    }
}

/// A file of a model in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonFile {
    /// Role (`model`).
    pub role: String,
    /// `blob:` digest.
    pub digest: Digest,
    /// Bytes.
    pub size: u64,
}

/// A model as the hub lists and shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `model:` id.
    pub id: Digest,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `onnx` or `gguf`.
    pub format: String,
    /// Files.
    pub files: Vec<JsonFile>,
    /// Inputs and outputs.
    pub schema: JsonSchema,
    /// License.
    pub license: String,
    /// Publisher key.
    pub publisher: vouch_types::PublicKey,
    /// Publisher's signature over the id, hex.
    pub signature: String,
    /// Registration time, Unix ms.
    pub created_ms: u64,
}

impl ModelInfo {
    /// Describes a signed manifest.
    pub fn new(signed: &SignedManifest, created_ms: u64) -> ModelInfo {
        let m: &Manifest = &signed.manifest;
        ModelInfo {
            id: m.id(),
            name: m.name.clone(),
            version: m.version.clone(),
            format: m.format.name().into(),
            files: m
                .files
                .iter()
                .map(|f| JsonFile {
                    role: f.role.clone(),
                    digest: f.digest,
                    size: f.size,
                })
                .collect(),
            schema: JsonSchema::from(&m.schema),
            license: m.license.clone(),
            publisher: m.publisher,
            signature: signed.signature.to_string().to_lowercase(),
            created_ms,
        }
    }
}

/// `GET /v1/hub/models` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelList {
    /// Every model version, oldest first.
    pub models: Vec<ModelInfo>,
}

/// `GET /v1/hub/models/{name}` response: the newest version and all versions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelDetail {
    /// The newest (or requested) version.
    #[serde(flatten)]
    pub model: ModelInfo,
    /// Every version of this name, oldest first.
    pub versions: Vec<String>,
}

/// `GET /v1/receipts/{id}/trace/{index}` response: one trace entry and
/// its Merkle path to the receipt's trace root.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceEntry {
    /// The receipt.
    pub receipt: Digest,
    /// Leaf index.
    pub index: u64,
    /// Number of leaves.
    pub len: u64,
    /// Step (graph node) name, when the model is known to this node.
    pub step: Option<String>,
    /// The `leaf:` digest.
    pub leaf: Digest,
    /// Sibling digests from the leaf upward.
    pub path: Vec<Digest>,
    /// The trace root the path leads to.
    pub root: Digest,
}

/// `GET /healthz` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Node operator key.
    pub node: vouch_types::PublicKey,
    /// Software version.
    pub version: String,
    /// Registered model versions.
    pub models: u64,
    /// The share of others' receipts this node audits now: where it runs
    /// a ledger chain, the ledger's `audit_rate_ppm` as governance last
    /// set it.
    #[serde(default)]
    pub audit_rate: f64,
    /// Whether the ledger this node runs allows its software release (true
    /// without a chain); peers stop routing to a node whose release a vote
    /// retired.
    #[serde(default = "yes")]
    pub release_allowed: bool,
}

fn yes() -> bool {
    true
}

/// Progress of fetching a model from peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchProgress {
    /// Bytes of the model's files.
    pub total_bytes: u64,
    /// Bytes present and checked.
    pub done_bytes: u64,
    /// `fetching`, `loading` (stored; the engine loads it), `done` or
    /// `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/hub/gc`: what a garbage collection freed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Blobs no model uses, deleted.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Fetches from peers that had stopped, deleted.
    pub partials: u64,
    /// Their bytes.
    pub partial_bytes: u64,
    /// Receipts past their retention, deleted with their trace leaves.
    pub receipts: u64,
}

/// `POST /v1/receipts`: what a node did with a receipt a client reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedReceipt {
    /// The receipt's id.
    pub id: vouch_types::Digest,
    /// This node gossiped it to the network's auditors (false when it had
    /// been reported here before).
    pub gossiped: bool,
    /// This node is among the receipt's drawn auditors and started an
    /// audit of it.
    pub audited_here: bool,
}

/// `POST|GET /v1/hub/models/{name}/pin`: where a pinned model stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinStatus {
    /// Model id.
    pub id: vouch_types::Digest,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Whether this node serves it.
    pub local: bool,
    /// This node's fetch of it from peers, if one was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchProgress>,
    /// Nodes serving it (this one included), by peer id.
    pub providers: Vec<String>,
    /// How many nodes were asked to serve it.
    pub wanted: u64,
}

/// What this node has recorded about an operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecordJson {
    /// Chunks received that checked out.
    pub chunks_ok: u64,
    /// Chunks, tables or answers received that did not check out.
    pub bad_data: u64,
    /// Requests that failed or were refused.
    pub failures: u64,
    /// Inferences it ran for requests this node handled.
    #[serde(default)]
    pub served: u64,
    /// Smoothed latency of its answers, microseconds (0: none yet).
    #[serde(default)]
    pub latency_us: u64,
    /// Quorums in which it disagreed with the majority.
    #[serde(default)]
    pub disagreements: u64,
    /// Audits of its receipts that agreed, and disputes it won.
    #[serde(default)]
    pub audits_passed: u64,
    /// Disputes a referee found it faulty in.
    #[serde(default)]
    pub audits_failed: u64,
    /// Requests it refused as the client's fault that another operator
    /// then served.
    #[serde(default)]
    pub refused: u64,
    /// Audits of its receipts for which it did not hand over the inputs or
    /// transcript while it had to keep them.
    #[serde(default)]
    pub withheld: u64,
}

/// One node of the network as this node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkNode {
    /// libp2p peer id.
    pub peer: String,
    /// Operator key, when the node has announced itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Its HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Whether a connection is open (always true for this node).
    pub connected: bool,
    /// Share of the inferences this node handled that this operator ran.
    pub share: f64,
    /// Whether this entry is the node answering.
    pub local: bool,
    /// Models it serves, as `name@version`.
    pub models: Vec<String>,
    /// Price per inference.
    pub price: u64,
    /// Inferences it runs at once.
    pub capacity: u32,
    /// Software version.
    #[serde(default)]
    pub software: String,
    /// This node's record of it.
    pub record: PeerRecordJson,
    /// Its uptime as this node saw it (absent for this node itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<UptimeJson>,
}

/// A peer's uptime as the answering node saw it: the minutes of the last
/// day in which a fresh signed announcement of it arrived (peers announce
/// every 10 s), of the minutes since it was first heard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UptimeJson {
    /// Minutes it was heard in.
    pub minutes_seen: u64,
    /// Minutes observed: since it was first heard, at most a day.
    pub minutes_observed: u64,
    /// `minutes_seen / minutes_observed`.
    pub ratio: f64,
}

/// `GET /v1/payments/{client}`: what a client needs to pay the node's next
/// inference request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentState {
    /// The chain vouchers are signed for.
    pub chain_id: String,
    /// The operator vouchers are signed to.
    pub operator: PublicKey,
    /// The price of one request.
    pub price: u64,
    /// The client's escrow on the ledger.
    pub escrow: u64,
    /// What the ledger settled from this client to this operator so far.
    pub redeemed: u64,
    /// The newest voucher this node holds from the client (a client checks
    /// that it signed it before it trusts the amount).
    pub held: Option<HeldVoucher>,
    /// The least cumulative amount the next request's voucher may carry.
    pub next: u64,
}

/// A voucher, as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldVoucher {
    /// The client.
    pub client: PublicKey,
    /// The cumulative amount.
    pub cumulative: u64,
    /// The client's signature, 128 hex digits.
    pub signature: String,
}

/// `GET /v1/network/nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkNodes {
    /// Addresses this node listens on for peers.
    pub listen: Vec<String>,
    /// This node first, then its peers.
    pub nodes: Vec<NetworkNode>,
    /// Inferences this node handled (run here or routed).
    pub requests: u64,
    /// The fewest operators that together ran more than half of them
    /// (0 before any request).
    pub nakamoto_coefficient: u64,
    /// Requests hedged with a second provider.
    pub hedged: u64,
}

/// Error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a message that says what to change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code, e.g. `invalid_input`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(t: &Tensor) -> Tensor {
        let json = serde_json::to_string(&JsonTensor(t.clone())).unwrap();
        serde_json::from_str::<JsonTensor>(&json).unwrap().0
    }

    proptest! {
        #[test]
        fn f32_round_trips_exactly(v in proptest::collection::vec(any::<f32>().prop_filter("nan payloads are canonicalized", |x| !x.is_nan()), 0..20)) {
            let t = Tensor::from_f32(vec![v.len() as u64], &v).unwrap();
            prop_assert_eq!(round_trip(&t), t);
        }

        #[test]
        fn i64_round_trips_exactly(v in proptest::collection::vec(any::<i64>(), 0..20)) {
            let t = Tensor::from_i64(vec![v.len() as u64], &v).unwrap();
            prop_assert_eq!(round_trip(&t), t);
        }

        #[test]
        fn every_dtype_round_trips(d in 0usize..12, bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let dtype = DType::ALL[d];
            let n = bytes.len() / dtype.size();
            let mut data = bytes[..n * dtype.size()].to_vec();
            if dtype == DType::Bool { data.iter_mut().for_each(|b| *b &= 1); }
            let t = Tensor::new(dtype, vec![n as u64], data).unwrap().canonical_nans();
            prop_assert_eq!(round_trip(&t), t);
        }
    }

    #[test]
    fn errors_say_what_to_change() {
        let bad = |s: &str| {
            serde_json::from_str::<JsonTensor>(s)
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad(r#"{"dtype":"float33","shape":[1],"data":[1]}"#)
                .contains("unknown dtype `float33`; use one of bool, uint8")
        );
        for (short, full) in [("f32", "float32"), ("i64", "int64"), ("u8", "uint8")] {
            let err = bad(&format!(r#"{{"dtype":"{short}","shape":[1],"data":[1]}}"#));
            assert!(err.contains(&format!("did you mean `{full}`?")), "{err}");
        }
        assert!(
            bad(r#"{"dtype":"float32","shape":[2,2],"data":[1,2,3]}"#)
                .contains("`data` has 3 elements but shape [2, 2] needs 4")
        );
        assert!(bad(r#"{"dtype":"int8","shape":[1],"data":[300]}"#).contains("int8 integers"));
        assert!(bad(r#"{"dtype":"float32","shape":[1],"data":["x"]}"#).contains("not a number"));
        assert!(bad(r#"{"dtype":"float32","shape":[1],"data":[[1]]}"#).contains("flat array"));
    }

    #[test]
    fn non_finite_floats_travel_as_names() {
        let t = Tensor::from_f32(vec![3], &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY]).unwrap();
        let json = serde_json::to_string(&JsonTensor(t.clone())).unwrap();
        assert!(json.contains(r#"["NaN","Infinity","-Infinity"]"#), "{json}");
        assert_eq!(round_trip(&t), t.canonical_nans());
    }
}
