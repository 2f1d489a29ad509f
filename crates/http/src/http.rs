//! The HTTP API: routes, JSON bodies and error mapping.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use vouch_api::{
    Dissent, ErrorBody, ErrorDetail, Executor, Health, InferRequest, InferResponse, ModelDetail,
    ModelInfo, ModelList, QuorumJson, from_map, npz, to_map,
};
use vouch_types::{Digest, Dim, Kind};

pub use crate::error::ApiError;
use crate::error::json;
use vouch_network::Node;
use vouch_network::route::Verify;
use vouch_service::error::NodeError;
use vouch_service::service::PushOptions;

type ApiResult<T> = Result<T, ApiError>;

/// The router for the whole API. Operator actions need the admin token
/// (`guard`).
pub fn router(node: Arc<Node>) -> Router {
    let max_request = node.config().max_request_bytes;
    Router::new()
        .route("/", get(ui_index))
        .route("/ui/app.js", get(ui_app))
        .route("/explorer", get(explorer_index))
        .route("/explorer/explorer.js", get(explorer_app))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/operator", get(operator))
        .route("/openapi.json", get(openapi))
        .route(
            "/v1/hub/models",
            post(push_model)
                .get(list_models)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/hub/models/{name}",
            get(show_model).delete(delete_model),
        )
        .route("/v1/hub/gc", post(gc))
        .route("/v1/hub/models/{name}/pin", post(pin_model).get(pin_status))
        .route("/v1/network/nodes", get(network_nodes))
        .route("/v1/network/evidence", get(evidence))
        .route("/v1/hub/blobs/{digest}", get(get_blob))
        .route(
            "/v1/hub/blobs",
            post(put_blob).layer(DefaultBodyLimit::max(max_request)),
        )
        .route(
            "/v1/infer/{name}",
            post(infer).layer(DefaultBodyLimit::max(max_request)).layer(
                middleware::from_fn_with_state(node.clone(), crate::ledger::charged::<ApiError>),
            ),
        )
        .route(
            "/v1/receipts",
            post(report_receipt).layer(DefaultBodyLimit::max(max_request)),
        )
        .route("/v1/receipts/{id}", get(get_receipt))
        .route("/v1/receipts/{id}/trace", get(trace_receipt))
        .route("/v1/receipts/{id}/proof", get(get_proof))
        .route("/v1/receipts/{id}/trace/{index}", get(get_trace_entry))
        .merge(crate::openai::routes(&node).layer(DefaultBodyLimit::max(max_request)))
        .merge(crate::ledger::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            node.clone(),
            crate::guard::guard,
        ))
        .layer(middleware::from_fn_with_state(node.clone(), count_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(catch_panics())
        .with_state(node)
}

/// A handler that panics answers 500 with the usual error body (and the
/// panic is logged), rather than the connection closing without a word.
pub fn catch_panics()
-> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send + 'static>) -> Response>
{
    fn answer(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        tracing::error!(panic = what, "a request handler panicked");
        ApiError(NodeError::Internal(
            "the node failed on this request (a bug: it is logged); the node serves on".into(),
        ))
        .into_response()
    }
    tower_http::catch_panic::CatchPanicLayer::custom(answer as fn(_) -> Response)
}

async fn count_requests(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    node.metrics()
        .http(&method, &route, response.status().as_u16());
    response
}

async fn not_found() -> ApiError {
    ApiError(NodeError::NotFound(
        "no such route; see /openapi.json for the API".into(),
    ))
}

async fn method_not_allowed() -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: "method_not_allowed".into(),
            message: "this route does not take that method; see /openapi.json".into(),
        },
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

async fn health(State(node): State<Arc<Node>>) -> ApiResult<Response> {
    let models = node.list_models()?.len() as u64;
    Ok(json(
        StatusCode::OK,
        &Health {
            status: "ok".into(),
            node: node.public_key(),
            version: env!("CARGO_PKG_VERSION").into(),
            models,
            audit_rate: node.audit_rate(),
            release_allowed: node.release_allowed(vouch_network::network::SOFTWARE),
        },
    ))
}

