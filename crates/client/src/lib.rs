//! An HTTP client for a Vouch node: the CLI and the integration tests use
//! it. It speaks the JSON shapes of `vouch-api` and turns the node's error
//! bodies back into typed errors.

mod pay;

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use vouch_api::{
    ErrorBody, GcReport, Health, InferRequest, InferResponse, ModelDetail, ModelInfo, ModelList,
    NetworkNodes, PinStatus, ReportedReceipt, TraceEntry, from_map, npz, to_map,
};
use vouch_types::{Digest, Receipt};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node answered with an error body.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// The node's message.
        message: String,
    },
    /// The node could not be reached.
    #[error(
        "cannot reach the node at {url}: {detail}; is `vouch up` running? (set --node or VOUCH_NODE)"
    )]
    Unreachable {
        /// The URL tried.
        url: String,
        /// Transport error.
        detail: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {detail}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// A local file could not be read.
    #[error("reading {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
}

/// A client bound to one node.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// Who pays inference requests ([`Client::with_payer`]).
    payer: Option<Arc<pay::Payer>>,
}

/// What `push_file` sends with the model bytes.
#[derive(Clone, Debug, Default)]
pub struct PushParams {
    /// Hub name.
    pub name: String,
    /// Version (default: next integer).
    pub version: Option<String>,
    /// License.
    pub license: Option<String>,
    /// `NAME=DIM,DIM` overrides.
    pub input_shapes: Vec<String>,
    /// A stored blob holding the model's tokenizer.json.
    pub tokenizer: Option<Digest>,
    /// Make it provable (`verify: "proof"`) for inputs within this
    /// magnitude.
    pub provable: Option<f64>,
    /// With `provable`: bits the circuit's weights keep (default 16).
    pub weight_bits: Option<u32>,
    /// With `provable`: bits activations keep after a Relu (default 24).
    pub activation_bits: Option<u32>,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: None,
            payer: None,
        }
    }

    /// The same client, presenting `token` (the node's admin token) as
    /// `Authorization: Bearer`, which operator actions need: pushing
    /// models, uploading blobs, pinning, audits.
    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    /// Whether the node is on this machine (a loopback address or
    /// `localhost`).
    pub fn is_loopback(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(&self.base) else {
            return false;
        };
        match url.host_str() {
            Some(h) if h.eq_ignore_ascii_case("localhost") => true,
            Some(h) => h
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        }
    }

    /// The node URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        url: String,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            detail: error_chain(&e),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Err(ClientError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
            }),
            Err(_) => Err(ClientError::Protocol {
                url,
                detail: format!("HTTP {status}: {text}"),
            }),
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.get_query(path, &[]).await
    }

    /// `GET path` with query parameters (absent ones left out), encoded by
    /// reqwest.
    async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, Option<&str>)],
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self
            .send(url.clone(), self.http.get(&url).query(query))
            .await?;
        decode(url, resp).await
    }

    /// `GET /v1/ledger/status`: the chain's id, height, state root and
    /// validators.
    pub async fn ledger_status(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/ledger/status").await
    }

    /// `GET /v1/ledger/draw`: the pool the draws of a receipt `executor`
    /// signed at `timestamp_ms` run over on the node's ledger (staked
    /// operators weighted by stake, and the receipt's beacon).
    pub async fn ledger_draw(
        &self,
        executor: &vouch_types::PublicKey,
        timestamp_ms: u64,
    ) -> Result<vouch_types::dispute::Pool, ClientError> {
        let path = format!("/v1/ledger/draw?executor={executor}&timestamp_ms={timestamp_ms}");
        let v: serde_json::Value = self.get_json(&path).await?;
        let bad = |what: &str| ClientError::Protocol {
            url: self.url(&path),
            detail: format!("the draw's {what} is malformed"),
        };
        let beacon = match v["beacon"].as_str() {
            Some(h) => {
                let mut b = [0u8; 32];
                hex::decode_to_slice(h, &mut b).map_err(|_| bad("beacon"))?;
                Some(b)
            }
            None => None,
        };
        let mut weights = std::collections::BTreeMap::new();
        for w in v["weights"].as_array().ok_or_else(|| bad("weights"))? {
            let key: vouch_types::PublicKey =
                serde_json::from_value(w["key"].clone()).map_err(|_| bad("key"))?;
            weights.insert(key, w["weight"].as_u64().ok_or_else(|| bad("weight"))?);
        }
        Ok(vouch_types::dispute::Pool { weights, beacon })
    }

    /// `GET /v1/ledger/operators`.
    pub async fn ledger_operators(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/ledger/operators").await
    }

    /// `GET /v1/ledger/accounts/{key}`: balance, escrow and next nonce.
    pub async fn ledger_account(&self, key: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/v1/ledger/accounts/{key}")).await
    }

    /// `POST /v1/ledger/tx`: a signed transaction into the node's pool;
    /// its id in hex.
    pub async fn submit_tx(&self, tx: &[u8]) -> Result<String, ClientError> {
        let body: serde_json::Value = self
            .post_json("/v1/ledger/tx", &serde_json::json!({"tx": hex::encode(tx)}))
            .await?;
        Ok(body["id"].as_str().unwrap_or_default().to_string())
    }

    /// `GET /v1/ledger/tx/{id}`: where a transaction was applied, and its
    /// outcome.
    pub async fn ledger_tx(&self, id: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/v1/ledger/tx/{id}")).await
    }

    /// `GET path`, any JSON answer.
    pub async fn get_value(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(path).await
    }

    /// `GET /v1/ledger/blocks/{height}`: one applied block and its
    /// transactions.
    pub async fn ledger_block(&self, height: u64) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/v1/ledger/blocks/{height}")).await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get_json("/healthz").await
    }

    /// `GET /v1/operator`: fails unless this client presents the node's
    /// admin token. Uploads check it first: a node refuses an upload
    /// without reading it, which a client still streaming the body sees
    /// as a broken connection rather than the node's answer.
    pub async fn check_operator(&self) -> Result<(), ClientError> {
        self.get_json::<serde_json::Value>("/v1/operator")
            .await
            .map(drop)
    }

    /// Streams a model file to `POST /v1/hub/models`.
    pub async fn push_file(
        &self,
        path: &Path,
        params: &PushParams,
    ) -> Result<ModelInfo, ClientError> {
        self.check_operator().await?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ClientError::File {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        let mut query: Vec<(&str, String)> = vec![("name", params.name.clone())];
        query.extend(params.version.clone().map(|v| ("version", v)));
        query.extend(params.license.clone().map(|l| ("license", l)));
        query.extend(
            params
                .input_shapes
                .iter()
                .map(|s| ("input_shape", s.clone())),
        );
        let optional = [
            ("tokenizer", params.tokenizer.map(|d| d.to_string())),
            ("provable", params.provable.map(|r| r.to_string())),
            ("weight_bits", params.weight_bits.map(|b| b.to_string())),
            (
                "activation_bits",
                params.activation_bits.map(|b| b.to_string()),
            ),
        ];
        query.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        let url = self.url("/v1/hub/models");
        let req = self
            .http
            .post(&url)
            .query(&query)
            .header("content-type", "application/octet-stream")
            .body(body);
        let resp = self.send(url.clone(), req).await?;
        decode(url, resp).await
    }

    /// `POST /v1/hub/blobs`: stores bytes, returns their blob digest.
    pub async fn put_blob(&self, bytes: Vec<u8>) -> Result<Digest, ClientError> {
        #[derive(serde::Deserialize)]
        struct Stored {
            digest: Digest,
        }
        self.check_operator().await?;
        let url = self.url("/v1/hub/blobs");
        let req = self
            .http
            .post(&url)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        let resp = self.send(url.clone(), req).await?;
        let stored: Stored = decode(url, resp).await?;
        Ok(stored.digest)
    }

    /// POSTs a JSON body and decodes the JSON answer.
    pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self
            .send(url.clone(), self.http.post(&url).json(body))
            .await?;
        decode(url, resp).await
    }

    /// POSTs an inference request (a JSON body) and decodes the JSON
    /// answer, paying for it with a voucher where the client has a payer
    /// and the node charges ([`Client::with_payer`]).
    pub async fn post_paid<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, Option<&str>)],
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let req = self.http.post(&url).query(query).json(body);
        self.paid_call(url, req, decode).await
    }

    /// Sends `req` with a voucher when this client pays, reads the answer
    /// with `read`, and keeps the voucher's amount only if that succeeded.
    async fn paid_call<T, F>(
        &self,
        url: String,
        mut req: reqwest::RequestBuilder,
        read: impl FnOnce(String, reqwest::Response) -> F,
    ) -> Result<T, ClientError>
    where
        F: std::future::Future<Output = Result<T, ClientError>>,
    {
        let voucher = self.next_voucher().await?;
        if let Some((header, _)) = &voucher {
            req = req.header("vouch-voucher", header);
        }
        let result = match self.send(url.clone(), req).await {
            Ok(resp) => read(url, resp).await,
            Err(e) => Err(e),
        };
        self.paid(voucher.map(|(_, c)| c), result.is_ok()).await;
        result
    }

    /// `GET /v1/hub/models`.
    pub async fn list_models(&self) -> Result<ModelList, ClientError> {
        self.get_json("/v1/hub/models").await
    }

    /// `GET /v1/hub/models/{name}`.
    pub async fn show_model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<ModelDetail, ClientError> {
        let path = format!("/v1/hub/models/{}", encode_segment(name));
        self.get_query(&path, &[("version", version)]).await
    }

    /// `DELETE /v1/hub/models/{name}?version=V` (admin token).
    pub async fn delete_model(&self, name: &str, version: &str) -> Result<ModelInfo, ClientError> {
        let url = self.url(&format!("/v1/hub/models/{}", encode_segment(name)));
        let req = self.http.delete(&url).query(&[("version", version)]);
        let resp = self.send(url.clone(), req).await?;
        decode(url, resp).await
    }

    /// `POST /v1/hub/gc` (admin token): collects garbage now.
    pub async fn gc(&self) -> Result<GcReport, ClientError> {
        let url = self.url("/v1/hub/gc");
        let resp = self.send(url.clone(), self.http.post(&url)).await?;
        decode(url, resp).await
    }

    /// `GET /v1/hub/blobs/{digest}`, checked against the digest.
    pub async fn blob(&self, digest: &Digest) -> Result<Vec<u8>, ClientError> {
        let url = self.url(&format!("/v1/hub/blobs/{digest}"));
        let resp = self.send(url.clone(), self.http.get(&url)).await?;
        let bytes = body(&url, resp).await?;
        let got = vouch_types::blob::BlobHasher::table_of(&bytes).root();
        if got != *digest {
            return Err(ClientError::Protocol {
                url,
                detail: format!("the bytes hash to {got}, not {digest}: refusing them"),
            });
        }
        Ok(bytes.to_vec())
    }

    /// `POST /v1/infer/{name}`.
    pub async fn infer(
        &self,
        name: &str,
        version: Option<&str>,
        request: &InferRequest,
    ) -> Result<InferResponse, ClientError> {
        // Tensors travel as numpy's .npz both ways: raw little-endian
        // bytes, not decimal text (`vouch_api::npz`).
        let url = self.url(&format!("/v1/infer/{}", encode_segment(name)));
        let body = npz::write_npz(&to_map(request.inputs.clone()), &[]);
        let query = [
            ("version", version),
            ("nonce", request.nonce.as_deref()),
            ("verify", request.verify.as_deref()),
        ];
        let req = self
            .http
            .post(&url)
            .query(&query)
            .header(reqwest::header::CONTENT_TYPE, npz::NPZ)
            .header(reqwest::header::ACCEPT, npz::NPZ)
            .body(body);
        self.paid_call(url, req, read_npz_answer).await
    }

    /// `POST /v1/hub/models/{name}/pin`: pin a model on the node and ask
    /// for `replicas` nodes to serve it.
    pub async fn pin(
        &self,
        name: &str,
        version: Option<&str>,
        replicas: u64,
    ) -> Result<PinStatus, ClientError> {
        let url = self.url(&format!("/v1/hub/models/{}/pin", encode_segment(name)));
        let replicas = replicas.to_string();
        let req = self
            .http
            .post(&url)
            .query(&[("replicas", Some(replicas.as_str())), ("version", version)]);
        let resp = self.send(url.clone(), req).await?;
        decode(url, resp).await
    }

    /// `GET /v1/hub/models/{name}/pin`.
    pub async fn pin_status(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<PinStatus, ClientError> {
        let path = format!("/v1/hub/models/{}/pin", encode_segment(name));
        self.get_query(&path, &[("version", version)]).await
    }

    /// `POST /v1/receipts`: reports a receipt to the node, which gossips it
    /// to the network's auditors.
    pub async fn report_receipt(&self, receipt: &Receipt) -> Result<ReportedReceipt, ClientError> {
        self.post_json("/v1/receipts", receipt).await
    }

    /// `GET /v1/network/evidence`, every page: the records, oldest first.
    pub async fn evidence(&self) -> Result<Vec<serde_json::Value>, ClientError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut body: serde_json::Value = self
                .get_query("/v1/network/evidence", &[("after", after.as_deref())])
                .await?;
            if let serde_json::Value::Array(records) = body["evidence"].take() {
                out.extend(records);
            }
            match body["next"].as_u64() {
                Some(next) => after = Some(next.to_string()),
                None => return Ok(out),
            }
        }
    }

    /// `GET /v1/network/nodes`.
    pub async fn network_nodes(&self) -> Result<NetworkNodes, ClientError> {
        self.get_json("/v1/network/nodes").await
    }

    /// `GET /v1/receipts/{id}`.
    pub async fn receipt(&self, id: &Digest) -> Result<Receipt, ClientError> {
        self.get_json(&format!("/v1/receipts/{id}")).await
    }

    /// `GET /v1/receipts/{id}/proof`: the proof a node kept for a proven
    /// answer it gave.
    pub async fn receipt_proof(&self, id: &Digest) -> Result<vouch_proof::Bundle, ClientError> {
        self.get_json(&format!("/v1/receipts/{id}/proof")).await
    }

    /// `GET /v1/receipts/{id}/trace/{index}`.
    pub async fn trace_entry(&self, id: &Digest, index: u64) -> Result<TraceEntry, ClientError> {
        self.get_json(&format!("/v1/receipts/{id}/trace/{index}"))
            .await
    }
}

