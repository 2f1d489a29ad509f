//! The node through its real HTTP API: hub, inference, receipts, restarts,
//! and every kind of bad input. Each bad input gets a clear error and the
//! node keeps serving.

mod common;

use std::time::Duration;

use common::*;
use vouch_api::{InferRequest, JsonTensor, to_map};
use vouch_client::{ClientError, PushParams};
use vouch_node::NodeConfig;
use vouch_types::{Tensor, merkle};

fn iris_params() -> PushParams {
    PushParams {
        name: "iris".into(),
        version: None,
        license: Some("MIT".into()),
        input_shapes: vec!["float_input=N,4".into()],
        ..PushParams::default()
    }
}

fn iris_request(rows: usize) -> InferRequest {
    let data: Vec<f32> = (0..rows * 4).map(|i| [5.1, 3.5, 1.4, 0.2][i % 4]).collect();
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(
        "float_input".to_string(),
        JsonTensor(Tensor::from_f32(vec![rows as u64, 4], &data).unwrap()),
    );
    InferRequest {
        inputs,
        nonce: Some("n-1".into()),
        verify: None,
    }
}

fn api_error(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api {
            status,
            code,
            message,
        }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn push_infer_verify_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let iris = models_dir().join("iris.onnx");
    let node = TestNode::in_dir(dir.path()).await;

    let info = node.client.push_file(&iris, &iris_params()).await.unwrap();
    assert_eq!((info.name.as_str(), info.version.as_str()), ("iris", "1"));
    assert_eq!(info.schema.inputs[0].name, "float_input");
    let again = node
        .client
        .push_file(
            &iris,
            &PushParams {
                version: Some("2".into()),
                ..iris_params()
            },
        )
        .await
        .unwrap();
    assert_eq!(again.version, "2");
    let list = node.client.list_models().await.unwrap();
    assert_eq!(list.models.len(), 2);
    let detail = node.client.show_model("iris", None).await.unwrap();
    assert_eq!(detail.model.version, "2");
    assert_eq!(detail.versions, ["1", "2"]);

    // fetch: the blob is the file, byte for byte
    let blob = node.client.blob(&info.files[0].digest).await.unwrap();
    assert_eq!(blob, std::fs::read(&iris).unwrap());

    let req = iris_request(3);
    let answer = node.client.infer("iris", Some("1"), &req).await.unwrap();
    let receipt = answer.receipt.clone();
    receipt.verify().unwrap();
    receipt.verify_inputs(&to_map(req.inputs.clone())).unwrap();
    receipt
        .verify_outputs(&to_map(answer.outputs.clone()))
        .unwrap();
    assert_eq!(receipt.body.model, info.id);
    assert_eq!(receipt.body.nonce, "n-1");
    assert_eq!(receipt.body.node, node.node.public_key());
    assert!(receipt.body.trace.len > 0);
    assert_eq!(answer.outputs["label"].0.to_f64_vec(), [0.0, 0.0, 0.0]);

    // every trace entry can be revealed and checks against the root
    for index in 0..receipt.body.trace.len {
        let e = node.client.trace_entry(&receipt.id, index).await.unwrap();
        assert!(merkle::verify(
            &receipt.body.trace.root,
            e.len,
            e.index,
            &e.leaf,
            &e.path
        ));
        assert!(e.step.is_some());
    }
    let (status, _, msg) = api_error(
        node.client
            .trace_entry(&receipt.id, receipt.body.trace.len)
            .await,
    );
    assert_eq!(status, 404);
    assert!(msg.contains("index below"), "{msg}");

    let key = node.node.public_key();
    node.stop().await;

    // Everything survives a restart: models, blobs, receipts, the key.
    let node = TestNode::in_dir(dir.path()).await;
    assert_eq!(node.node.public_key(), key);
    assert_eq!(node.client.list_models().await.unwrap().models.len(), 2);
    assert_eq!(node.client.receipt(&receipt.id).await.unwrap(), receipt);
    let answer2 = node.client.infer("iris", Some("1"), &req).await.unwrap();
    assert_eq!(answer2.receipt.body.output, receipt.body.output);
    assert_eq!(answer2.receipt.body.trace, receipt.body.trace);
    node.stop().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.max_upload_bytes = 1 << 20;
    let node = TestNode::start(config).await;
    let files = tempfile::tempdir().unwrap();
    let magika = std::fs::read(models_dir().join("magika.onnx")).unwrap();
    let p = |name: &str| PushParams {
        name: name.into(),
        ..Default::default()
    };

    let truncated = write(
        files.path(),
        "trunc.onnx",
        &std::fs::read(models_dir().join("silero-vad.onnx")).unwrap()[..200_000],
    );
    let (status, code, msg) = api_error(node.client.push_file(&truncated, &p("trunc")).await);
    assert_eq!((status, code.as_str()), (422, "invalid_model"), "{msg}");
    assert!(msg.contains("not a valid ONNX model"), "{msg}");

    let text = write(files.path(), "notes.onnx", b"this is not a model at all\n");
    let (status, code, _) = api_error(node.client.push_file(&text, &p("text")).await);
    assert_eq!((status, code.as_str()), (422, "invalid_model"));

    let empty = write(files.path(), "empty.onnx", b"");
    let (status, _, msg) = api_error(node.client.push_file(&empty, &p("empty")).await);
    assert_eq!(status, 422);
    assert!(msg.contains("empty"), "{msg}");

    let fancy = write(files.path(), "fancy.onnx", &tiny_model("FancyOp", false));
    let (status, code, msg) = api_error(node.client.push_file(&fancy, &p("fancy")).await);
    assert_eq!((status, code.as_str()), (422, "unsupported_operator"));
    assert!(
        msg.contains("FancyOp") && msg.contains("tract-onnx"),
        "{msg}"
    );

    let big = write(files.path(), "magika.onnx", &magika);
    let (status, code, msg) = api_error(node.client.push_file(&big, &p("magika")).await);
    assert_eq!((status, code.as_str()), (413, "payload_too_large"), "{msg}");
    assert!(msg.contains("--max-upload-bytes"), "{msg}");

    let good = write(files.path(), "add.onnx", &tiny_model("Add", true));
    let (status, code, msg) = api_error(node.client.push_file(&good, &p("bad name!")).await);
    assert_eq!((status, code.as_str()), (400, "bad_request"), "{msg}");
    let (status, _, msg) = api_error(
        node.client
            .push_file(
                &good,
                &PushParams {
                    input_shapes: vec!["nope=1,3".into()],
                    ..p("add")
                },
            )
            .await,
    );
    assert_eq!(status, 422);
    assert!(msg.contains("`nope`"), "{msg}");

    // Nothing from the refused uploads is stored or left behind.
    assert!(blob_files(dir.path()).is_empty());
    assert_eq!(tmp_files(dir.path()), 0);

    // The node keeps serving: a good model goes in, and a conflicting
    // version is refused.
    node.client
        .push_file(
            &good,
            &PushParams {
                version: Some("1".into()),
                ..p("add")
            },
        )
        .await
        .unwrap();
    let relu = write(files.path(), "relu.onnx", &tiny_model("Relu", false));
    let (status, code, msg) = api_error(
        node.client
            .push_file(
                &relu,
                &PushParams {
                    version: Some("1".into()),
                    ..p("add")
                },
            )
            .await,
    );
    assert_eq!((status, code.as_str()), (409, "version_exists"), "{msg}");
    node.client.health().await.unwrap();
    node.stop().await;
}