/// One of the pages `scripts/build-ui` builds from `ui/`, as `kind`.
fn page(kind: &'static str, body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(kind))],
        body,
    )
        .into_response()
}

const HTML: &str = "text/html; charset=utf-8";
const SCRIPT: &str = "text/javascript; charset=utf-8";

/// The chat UI.
async fn ui_index() -> Response {
    page(HTML, include_str!("../ui/index.html"))
}

/// The UI's script: its logic and an independent receipt verifier (BLAKE3
/// and ed25519 from npm packages), bundled.
async fn ui_app() -> Response {
    page(SCRIPT, include_str!("../ui/app.js"))
}

/// The network explorer: the ledger, disputes and fee flows, from the
/// public routes.
async fn explorer_index() -> Response {
    page(HTML, include_str!("../ui/explorer.html"))
}

/// The explorer's script, bundled with the receipt verifier it re-checks
/// disputes with.
async fn explorer_app() -> Response {
    page(SCRIPT, include_str!("../ui/explorer.js"))
}

/// Answers only a request with the admin token (`guard`): a client checks
/// it may act as the operator before it streams an upload.
async fn operator(State(node): State<Arc<Node>>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({"operator": true, "node": node.public_key()}),
    )
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        node.render_metrics(&node.ledger_gauges()),
    )
        .into_response()
}

async fn openapi() -> Response {
    json(StatusCode::OK, &crate::openapi::document())
}

/// Parses `NAME=D1,D2,...` where each D is a number or a symbol.
pub fn parse_input_shape(s: &str) -> Result<(String, Vec<Dim>), String> {
    let (name, dims) = s.split_once('=').ok_or_else(|| {
        format!("input shape `{s}` must look like NAME=DIM,DIM (e.g. float_input=N,4)")
    })?;
    if name.is_empty() {
        return Err(format!("input shape `{s}` has no input name before `=`"));
    }
    let dims = if dims.is_empty() {
        Vec::new()
    } else {
        dims.split(',')
            .map(|d| {
                let d = d.trim();
                match d.parse::<u64>() {
                    Ok(n) => Ok(Dim::Fixed(n)),
                    Err(_)
                        if !d.is_empty()
                            && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                    {
                        Ok(Dim::Symbol(d.to_string()))
                    }
                    Err(_) => Err(format!(
                        "dim `{d}` in `{s}` is neither a number nor a symbol name"
                    )),
                }
            })
            .collect::<Result<_, _>>()?
    };
    Ok((name.to_string(), dims))
}

fn push_options(query: Option<&str>) -> Result<PushOptions, NodeError> {
    let pairs: Vec<(String, String)> = query_pairs(query.unwrap_or(""));
    let mut options = PushOptions::default();
    let mut name = None;
    let (mut provable, mut circuit) = (false, vouch_proof::circuit::Options::default());
    let bits = |k: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| NodeError::BadRequest(format!("{k}=`{v}`: give a number of bits")))
    };
    for (k, v) in pairs {
        match k.as_str() {
            "name" => name = Some(v),
            "version" => options.version = Some(v),
            "license" => options.license = v,
            "input_shape" => {
                let (input, dims) = parse_input_shape(&v).map_err(NodeError::BadRequest)?;
                options.input_shapes.insert(input, dims);
            }
            "tokenizer" => options.tokenizer = Some(parse_digest(Kind::Blob, &v)?),
            // `provable=true`, or the input range: `provable=1` for inputs
            // within ±1.
            "provable" => {
                circuit.input_range = match v.as_str() {
                    "true" | "" => vouch_proof::circuit::INPUT_RANGE,
                    r => r
                        .parse()
                        .ok()
                        .filter(|r: &f64| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| {
                            NodeError::BadRequest(format!(
                                "provable=`{v}`: give `true` or the largest input magnitude (e.g. 1)"
                            ))
                        })?,
                };
                provable = true;
            }
            "weight_bits" => circuit.weight_bits = bits(&k, &v)?,
            "activation_bits" => circuit.activation_bits = bits(&k, &v)?,
            other => {
                return Err(NodeError::BadRequest(format!(
                    "unknown parameter `{other}`; uploads take name, version, license, input_shape, tokenizer, provable, weight_bits and activation_bits"
                )));
            }
        }
    }
    let defaults = vouch_proof::circuit::Options::default();
    if !provable && circuit != defaults {
        return Err(NodeError::BadRequest(
            "weight_bits and activation_bits shape a proof's circuit: give provable too".into(),
        ));
    }
    options.provable = provable.then_some(circuit);
    options.name = name.ok_or_else(|| {
        NodeError::BadRequest("missing `name`: POST /v1/hub/models?name=NAME[&version=V]".into())
    })?;
    Ok(options)
}