/// The most an inference answer's `.npz` may unpack to.
const MAX_ANSWER_BYTES: usize = 4 << 30;

/// An inference answer given as `.npz`: the outputs, and the rest of the
/// answer from its `vouch.json`.
async fn read_npz_answer(
    url: String,
    resp: reqwest::Response,
) -> Result<InferResponse, ClientError> {
    let bytes = body(&url, resp).await?;
    let bad = |detail: String| ClientError::Protocol {
        url: url.clone(),
        detail,
    };
    let (outputs, other) = npz::read_npz(&bytes, MAX_ANSWER_BYTES).map_err(bad)?;
    let rest = other
        .iter()
        .find(|(name, _)| name == npz::VOUCH_MEMBER)
        .ok_or_else(|| bad(format!("the answer's .npz has no {}", npz::VOUCH_MEMBER)))?;
    let mut answer: InferResponse =
        serde_json::from_slice(&rest.1).map_err(|e| bad(e.to_string()))?;
    answer.outputs = from_map(outputs);
    Ok(answer)
}

/// A response's whole body.
async fn body(url: &str, resp: reqwest::Response) -> Result<bytes::Bytes, ClientError> {
    resp.bytes().await.map_err(|e| ClientError::Protocol {
        url: url.to_string(),
        detail: error_chain(&e),
    })
}

async fn decode<T: DeserializeOwned>(
    url: String,
    resp: reqwest::Response,
) -> Result<T, ClientError> {
    let bytes = body(&url, resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
        url,
        detail: e.to_string(),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Percent-encodes a path segment (queries go through reqwest's `query`).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