async fn post_raw(url: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.max_request_bytes = 4096;
    let node = TestNode::start(config).await;
    node.client
        .push_file(&models_dir().join("iris.onnx"), &iris_params())
        .await
        .unwrap();
    let url = format!("{}/v1/infer/iris", node.url);

    let cases: &[(&str, u16, &str, &str)] = &[
        (
            r#"{"inputs":{"x":{"dtype":"float32","shape":[1,4],"data":[1,2,3,4]}}}"#,
            400,
            "invalid_input",
            "unknown input `x`: the model takes `float_input` float32 [N, 4]",
        ),
        (
            r#"{"inputs":{}}"#,
            400,
            "invalid_input",
            "missing input `float_input`",
        ),
        (
            r#"{"inputs":{"float_input":{"dtype":"float64","shape":[1,4],"data":[1,2,3,4]}}}"#,
            400,
            "invalid_input",
            "send \"dtype\": \"float32\"",
        ),
        (
            r#"{"inputs":{"float_input":{"dtype":"float32","shape":[4],"data":[1,2,3,4]}}}"#,
            400,
            "invalid_input",
            "the model wants rank 2",
        ),
        (
            r#"{"inputs":{"float_input":{"dtype":"float32","shape":[2,2],"data":[1,2,3,4]}}}"#,
            400,
            "invalid_input",
            "has 2 at dim 1",
        ),
        (
            r#"{"inputs":{"float_input":{"dtype":"float32","shape":[1,4],"data":[1,2,3]}}}"#,
            400,
            "bad_request",
            "`data` has 3 elements but shape [1, 4] needs 4",
        ),
        (
            r#"{"inputs":{"float_input":{"dtype":"float32","shape":[1,4],"data":[1,2,3,4]}}"#,
            400,
            "bad_request",
            "not a valid infer request",
        ),
        (
            r#"{"inputs":{"float_input":{"dtype":"float31","shape":[1,4],"data":[1,2,3,4]}}}"#,
            400,
            "bad_request",
            "unknown dtype `float31`",
        ),
        (
            r#"{"input":{}}"#,
            400,
            "bad_request",
            "unknown field `input`",
        ),
    ];
    for (body, status, code, needle) in cases {
        let (got_status, json) = post_raw(&url, body).await;
        let msg = json["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(got_status, *status, "{body}: {json}");
        assert_eq!(json["error"]["code"], *code, "{body}: {json}");
        assert!(msg.contains(needle), "{body}: `{msg}` lacks `{needle}`");
    }

    let long_nonce = format!(
        r#"{{"inputs":{{"float_input":{{"dtype":"float32","shape":[1,4],"data":[1,2,3,4]}}}},"nonce":"{}"}}"#,
        "n".repeat(300)
    );
    let (status, json) = post_raw(&url, &long_nonce).await;
    assert_eq!(status, 400, "{json}");

    let huge = serde_json::to_string(&iris_request(500)).unwrap();
    let (status, json) = post_raw(&url, &huge).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{json}"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-request-bytes")
    );

    let (status, json) =
        post_raw(&format!("{}/v1/infer/nosuch", node.url), "{\"inputs\":{}}").await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("iris@1"),
        "{json}"
    );

    let resp = reqwest::get(format!("{}/v1/receipts/rcpt:00", node.url))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = reqwest::get(format!("{}/no/such/route", node.url))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = reqwest::Client::new()
        .delete(format!("{}/v1/hub/models", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    // After all that, a good request is answered.
    node.client
        .infer("iris", None, &iris_request(1))
        .await
        .unwrap();
    let metrics = reqwest::get(format!("{}/metrics", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"vouch_http_requests_total{method="POST",route="/v1/infer/{name}",status="400"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"vouch_inferences_total{model="iris@1",outcome="ok"} 1"#),
        "{metrics}"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_corrupted_blob_is_reported_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::in_dir(dir.path()).await;
    let files = tempfile::tempdir().unwrap();
    let add = write(files.path(), "add.onnx", &tiny_model("Add", true));
    node.client
        .push_file(
            &add,
            &PushParams {
                name: "add".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let info = node
        .client
        .push_file(&models_dir().join("iris.onnx"), &iris_params())
        .await
        .unwrap();
    node.stop().await;

    // Flip one byte of the iris blob on disk.
    let hex = info.files[0].digest.to_hex();
    let path = dir.path().join("store/blobs").join(&hex[..2]).join(&hex);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let node = TestNode::in_dir(dir.path()).await;
    let (status, code, msg) = api_error(node.client.infer("iris", None, &iris_request(1)).await);
    assert_eq!((status, code.as_str()), (500, "blob_corrupted"));
    assert!(
        msg.contains("corrupted") && msg.contains("push the model again"),
        "{msg}"
    );
    let resp = reqwest::get(format!(
        "{}/v1/hub/blobs/{}",
        node.url, info.files[0].digest
    ))
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 500);

    // Other models still serve.
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(
        "x".to_string(),
        JsonTensor(Tensor::from_f32(vec![1, 3], &[1.0, 2.0, 3.0]).unwrap()),
    );
    let answer = node
        .client
        .infer(
            "add",
            None,
            &InferRequest {
                inputs,
                nonce: None,
                verify: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.outputs["y"].0.to_f64_vec(), [2.0, 4.0, 6.0]);

    // Pushing the file again repairs nothing silently: identical content is
    // the same model, so the corrupt blob is rewritten only by a new push of
    // the bytes under a new version.
    node.client
        .push_file(
            &models_dir().join("iris.onnx"),
            &PushParams {
                version: Some("fixed".into()),
                ..iris_params()
            },
        )
        .await
        .unwrap();
    node.client
        .infer("iris", Some("fixed"), &iris_request(1))
        .await
        .unwrap();
    node.stop().await;
}

/// A blob of several chunks is streamed: it arrives byte for byte with
/// its length announced; once a later chunk is corrupted on disk, the
/// transfer is cut short at that chunk (the client's read fails) instead of
/// delivering bytes that do not hash to the digest.
#[tokio::test]
async fn a_large_blob_streams_and_a_corrupt_chunk_cuts_the_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::in_dir(dir.path()).await;
    let file = models_dir().join("magika.onnx");
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes.len() > 3 * vouch_types::blob::CHUNK_SIZE,
        "magika spans several chunks"
    );
    let magika = vouch_node::samples::SAMPLES
        .iter()
        .find(|s| s.name == "magika")
        .unwrap();
    let record = vouch_node::samples::push_file(&node.node, &file, magika.options())
        .await
        .unwrap();
    let digest = record.signed.manifest.files[0].digest;
    let url = format!("{}/v1/hub/blobs/{digest}", node.url);
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.content_length(), Some(bytes.len() as u64));
    assert!(resp.bytes().await.unwrap() == bytes);

    // Corrupt a byte in the third chunk.
    let hex = digest.to_hex();
    let path = dir.path().join("store/blobs").join(&hex[..2]).join(&hex);
    let mut on_disk = std::fs::read(&path).unwrap();
    on_disk[2 * vouch_types::blob::CHUNK_SIZE + 10] ^= 0xff;
    std::fs::write(&path, on_disk).unwrap();
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "the first chunk checks out");
    let read = resp.bytes().await;
    assert!(
        read.is_err(),
        "a transfer with a corrupt chunk must not complete"
    );
    node.stop().await;
}

/// Reads from a raw connection until the server closes it; false when it
/// is still open after `limit`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> (bool, String) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (read.is_ok(), String::from_utf8_lossy(&got).into_owned())
}