/// Splits a query string into decoded pairs (repeated keys kept), as
/// `application/x-www-form-urlencoded`.
fn query_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

async fn push_model(
    State(node): State<Arc<Node>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let mut body = body.into_data_stream();
    let options = match push_options(query.as_deref()) {
        Ok(options) => options,
        Err(e) => {
            node.discard_upload(&mut body).await;
            return Err(e.into());
        }
    };
    let record = node.push_model(options, body).await?;
    Ok(json(
        StatusCode::CREATED,
        &ModelInfo::new(&record.signed, record.created_ms),
    ))
}

async fn list_models(State(node): State<Arc<Node>>) -> ApiResult<Response> {
    let models = node
        .list_models()?
        .iter()
        .map(|r| ModelInfo::new(&r.signed, r.created_ms))
        .collect();
    Ok(json(StatusCode::OK, &ModelList { models }))
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

async fn delete_model(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Response> {
    let version = q.version.ok_or_else(|| {
        NodeError::BadRequest(format!(
            "say which version of `{name}` to delete: ?version=V (`vouch model show {name}` lists them)"
        ))
    })?;
    let record = node.delete_model(&name, &version).await?;
    Ok(json(
        StatusCode::OK,
        &ModelInfo::new(&record.signed, record.created_ms),
    ))
}

async fn gc(State(node): State<Arc<Node>>) -> ApiResult<Response> {
    let c = node.gc().await?;
    Ok(json(
        StatusCode::OK,
        &vouch_api::GcReport {
            blobs: c.blobs,
            blob_bytes: c.blob_bytes,
            partials: c.partials,
            partial_bytes: c.partial_bytes,
            receipts: c.receipts,
        },
    ))
}

async fn show_model(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Response> {
    let record = node.find_model(&name, q.version.as_deref())?;
    let versions = node
        .list_models()?
        .into_iter()
        .filter(|r| r.signed.manifest.name == name)
        .map(|r| r.signed.manifest.version)
        .collect();
    Ok(json(
        StatusCode::OK,
        &ModelDetail {
            model: ModelInfo::new(&record.signed, record.created_ms),
            versions,
        },
    ))
}

#[derive(Deserialize)]
struct PinQuery {
    version: Option<String>,
    replicas: Option<u64>,
}

async fn pin_model(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Query(q): Query<PinQuery>,
) -> ApiResult<Response> {
    let status = node
        .pin(&name, q.version.as_deref(), q.replicas.unwrap_or(1).max(1))
        .await?;
    Ok(json(StatusCode::ACCEPTED, &status))
}

async fn pin_status(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Response> {
    Ok(json(
        StatusCode::OK,
        &node.pin_status(&name, q.version.as_deref()).await?,
    ))
}

/// The most evidence records one page holds.
const EVIDENCE_PAGE: usize = 1000;

#[derive(serde::Deserialize)]
struct EvidenceQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn evidence(
    State(node): State<Arc<Node>>,
    Query(q): Query<EvidenceQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(EVIDENCE_PAGE).clamp(1, EVIDENCE_PAGE);
    let (records, next) = node.evidence_page(q.after, limit)?;
    let mut body = serde_json::json!({ "evidence": records });
    if let Some(next) = next {
        body["next"] = next.into();
    }
    Ok(json(StatusCode::OK, &body))
}

async fn network_nodes(State(node): State<Arc<Node>>) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &node.network_nodes()?))
}

fn parse_digest(kind: Kind, s: &str) -> Result<Digest, NodeError> {
    Digest::parse_kind(kind, s).map_err(|e| NodeError::BadRequest(format!("`{s}`: {e}")))
}

async fn put_blob(State(node): State<Arc<Node>>, body: Bytes) -> ApiResult<Response> {
    let (digest, size) = node.put_blob(body.to_vec()).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"digest": digest, "size": size}),
    ))
}

async fn get_blob(
    State(node): State<Arc<Node>>,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let digest = parse_digest(Kind::Blob, &digest)?;
    let blob = node.blob_stream(digest).await?;
    let chunks = futures_util::stream::unfold(blob.chunks, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk.map_err(std::io::Error::other), rx))
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(blob.size)),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// `/v1/infer/{name}`'s query: the version, and for an `.npz` body the
/// nonce and verification level a JSON body carries itself.
#[derive(Deserialize)]
struct InferQuery {
    version: Option<String>,
    nonce: Option<String>,
    verify: Option<String>,
}

/// Whether a header names the `.npz` media type.
fn names_npz(headers: &axum::http::HeaderMap, name: header::HeaderName) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with(npz::NPZ)))
}

async fn infer(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Query(q): Query<InferQuery>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            NodeError::TooLarge(format!(
                "request body exceeds this node's limit of {} bytes; send smaller inputs or raise --max-request-bytes",
                node.config().max_request_bytes
            ))
        } else {
            NodeError::BadRequest(format!("reading the request body: {e}"))
        }
    })?;
    // Inputs as JSON, or as numpy's .npz (options then in the query).
    let (inputs, nonce, verify) = if names_npz(&headers, header::CONTENT_TYPE) {
        // Unpacked, the arrays may hold no more than the body limit: what
        // a JSON body could carry.
        let limit = node.config().max_request_bytes;
        let (inputs, other) = npz::read_npz(&body, limit).map_err(|e| {
            NodeError::BadRequest(format!(
                "{e}; send the inputs as np.savez(f, NAME=array, ...) with Content-Type {}",
                npz::NPZ
            ))
        })?;
        if let Some((member, _)) = other.first() {
            return Err(NodeError::BadRequest(format!(
                "the .npz holds `{member}`, which is not an array (NAME.npy): inputs only; nonce and verify go in the query"
            ))
            .into());
        }
        (inputs, q.nonce, q.verify)
    } else {
        let request: InferRequest = serde_json::from_slice(&body).map_err(|e| {
            NodeError::BadRequest(format!(
                "request body is not a valid infer request ({e}); expected {{\"inputs\": {{NAME: {{\"dtype\": \"float32\", \"shape\": [..], \"data\": [..]}}}}, \"nonce\": \"...\"}}, or an .npz with Content-Type {}",
                npz::NPZ
            ))
        })?;
        (
            to_map(request.inputs),
            request.nonce.or(q.nonce),
            request.verify.or(q.verify),
        )
    };
    let verify: Verify = match verify.as_deref() {
        Some(v) => v.parse()?,
        None => Verify::default(),
    };
    let routed = node
        .route(&name, q.version.as_deref(), inputs, nonce, verify)
        .await?;
    let receipt_header = HeaderValue::from_str(&routed.receipt.id.to_string()).ok();
    // A single execution's one receipt is `receipt` itself; a quorum lists
    // every member's.
    let (receipts, quorum) = match routed.quorum {
        Some(q) => {
            let json = QuorumJson {
                wanted: q.wanted as u64,
                agreed: q.agreed as u64,
                dissent: q
                    .dissent
                    .iter()
                    .map(|d| Dissent {
                        peer: d.peer.to_string(),
                        operator: d.receipt.body.node,
                        receipt: d.receipt.id,
                    })
                    .collect(),
            };
            (q.receipts, Some(json))
        }
        None => (Vec::new(), None),
    };
    let mut answer = InferResponse {
        executed_by: Some(Executor {
            peer: routed.executor.to_string(),
            operator: routed.receipt.body.node,
            admitted: Some(node.is_admitted(&routed.receipt.body.node)),
        }),
        route: routed.route.iter().map(|p| p.to_string()).collect(),
        receipts,
        quorum,
        outputs: Default::default(),
        receipt: routed.receipt,
        proof: routed.proof,
    };
    let mut response = if names_npz(&headers, header::ACCEPT) {
        // The outputs as arrays, and the rest of the answer beside them.
        let rest = serde_json::to_vec(&answer)
            .map_err(|e| NodeError::Internal(format!("the answer does not serialize: {e}")))?;
        let body = npz::write_npz(&routed.outputs, &[(npz::VOUCH_MEMBER, &rest)]);
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(npz::NPZ))],
            body,
        )
            .into_response()
    } else {
        answer.outputs = from_map(routed.outputs);
        json(StatusCode::OK, &answer)
    };
    if let Some(h) = receipt_header {
        response.headers_mut().insert("x-vouch-receipt", h);
    }
    Ok(response)
}