/// Hostile clients cannot hold the node: one that sends its headers too
/// slowly is dropped, an upload that stalls is ended, and beyond the
/// connection limit a new connection is told 503 at once (not left
/// hanging) while the others are served; freed slots serve again.
#[tokio::test]
async fn slow_clients_are_dropped_and_connections_are_capped() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.max_connections = 3;
    config.header_timeout = Duration::from_secs(1);
    config.body_idle_timeout = Duration::from_secs(1);
    let node = TestNode::start(config).await;
    let addr = node.url.trim_start_matches("http://").to_string();

    // Headers that never end.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let (closed, _) = closed_within(&mut slow, Duration::from_secs(20)).await;
    assert!(closed, "a client that never finishes its headers was kept");

    // An upload that stops sending.
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/hub/blobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n",
        node.token
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&[7u8; 1000]).await.unwrap();
    let (closed, said) = closed_within(&mut stalled, Duration::from_secs(20)).await;
    assert!(closed, "a stalled upload was kept open");
    assert!(
        said.is_empty() || !said.starts_with("HTTP/1.1 2"),
        "a stalled upload succeeded: {said}"
    );

    node.stop().await;

    // Three idle connections take every slot (headers may take 30 s here):
    // a fourth is refused at once, saying why.
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.max_connections = 3;
    let node = TestNode::start(config).await;
    let addr = node.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let health = || reqwest::get(format!("{}/healthz", node.url));
    let r = health().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let said = r.text().await.unwrap();
    assert!(said.contains("--max-connections"), "{said}");
    // Once they go, the node serves again.
    drop(idle);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while health().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "freed slots do not serve"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.stop().await;

    // One address cannot take every slot: beyond its share it is told
    // 503, while another address is served.
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.max_connections_per_ip = 2;
    let node = TestNode::start(config).await;
    let addr = node.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let r = from([127, 0, 0, 1])
        .get(format!("{}/healthz", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let said = r.text().await.unwrap();
    assert!(said.contains("--max-connections-per-ip"), "{said}");
    let r = from([127, 0, 0, 2])
        .get(format!("{}/healthz", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "another address is served");
    drop(idle);
    node.stop().await;
}

/// A deleted model version is no longer served; the others are; receipts
/// past their retention are collected, the rest kept.
#[tokio::test]
async fn a_deleted_model_is_not_served_and_old_receipts_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    // Receipts are kept one hour: a receipt signed "two hours ago" is
    // past it, one signed now is not.
    config.receipt_retention = Some(Duration::from_secs(3600));
    let node = TestNode::start(config).await;
    let iris = models_dir().join("iris.onnx");
    for v in ["1", "2"] {
        node.client
            .push_file(
                &iris,
                &PushParams {
                    version: Some(v.into()),
                    ..iris_params()
                },
            )
            .await
            .unwrap();
    }
    let fresh = node
        .client
        .infer("iris", Some("1"), &iris_request(1))
        .await
        .unwrap()
        .receipt;
    // Deleting needs a version.
    let resp = reqwest::Client::new()
        .delete(format!("{}/v1/hub/models/iris", node.url))
        .bearer_auth(&node.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("?version="),
        "{body}"
    );
    let gone = node.client.delete_model("iris", "1").await.unwrap();
    assert_eq!(gone.version, "1");
    let (status, _, msg) = api_error(node.client.infer("iris", Some("1"), &iris_request(1)).await);
    assert_eq!(status, 404, "{msg}");
    let (status, _, _) = api_error(node.client.delete_model("iris", "1").await);
    assert_eq!(status, 404);
    node.client
        .infer("iris", Some("2"), &iris_request(1))
        .await
        .unwrap();
    // A receipt signed two hours ago (by this node's key, through the
    // store) is collected; the fresh one and the blob version 2 uses stay.
    let mut old = fresh.body.clone();
    old.timestamp_ms -= 2 * 3600 * 1000;
    old.nonce = "old".into();
    let key = vouch_node::keyfile::load_or_create(&dir.path().join("operator.key")).unwrap();
    let old = old.sign(&key);
    node.node
        .store()
        .put_receipts([(&old, &[][..])].into_iter())
        .unwrap();
    node.node.store().flush().unwrap();
    assert!(node.node.store().receipt(&old.id).unwrap().is_some());
    let freed = node.client.gc().await.unwrap();
    assert_eq!(freed.receipts, 1, "{freed:?}");
    assert_eq!(freed.blobs, 0, "{freed:?}");
    assert!(node.node.store().receipt(&old.id).unwrap().is_none());
    let (status, _, _) = api_error(node.client.receipt(&old.id).await);
    assert_eq!(status, 404);
    assert_eq!(node.client.receipt(&fresh.id).await.unwrap(), fresh);
    node.client
        .infer("iris", Some("2"), &iris_request(1))
        .await
        .unwrap();
    node.stop().await;
}

/// Evidence comes a page at a time, each record with its sequence number;
/// the client follows the pages to the end.
#[tokio::test]
async fn evidence_comes_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::in_dir(dir.path()).await;
    for n in 0..5 {
        let record = serde_json::json!({"kind": "withheld", "n": n}).to_string();
        node.node
            .store()
            .put_evidence(record.as_bytes(), 100)
            .unwrap();
    }
    let page = |q: &'static str| {
        let url = format!("{}/v1/network/evidence{q}", node.url);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let seqs = |v: &serde_json::Value| -> Vec<u64> {
        v["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect()
    };
    let first = page("?limit=2").await;
    assert_eq!(
        (seqs(&first), first["next"].as_u64()),
        (vec![0, 1], Some(1))
    );
    let second = page("?after=1&limit=2").await;
    assert_eq!(
        (seqs(&second), second["next"].as_u64()),
        (vec![2, 3], Some(3))
    );
    let last = page("?after=3&limit=2").await;
    assert_eq!((seqs(&last), last["next"].as_u64()), (vec![4], None));
    assert_eq!(last["evidence"][0]["n"], 4);
    let all = node.client.evidence().await.unwrap();
    assert_eq!(all.len(), 5);
    node.stop().await;
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::in_dir(dir.path()).await;
    node.client
        .push_file(
            &models_dir().join("minilm-int8.onnx"),
            &PushParams {
                name: "minilm".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8i64 {
        let client = node.client.clone();
        tasks.push(tokio::spawn(async move {
            let ids = [101, 2000 + i, 2001 + i, 102];
            let mut inputs = std::collections::BTreeMap::new();
            inputs.insert(
                "input_ids".to_string(),
                JsonTensor(Tensor::from_i64(vec![1, 4], &ids).unwrap()),
            );
            inputs.insert(
                "attention_mask".to_string(),
                JsonTensor(Tensor::from_i64(vec![1, 4], &[1; 4]).unwrap()),
            );
            inputs.insert(
                "token_type_ids".to_string(),
                JsonTensor(Tensor::from_i64(vec![1, 4], &[0; 4]).unwrap()),
            );
            let req = InferRequest {
                inputs,
                nonce: Some(format!("c{i}")),
                verify: None,
            };
            let answer = client.infer("minilm", None, &req).await.unwrap();
            answer.receipt.verify().unwrap();
            answer
                .receipt
                .verify_outputs(&to_map(answer.outputs.clone()))
                .unwrap();
            // Its own request, not a neighbour's: inputs and nonce.
            answer
                .receipt
                .verify_inputs(&to_map(req.inputs.clone()))
                .unwrap();
            assert_eq!(answer.receipt.body.nonce, format!("c{i}"));
            (req, answer)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    // Each concurrent answer is the one a request alone gets.
    for (req, answer) in answers {
        let alone = node.client.infer("minilm", None, &req).await.unwrap();
        assert_eq!(
            to_map(answer.outputs).digest(vouch_types::Kind::Output),
            to_map(alone.outputs).digest(vouch_types::Kind::Output)
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn openapi_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::in_dir(dir.path()).await;
    let doc: serde_json::Value = reqwest::get(format!("{}/openapi.json", node.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/infer/{name}"]["post"].is_object());
    let h = node.client.health().await.unwrap();
    assert_eq!(h.status, "ok");
    assert_eq!(h.node, node.node.public_key());
    node.stop().await;
}

/// What a web page the operator visits, or a stranger without the token,
/// can send: a "simple" cross-origin POST (`text/plain`, no preflight), a
/// request through a rebound host name, or a plain request with no or the
/// wrong token. Operator actions are refused and store nothing; inference
/// and listings stay public.
#[tokio::test]
async fn operator_actions_need_the_token_and_refuse_other_sites() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.allowed_hosts = vec!["node.example".into()];
    let node = TestNode::start(config).await;
    let token_file = dir.path().join(vouch_node::config::ADMIN_TOKEN_FILE);
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        node.token
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let iris = std::fs::read(models_dir().join("iris.onnx")).unwrap();
    let http = reqwest::Client::new();
    let push_url = format!(
        "{}/v1/hub/models?name=iris&input_shape=float_input%3DN%2C4",
        node.url
    );
    let port = node.url.rsplit(':').next().unwrap().to_string();
    // Sends a push with these headers; returns the status and error code.
    let push = |headers: Vec<(&'static str, String)>| {
        let mut req = http
            .post(&push_url)
            .header("content-type", "text/plain")
            .body(iris.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
                body,
            )
        }
    };
    let bearer = format!("Bearer {}", node.token);
    let refused = [
        // A page on another site: the browser adds Origin and
        // Sec-Fetch-Site, and cannot add the token.
        (
            vec![
                ("origin", "http://evil.example".to_string()),
                ("sec-fetch-site", "cross-site".to_string()),
            ],
            (403, "forbidden"),
        ),
        // An older browser that sends only Sec-Fetch-Site, or only Origin.
        (
            vec![("sec-fetch-site", "cross-site".to_string())],
            (403, "forbidden"),
        ),
        (vec![("origin", "null".to_string())], (403, "forbidden")),
        // Another port on the same host is the same site, not the same
        // origin.
        (
            vec![("origin", "http://127.0.0.1:1".to_string())],
            (403, "forbidden"),
        ),
        // Even with the token, a foreign origin is refused.
        (
            vec![
                ("origin", "http://evil.example".to_string()),
                ("authorization", bearer.clone()),
            ],
            (403, "forbidden"),
        ),
        // A page that rebound its own name to the node's address.
        (
            vec![
                ("host", format!("evil.example:{port}")),
                ("origin", format!("http://evil.example:{port}")),
            ],
            (403, "forbidden"),
        ),
        // No token, and a wrong one.
        (vec![], (401, "unauthorized")),
        (
            vec![("authorization", "Bearer 0123".to_string())],
            (401, "unauthorized"),
        ),
        (
            vec![("authorization", format!("Basic {}", node.token))],
            (401, "unauthorized"),
        ),
    ];
    for (headers, want) in refused {
        let (status, code, body) = push(headers.clone()).await;
        assert_eq!((status, code.as_str()), want, "{headers:?}: {body}");
    }
    let (_, _, body) = push(vec![]).await;
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("admin-token") && msg.contains("VOUCH_TOKEN"),
        "{msg}"
    );
    assert!(node.client.list_models().await.unwrap().models.is_empty());

    // The other operator actions are refused without the token too.
    for (path, body) in [
        ("/v1/hub/blobs", "bytes"),
        ("/v1/hub/models/iris/pin", ""),
        ("/v1/audit/llm", "{}"),
    ] {
        let resp = http
            .post(format!("{}{path}", node.url))
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
    let resp = http
        .post(format!("{}/v1/hub/gc", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "gc");
    let resp = http
        .delete(format!("{}/v1/hub/models/iris?version=1", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "delete");

    // With the token, from the node's own origin or from no browser, a
    // push goes through.
    let (status, _, body) = push(vec![
        ("authorization", bearer.clone()),
        ("origin", node.url.clone()),
        ("sec-fetch-site", "same-origin".to_string()),
    ])
    .await;
    assert_eq!(status, 201, "{body}");

    // Inference and listings are public, from any origin, by IP address
    // or an allowed name; a rebound name is refused everywhere.
    let anyone = vouch_client::Client::new(&node.url);
    anyone.infer("iris", None, &iris_request(1)).await.unwrap();
    assert_eq!(anyone.list_models().await.unwrap().models.len(), 1);
    for (host, want) in [
        (format!("node.example:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (format!("evil.example:{port}"), 403),
    ] {
        let resp = http
            .get(format!("{}/v1/hub/models", node.url))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want, "{host}");
    }
    let resp = http
        .post(format!("{}/v1/infer/iris", node.url))
        .header("host", format!("evil.example:{port}"))
        .header("content-type", "text/plain")
        .body(serde_json::to_string(&iris_request(1)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-host evil.example"),
        "{body}"
    );
    node.stop().await;
}