async fn get_receipt(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_digest(Kind::Receipt, &id)?;
    Ok(json(StatusCode::OK, &node.receipt(&id)?))
}

async fn get_proof(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_digest(Kind::Receipt, &id)?;
    Ok(json(StatusCode::OK, &node.proof(&id)?))
}

async fn trace_receipt(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_digest(Kind::Receipt, &id)?;
    Ok(json(StatusCode::OK, &node.trace(&id)?))
}

async fn report_receipt(State(node): State<Arc<Node>>, body: Bytes) -> ApiResult<Response> {
    let receipt: vouch_types::Receipt = serde_json::from_slice(&body).map_err(|e| {
        NodeError::BadRequest(format!(
            "the body must be a receipt as JSON (as `GET /v1/receipts/{{id}}` returns it): {e}"
        ))
    })?;
    Ok(json(
        StatusCode::ACCEPTED,
        &node.report_receipt(receipt).await?,
    ))
}

async fn get_trace_entry(
    State(node): State<Arc<Node>>,
    Path((id, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_digest(Kind::Receipt, &id)?;
    let index: u64 = index.parse().map_err(|_| {
        NodeError::BadRequest(format!(
            "trace index `{index}` must be a non-negative integer"
        ))
    })?;
    Ok(json(StatusCode::OK, &node.reveal_step(&id, index).await?))
}

/// Query parameters the upload route accepts, for the OpenAPI document.
pub const PUSH_PARAMS: [&str; 4] = ["name", "version", "license", "input_shape"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_shapes_parse() {
        assert_eq!(
            parse_input_shape("float_input=N,4").unwrap(),
            (
                "float_input".into(),
                vec![Dim::Symbol("N".into()), Dim::Fixed(4)]
            )
        );
        assert!(parse_input_shape("x").unwrap_err().contains("NAME=DIM"));
        assert!(
            parse_input_shape("x=1,-2")
                .unwrap_err()
                .contains("neither a number")
        );
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_with_the_error_body() {
        use tower::ServiceExt;
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let path = "/boom";
        let app = axum::Router::new()
            .route(path, axum::routing::get(boom))
            .layer(catch_panics());
        let resp = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal", "{v}");
    }

    #[test]
    fn queries_decode() {
        assert_eq!(
            query_pairs("name=a%2Db&input_shape=x%3DN%2C4&v=&license=MIT+X"),
            vec![
                ("name".into(), "a-b".into()),
                ("input_shape".into(), "x=N,4".into()),
                ("v".into(), "".into()),
                ("license".into(), "MIT X".into())
            ]
        );
        // Malformed escapes stay as they are.
        assert_eq!(
            query_pairs("a=100%&b=%zz"),
            vec![("a".into(), "100%".into()), ("b".into(), "%zz".into())]
        );
    }
}
