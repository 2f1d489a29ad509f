//! The node service: hub operations and receipted inference, independent
//! of HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use vouch_api::TraceEntry;
pub use vouch_engine::Fault;
use vouch_engine::gguf::GgufEngine;
pub use vouch_engine::llm::LlmFault;
use vouch_engine::onnx::OnnxEngine;
use vouch_engine::{Engine, LoadOptions, LoadedModel, check_inputs};
use vouch_store::{ModelRecord, Store};
use vouch_types::receipt::{MAX_NONCE_BYTES, RECEIPT_VERSION};
use vouch_types::{
    Determinism, Digest, Dim, EngineInfo, FileEntry, Kind, Manifest, ModelFormat, PublicKey,
    Receipt, ReceiptBody, SecretKey, TensorMap, TraceCommitment, merkle,
};

use crate::cache::ModelCache;
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::keyfile;
use crate::metrics::Metrics;
use crate::receipt_log::ReceiptLog;

/// What a publisher says about a model being pushed.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// Hub name.
    pub name: String,
    /// Version; the next integer version when absent.
    pub version: Option<String>,
    /// License identifier.
    pub license: String,
    /// Input shape overrides.
    pub input_shapes: BTreeMap<String, Vec<Dim>>,
    /// A stored blob holding the model's `tokenizer.json` (for embedding
    /// models).
    pub tokenizer: Option<Digest>,
    /// Make the model provable (`verify: "proof"`): compile its circuit
    /// with these options (the input range, and how many bits weights and
    /// activations keep) and name it in the manifest.
    pub provable: Option<vouch_proof::circuit::Options>,
}

/// The result of one inference.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Named outputs.
    pub outputs: TensorMap,
    /// The signed receipt.
    pub receipt: Receipt,
}

/// The engines a node runs, one per model format.
#[derive(Clone)]
pub struct Engines {
    onnx: Arc<OnnxEngine>,
    gguf: Arc<GgufEngine>,
}

impl Engines {
    fn new(config: &NodeConfig) -> Engines {
        let defaults = GgufEngine::new();
        // One setting for the process: the last node started sets it.
        vouch_engine::onnx::set_threads(config.onnx_threads);
        Engines {
            onnx: Arc::new(OnnxEngine::new()),
            gguf: Arc::new(GgufEngine {
                slots: config.llm_slots.max(1),
                context: config.llm_context.max(16),
                ubatch: config.llm_ubatch,
                queue: config.llm_queue,
                threads: match config.llm_threads {
                    0 => defaults.threads,
                    n => n,
                },
                ..defaults
            }),
        }
    }

    /// The engine for a format.
    pub fn get(&self, format: ModelFormat) -> Arc<dyn Engine> {
        match format {
            ModelFormat::Gguf => self.gguf.clone(),
            _ => self.onnx.clone(),
        }
    }

    /// Loads a registered model from the store, re-hashing its blob first.
    pub fn load(
        &self,
        store: &Store,
        manifest: &Manifest,
    ) -> Result<Arc<dyn LoadedModel>, NodeError> {
        let file = manifest.file("model").ok_or_else(|| {
            NodeError::InvalidModel(format!("model {} has no `model` file", manifest.name))
        })?;
        let path = store.verified_path(&file.digest)?;
        Ok(self
            .get(manifest.format)
            .load_path(&path, &manifest.schema)?)
    }
}

/// What the layer above hears of the service's work, so that the service
/// never reaches up: the network layer announces new models, and keeps the
/// transcripts of generated answers for auditors and gossips their
/// receipts. A service on its own has none.
pub trait Hooks: Send + Sync {
    /// A model was registered or deleted here.
    fn models_changed(&self) -> futures_util::future::BoxFuture<'_, ()>;
    /// A generation finished whose receipt is offered to sampled audits.
    fn generated<'a>(
        &'a self,
        receipt: &'a Receipt,
        transcript: vouch_types::llm::Transcript,
    ) -> futures_util::future::BoxFuture<'a, ()>;
}

/// A node's local state: store, engines, operator key, receipt log,
/// loaded-model cache and the worker pool inference runs on.
pub struct Service {
    pub(crate) config: NodeConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) receipts: Arc<ReceiptLog>,
    pub(crate) encoders:
        std::sync::Mutex<std::collections::HashMap<Digest, Arc<vouch_engine::embed::TextEncoder>>>,
    pub(crate) key: SecretKey,
    /// What operator actions over HTTP must present (`guard`).
    admin_token: String,
    pub(crate) engines: Engines,
    pub(crate) cache: ModelCache,
    /// The layer above, when one attached itself ([`Service::set_hooks`]).
    hooks: std::sync::OnceLock<std::sync::Weak<dyn Hooks>>,
    workers: crate::workers::Workers,
    /// Per model id: how long a run takes, smoothed (seconds).
    run_times: std::sync::Mutex<std::collections::HashMap<Digest, f64>>,
    load_lock: tokio::sync::Mutex<()>,
    metrics: Metrics,
    started: Instant,
    /// Client for external engines.
    pub(crate) http: reqwest::Client,
    /// The relative tolerance of teacher-forced LLM checks where the
    /// network sets one (the ledger's `llm_tolerance_ppm`), as f64 bits;
    /// NaN: the model's own class.
    llm_rtol: std::sync::atomic::AtomicU64,
    /// The statistical rule's parameters where the network sets them (the
    /// ledger's); `None`: the strict check.
    llm_rule: std::sync::Mutex<Option<RuleParams>>,
    /// The substitute model a faulty node generates with
    /// (`NodeConfig::llm_substitute`), once loaded.
    pub(crate) substitute: tokio::sync::OnceCell<Arc<dyn LoadedModel>>,
    /// Circuits and their keys, per provable model id, once derived
    /// (keys take a fraction of a second per model; a node proves the
    /// same few small models again and again).
    pub(crate) provers:
        std::sync::Mutex<std::collections::HashMap<Digest, Arc<vouch_proof::Prover>>>,
    /// The proofs of the last proven answers, by receipt id.
    pub(crate) proofs: std::sync::Mutex<crate::cache::Recent<Digest, Arc<vouch_proof::Bundle>>>,
    /// The verifying keys of circuits whose proofs this node checked for
    /// others (routed proven answers), by circuit digest.
    pub(crate) verifiers:
        std::sync::Mutex<crate::cache::Recent<Digest, Arc<vouch_proof::VerifyingKey>>>,
}

impl Service {
    /// The tolerance teacher-forced LLM checks on this node use where the
    /// network sets one ([`Service::set_llm_tolerance`]); `None`: each
    /// model's own class.
    pub fn llm_tolerance(&self) -> Option<f64> {
        let rtol = f64::from_bits(self.llm_rtol.load(std::sync::atomic::Ordering::Relaxed));
        (!rtol.is_nan()).then_some(rtol)
    }

    /// Sets the tolerance of teacher-forced LLM checks (the ledger's
    /// parameter, applied as governance changes it); `None` goes back to
    /// each model's own.
    pub fn set_llm_tolerance(&self, rtol: Option<f64>) {
        self.llm_rtol.store(
            rtol.unwrap_or(f64::NAN).to_bits(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Sets the statistical rule's parameters (the ledger's, applied as
    /// governance changes them); `None` goes back to the strict check.
    pub fn set_llm_rule(&self, rule: Option<RuleParams>) {
        *self.llm_rule.lock().unwrap_or_else(|e| e.into_inner()) = rule;
    }

    /// The rule teacher-forced LLM checks apply at tolerance `rtol` to an
    /// answer of hardware class `class`: the network's statistical rule for
    /// that class where it sets one, else the strict check.
    pub fn llm_rule(
        &self,
        rtol: f64,
        class: vouch_types::llm_rule::HardwareClass,
    ) -> vouch_types::llm_rule::AuditRule {
        use vouch_types::llm_rule::{ALPHA, AuditRule, HardwareClass};
        match *self.llm_rule.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(p) => AuditRule {
                tolerance: rtol,
                exceed_rate: match class {
                    HardwareClass::Cpu => p.cpu_exceed_rate,
                    HardwareClass::Accelerator => p.exceed_rate,
                },
                hard: p.hard.max(rtol),
                alpha: ALPHA,
            },
            None => AuditRule::strict(rtol),
        }
    }
}

/// The statistical rule's parameters a network sets (`docs/llm-audit.md`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleParams {
    /// The honest rate of tokens beyond the tolerance in answers computed
    /// on accelerators.
    pub exceed_rate: f64,
    /// The same on CPUs.
    pub cpu_exceed_rate: f64,
    /// The hard bound.
    pub hard: f64,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("key", &self.key.public())
            .field("data", &self.config.data_dir)
            .finish()
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

pub(crate) fn join_error(e: tokio::task::JoinError) -> NodeError {
    NodeError::Internal(format!("a worker task failed: {e}"))
}

/// Runs blocking I/O (the store's files and database) on the blocking
/// pool. CPU-bound work goes through [`Service::compute`] instead, which
/// bounds how many run at once and keeps them on the same threads.
pub async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, NodeError>
where
    T: Send + 'static,
    E: Into<NodeError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(join_error)?
        .map_err(Into::into)
}

/// Bytes past the upload limit read and discarded from a refused upload
/// before answering (see `Service::discard_upload`).
const DRAIN_BYTES: u64 = 256 << 20;

/// Models whose runs take less than this (smoothed) run in place rather
/// than on a compute thread ([`Service::compute_sized`]).
const SHORT_RUN_SECS: f64 = 0.000_5;

enum Chunk {
    Data(Bytes),
    Abort,
}

impl Service {
    /// Opens the node's store and operator key under `config.data_dir`.
    pub fn open(config: NodeConfig) -> Result<Arc<Service>, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            NodeError::Storage(format!(
                "cannot create data directory {}: {e}; pass a writable --data-dir",
                config.data_dir.display()
            ))
        })?;
        let key = keyfile::load_or_create(&config.data_dir.join("operator.key"))?;
        let admin_token = match &config.admin_token {
            Some(t) => t.clone(),
            None => keyfile::load_or_create_token(
                &config.data_dir.join(crate::config::ADMIN_TOKEN_FILE),
            )?,
        };
        let store = Arc::new(Store::open(&config.data_dir.join("store"))?);
        let engines = Engines::new(&config);
        let external_timeout = config.external_timeout;
        let service = Arc::new(Service {
            cache: ModelCache::new(config.cache_bytes),
            workers: crate::workers::Workers::new(config.workers),
            config,
            receipts: Arc::new(ReceiptLog::start(store.clone())),
            store,
            key,
            admin_token,
            engines,
            encoders: Default::default(),
            run_times: Default::default(),
            load_lock: tokio::sync::Mutex::new(()),
            hooks: std::sync::OnceLock::new(),
            metrics: Metrics::default(),
            started: Instant::now(),
            llm_rtol: std::sync::atomic::AtomicU64::new(f64::NAN.to_bits()),
            llm_rule: std::sync::Mutex::new(None),
            substitute: tokio::sync::OnceCell::new(),
            provers: Default::default(),
            proofs: std::sync::Mutex::new(crate::cache::Recent::new(KEPT_PROOFS)),
            verifiers: std::sync::Mutex::new(crate::cache::Recent::new(KEPT_VERIFIERS)),
            http: reqwest::Client::builder()
                .connect_timeout(external_timeout.min(std::time::Duration::from_secs(10)))
                .read_timeout(external_timeout)
                .build()
                .map_err(|e| NodeError::Internal(format!("building the HTTP client: {e}")))?,
        });
        // Garbage collection by itself, hourly, while the service lives
        // (on a runtime: tools that open a store without one collect with
        // `Service::gc`).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&service);
            runtime.spawn(async move {
                let mut every = tokio::time::interval(GC_EVERY);
                every.tick().await;
                loop {
                    every.tick().await;
                    let Some(service) = weak.upgrade() else {
                        return;
                    };
                    if let Err(e) = service.gc().await {
                        tracing::warn!(error = %e, "garbage collection failed");
                    }
                }
            });
        }
        Ok(service)
    }

    /// The operator key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// Attaches the layer above: it hears of models registered or deleted, and of
    /// generations offered to audits. Held weakly (the layer above holds
    /// this service); a second call is ignored.
    pub fn set_hooks(&self, hooks: std::sync::Weak<dyn Hooks>) {
        let _ = self.hooks.set(hooks);
    }

    /// The layer above, while it lives.
    pub(crate) fn hooks(&self) -> Option<Arc<dyn Hooks>> {
        self.hooks.get().and_then(std::sync::Weak::upgrade)
    }

    /// Whether `token` is the admin token (compared in constant time).
    pub fn is_admin_token(&self, token: &str) -> bool {
        let (a, b) = (token.as_bytes(), self.admin_token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The store: blobs, models, receipts, traces and evidence.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The operator key, which signs receipts, verdicts and announcements.
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// The engines, one per model format.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// The loaded-model cache.
    pub fn cache(&self) -> &ModelCache {
        &self.cache
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus text of all metrics, with `extra` gauges (name,
    /// help, value) from the layers above.
    pub fn render_metrics(&self, extra: &[(&str, &str, f64)]) -> String {
        let (models, bytes) = self.cache.usage();
        let registered = self.store.list_models().map_or(0, |m| m.len());
        let receipts = self.store.receipt_count().unwrap_or(0);
        let own = [
            (
                "vouch_models_registered",
                "Model versions in the registry.",
                registered as f64,
            ),
            (
                "vouch_models_loaded",
                "Models in the loaded-model cache.",
                models as f64,
            ),
            (
                "vouch_model_cache_bytes",
                "Approximate bytes held by loaded models.",
                bytes as f64,
            ),
            (
                "vouch_model_cache_budget_bytes",
                "Memory budget of the model cache.",
                self.config.cache_bytes as f64,
            ),
            (
                "vouch_receipts_stored",
                "Receipts in the receipt log.",
                receipts as f64,
            ),
            (
                "vouch_inference_workers",
                "Inferences that may run at once.",
                self.config.workers as f64,
            ),
            (
                "vouch_uptime_seconds",
                "Seconds since the node started.",
                self.started.elapsed().as_secs_f64(),
            ),
        ];
        self.metrics.render(&[&own[..], extra].concat())
    }

    /// Writes the receipts appended so far and makes them durable.
    pub async fn flush(&self) {
        let (log, store) = (self.receipts.clone(), self.store.clone());
        match tokio::task::spawn_blocking(move || log.flush(&store)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "flushing receipts failed"),
            // The runtime is shutting down: the receipt log flushes what
            // is left when it is dropped.
            Err(e) if e.is_cancelled() => tracing::debug!("flush cancelled at shutdown"),
            Err(e) => tracing::warn!(error = %e, "flush task failed"),
        }
    }

    /// Runs CPU-bound work on the node's compute threads, at most `workers`
    /// at once, back-to-back jobs on the same thread (`workers.rs`).
    pub async fn compute<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        self.compute_sized(false, f).await
    }

    /// [`Service::compute`], but `short` work (well under a millisecond) runs
    /// on this thread, turned into a blocking one (tokio's
    /// `block_in_place`: the runtime hands this worker's other tasks to
    /// another), never blocking the runtime either way. That saves the two
    /// thread hand-offs to a compute thread and back, most of what a tiny
    /// model's request costs. Longer work goes to the compute threads, so that one task
    /// joining several runs (an embeddings request) runs them in parallel.
    pub async fn compute_sized<T: Send + 'static>(
        &self,
        short: bool,
        f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let permit = self.workers.permit().await?;
        let threaded = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        if short && threaded {
            let out = tokio::task::block_in_place(f);
            drop(permit);
            return out;
        }
        self.workers.run(permit, f).await
    }

    /// Whether runs of model `id` have been short enough to run in place
    /// ([`Service::compute_sized`]).
    fn runs_short(&self, id: &Digest) -> bool {
        let times = self.run_times.lock().unwrap_or_else(|e| e.into_inner());
        times.get(id).is_some_and(|&t| t < SHORT_RUN_SECS)
    }

    /// Folds one run's duration into model `id`'s smoothed run time.
    fn ran(&self, id: Digest, secs: f64) {
        let mut times = self.run_times.lock().unwrap_or_else(|e| e.into_inner());
        let t = times.entry(id).or_insert(secs);
        *t = 0.8 * *t + 0.2 * secs;
    }

    /// Every registered model version, oldest first.
    pub fn list_models(&self) -> Result<Vec<ModelRecord>, NodeError> {
        Ok(self.store.list_models()?)
    }

    /// A model by name (newest version unless `version` is given).
    pub fn find_model(&self, name: &str, version: Option<&str>) -> Result<ModelRecord, NodeError> {
        self.store.find_model(name, version)?.ok_or_else(|| {
            let known: Vec<String> = self
                .store
                .list_models()
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.label())
                .collect();
            let which = match version {
                Some(v) => format!("{name}@{v}"),
                None => name.to_string(),
            };
            NodeError::NotFound(format!(
                "no model `{which}` on this node; known models: [{}]; push it with `vouch model push FILE --name {name}`",
                known.join(", ")
            ))
        })
    }

    /// Receives a model upload, validates that the engine can run it, and
    /// registers it. Nothing is stored unless the whole upload arrives and
    /// validates.
    pub async fn push_model<S, E>(
        &self,
        options: PushOptions,
        mut body: S,
    ) -> Result<ModelRecord, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let invalid = if !valid_name(&options.name) {
            Some(format!(
                "model name `{}` is not valid: use 1-128 letters, digits, `-`, `_` or `.`",
                options.name
            ))
        } else {
            options
                .version
                .as_ref()
                .filter(|v| !valid_name(v))
                .map(|v| {
                    format!(
                        "version `{v}` is not valid: use 1-128 letters, digits, `-`, `_` or `.`"
                    )
                })
        };
        if let Some(message) = invalid {
            self.discard_upload(&mut body).await;
            return Err(NodeError::BadRequest(message));
        }
        let (tx, rx) = mpsc::channel::<Chunk>(8);
        let store = self.store.clone();
        let engines = self.engines.clone();
        let key = self.key.clone();
        let writer = tokio::task::spawn_blocking(move || {
            write_and_register(&store, &engines, &key, options, rx)
        });

        let limit = self.config.max_upload_bytes;
        let mut received = 0u64;
        let mut failure = None;
        while let Some(piece) = body.next().await {
            match piece {
                Ok(bytes) => {
                    received += bytes.len() as u64;
                    if received > limit {
                        failure = Some(NodeError::TooLarge(format!(
                            "upload exceeds this node's limit of {limit} bytes; raise --max-upload-bytes"
                        )));
                        let _ = tx.send(Chunk::Abort).await;
                        self.discard_upload(&mut body).await;
                        break;
                    }
                    if tx.send(Chunk::Data(bytes)).await.is_err() {
                        // The writer failed; its error is reported below.
                        self.discard_upload(&mut body).await;
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(NodeError::BadRequest(format!(
                        "upload interrupted after {received} bytes: {e}; nothing was stored"
                    )));
                    break;
                }
            }
        }
        if failure.is_some() {
            let _ = tx.send(Chunk::Abort).await;
        }
        drop(tx);
        let result = writer.await.map_err(join_error)?;
        if let Some(f) = failure {
            return Err(f);
        }
        let (record, model) = result?;
        self.cache.insert(record.id(), model);
        tracing::info!(
            model = %record.signed.manifest.name,
            version = %record.signed.manifest.version,
            id = %record.id(),
            "model registered"
        );
        if let Some(hooks) = self.hooks() {
            hooks.models_changed().await;
        }
        Ok(record)
    }

    /// Reads and discards the rest of a refused upload, up to a bound past
    /// the upload limit, so that a client still sending its body sees the
    /// error response rather than a connection closed under it.
    pub async fn discard_upload<S, E>(&self, body: &mut S)
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut left = self.config.max_upload_bytes.saturating_add(DRAIN_BYTES);
        while let Some(Ok(bytes)) = body.next().await {
            left = left.saturating_sub(bytes.len() as u64);
            if left == 0 {
                break;
            }
        }
    }

    /// The loaded model for a record, loading (and re-hashing) its blob if
    /// it is not cached.
    pub(crate) async fn loaded(
        &self,
        record: &ModelRecord,
    ) -> Result<Arc<dyn LoadedModel>, NodeError> {
        let id = record.id();
        if let Some(m) = self.cache.get(&id) {
            return Ok(m);
        }
        let _guard = self.load_lock.lock().await;
        if let Some(m) = self.cache.get(&id) {
            return Ok(m);
        }
        let manifest = record.signed.manifest.clone();
        let store = self.store.clone();
        let engines = self.engines.clone();
        let model = self
            .compute(move || engines.load(&store, &manifest))
            .await
            .inspect_err(|e| tracing::error!(model = %id, error = %e, "loading model failed"))?;
        self.cache.insert(id, model.clone());
        Ok(model)
    }

    /// Runs a model on named inputs and signs a receipt for the answer.
    pub async fn infer(
        &self,
        name: &str,
        version: Option<&str>,
        inputs: TensorMap,
        nonce: Option<String>,
    ) -> Result<Answer, NodeError> {
        let nonce = nonce.unwrap_or_default();
        let record = self.find_model(name, version)?;
        self.run_record(record, inputs, nonce).await
    }

    /// Runs the model with id `id` (as [`infer`](Service::infer) does).
    pub async fn infer_id(
        &self,
        id: &Digest,
        inputs: TensorMap,
        nonce: String,
    ) -> Result<Answer, NodeError> {
        self.run_record(self.model_record(id)?, inputs, nonce).await
    }

    /// The registered model `id`, or why there is none.
    pub fn model_record(&self, id: &Digest) -> Result<ModelRecord, NodeError> {
        self.store
            .model_by_id(id)?
            .ok_or_else(|| NodeError::NotFound(format!("no model {id} on this node")))
    }

    /// Runs registered model `record` on `inputs` and signs the receipt.
    pub async fn run_record(
        &self,
        record: ModelRecord,
        inputs: TensorMap,
        nonce: String,
    ) -> Result<Answer, NodeError> {
        check_nonce(&nonce)?;
        let model = self.loaded(&record).await?;
        self.receipts.check()?;
        check_inputs(model.schema(), &inputs)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;

        let model_id = record.id();
        let label = record.label();
        let (trace, fault) = (
            self.config.trace,
            self.config.fault.and_then(vouch_engine::Fault::tensor),
        );
        let signer = self.signer();
        let engine = self.engines.get(record.signed.manifest.format).info();
        let started = Instant::now();
        let result = self
            .compute_sized(self.runs_short(&model_id), move || {
                let ran = Instant::now();
                let exec = match fault {
                    Some(fault) => model.run_faulty(&inputs, trace, fault)?,
                    None => model.run(&inputs, trace)?,
                };
                let ran = ran.elapsed();
                let answer = signer.sign(
                    Ran {
                        model: model_id,
                        inputs: &inputs,
                        outputs: exec.outputs,
                        leaves: exec.leaves,
                        engine,
                        determinism: model.determinism(),
                    },
                    nonce,
                )?;
                Ok((answer, ran))
            })
            .await
            .map(|(answer, ran)| {
                self.ran(model_id, ran.as_secs_f64());
                answer
            });
        self.metrics
            .inference(&label, result.is_ok(), started.elapsed().as_secs_f64());
        result
    }

    /// What signs this node's one-shot answers.
    pub(crate) fn signer(&self) -> Signer {
        Signer {
            key: self.key.clone(),
            log: self.receipts.clone(),
            price: self.config.price,
        }
    }

    /// A stored receipt.
    pub fn receipt(&self, id: &Digest) -> Result<Receipt, NodeError> {
        if let Some(r) = self.receipts.receipt(id) {
            return Ok(r);
        }
        self.store
            .receipt(id)?
            .ok_or_else(|| NodeError::NotFound(format!("no receipt {id} on this node")))
    }

    /// The trace leaves behind a receipt this node signed.
    pub fn trace_leaves(&self, id: &Digest) -> Result<Vec<Digest>, NodeError> {
        match self.receipts.leaves(id) {
            Some(l) => Ok(l.to_vec()),
            None => self
                .store
                .trace_leaves(id)?
                .ok_or_else(|| NodeError::NotFound(format!("no trace stored for receipt {id}"))),
        }
    }

    /// The loaded model with id `id`.
    pub async fn loaded_by_id(&self, id: &Digest) -> Result<Arc<dyn LoadedModel>, NodeError> {
        let record = self
            .store
            .model_by_id(id)?
            .ok_or_else(|| NodeError::NotFound(format!("no model {id} on this node")))?;
        self.loaded(&record).await
    }

    /// Reveals trace entry `index` of a receipt with its Merkle path.
    pub async fn reveal_step(&self, id: &Digest, index: u64) -> Result<TraceEntry, NodeError> {
        let receipt = self.receipt(id)?;
        let leaves = self.trace_leaves(id)?;
        let len = leaves.len() as u64;
        let path = merkle::proof(&leaves, index as usize).ok_or_else(|| {
            NodeError::NotFound(format!(
                "receipt {id} has {len} trace entries; ask for an index below {len}"
            ))
        })?;
        let step = match self.store.model_by_id(&receipt.body.model)? {
            Some(record) => self
                .loaded(&record)
                .await
                .ok()
                .and_then(|m| m.steps().get(index as usize).cloned()),
            None => None,
        };
        Ok(TraceEntry {
            receipt: *id,
            index,
            len,
            step,
            leaf: leaves[index as usize],
            path,
            root: receipt.body.trace.root,
        })
    }

    /// Stores a blob (a tokenizer, say) and returns its digest and size.
    pub async fn put_blob(&self, data: Vec<u8>) -> Result<(Digest, u64), NodeError> {
        let store = self.store.clone();
        blocking(move || store.put_blob(&data)).await
    }

    /// A stored blob's bytes, re-hashed before they are returned.
    pub async fn blob(&self, digest: Digest) -> Result<Vec<u8>, NodeError> {
        let store = self.store.clone();
        blocking(move || store.read_blob(&digest)).await
    }

    /// A stored blob as a stream of its chunks, each re-hashed against the
    /// blob's chunk table as it is read: a download holds a few chunks in
    /// memory, whatever the blob's size, and one nobody reads stops reading
    /// the disk. The first chunk is read and checked before this returns,
    /// so a missing or corrupted blob is an error rather than a broken
    /// transfer; a later chunk that fails its check ends the stream with
    /// the error (the client sees a transfer cut short of its length).
    pub async fn blob_stream(&self, digest: Digest) -> Result<BlobStream, NodeError> {
        let store = self.store.clone();
        let table = {
            let store = store.clone();
            blocking(move || store.chunk_table(&digest)).await?
        };
        let chunks = table.chunks.len() as u64;
        let (tx, rx) = mpsc::channel(BLOB_STREAM_CHUNKS);
        if chunks > 0 {
            let first = {
                let store = store.clone();
                blocking(move || store.read_chunk(&digest, 0)).await?
            };
            let _ = tx.send(Ok(Bytes::from(first))).await;
            tokio::spawn(async move {
                for index in 1..chunks {
                    let store = store.clone();
                    let chunk = blocking(move || store.read_chunk(&digest, index))
                        .await
                        .map(Bytes::from);
                    let failed = chunk.is_err();
                    if tx.send(chunk).await.is_err() || failed {
                        return;
                    }
                }
            });
        }
        Ok(BlobStream {
            size: table.size,
            chunks: rx,
        })
    }

    /// Deletes model `name` at `version`: it is no longer served or
    /// announced; its blobs go at the next [`Service::gc`] unless another
    /// model uses them. Receipts that name it stay verifiable.
    pub async fn delete_model(&self, name: &str, version: &str) -> Result<ModelRecord, NodeError> {
        let store = self.store.clone();
        let (n, v) = (name.to_string(), version.to_string());
        let record = blocking(move || store.delete_model(&n, &v))
            .await?
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "no model `{name}@{version}` on this node; `vouch model ls` lists them"
                ))
            })?;
        self.cache.remove(&record.id());
        tracing::info!(model = %name, %version, id = %record.id(), "model deleted");
        if let Some(hooks) = self.hooks() {
            hooks.models_changed().await;
        }
        Ok(record)
    }

    /// Deletes what nothing needs any more: blobs no model uses (an hour
    /// after they were written), fetches from peers stopped for a day, and
    /// receipts older than `receipt_retention` when one is set.
    pub async fn gc(&self) -> Result<vouch_store::Collected, NodeError> {
        let store = self.store.clone();
        let now = SystemTime::now();
        let retention = vouch_store::Retention {
            blob_grace: BLOB_GRACE,
            partial_age: PARTIAL_AGE,
            receipts_before_ms: self
                .config
                .receipt_retention
                .map(|keep| now_ms().saturating_sub(keep.as_millis() as u64)),
        };
        let freed = blocking(move || store.collect(retention, now)).await?;
        tracing::info!(?freed, "garbage collected");
        Ok(freed)
    }
}

/// Signs the receipt of a one-shot answer (an inference, a proven answer)
/// and logs it with its trace leaves: the operator key, the receipt log
/// and the node's price.
#[derive(Clone)]
pub(crate) struct Signer {
    key: SecretKey,
    log: Arc<ReceiptLog>,
    price: u64,
}

/// A run to sign for: what its receipt states besides the node, the
/// nonce, the time and the price.
pub(crate) struct Ran<'a> {
    pub model: Digest,
    pub inputs: &'a TensorMap,
    pub outputs: TensorMap,
    /// The trace leaves the receipt commits to.
    pub leaves: Vec<Digest>,
    pub engine: EngineInfo,
    pub determinism: Determinism,
}

impl Signer {
    /// Signs the receipt for `ran` and `nonce`, and appends it with its
    /// trace leaves to the receipt log.
    pub(crate) fn sign(&self, ran: Ran<'_>, nonce: String) -> Result<Answer, NodeError> {
        let body = ReceiptBody {
            version: RECEIPT_VERSION,
            model: ran.model,
            request: ran.inputs.digest(Kind::Input),
            output: ran.outputs.digest(Kind::Output),
            trace: TraceCommitment {
                root: merkle::root(&ran.leaves),
                len: ran.leaves.len() as u64,
            },
            engine: ran.engine,
            determinism: ran.determinism,
            seed: None,
            node: self.key.public(),
            nonce,
            timestamp_ms: now_ms(),
            price: self.price,
        };
        let receipt = body.sign(&self.key);
        self.log.append(receipt.clone(), ran.leaves)?;
        Ok(Answer {
            outputs: ran.outputs,
            receipt,
        })
    }
}

/// Proofs a node keeps for `GET /v1/receipts/{id}/proof` (a few kB each).
pub const KEPT_PROOFS: usize = 4096;

/// Verifying keys a node keeps for the routed proofs it checks (each as
/// large as its circuit: ~2 MB for the MNIST MLP).
pub const KEPT_VERIFIERS: usize = 16;

/// Refuses a nonce longer than a receipt carries.
pub(crate) fn check_nonce(nonce: &str) -> Result<(), NodeError> {
    if nonce.len() > MAX_NONCE_BYTES {
        return Err(NodeError::BadRequest(format!(
            "nonce is {} bytes; send at most {MAX_NONCE_BYTES}",
            nonce.len()
        )));
    }
    Ok(())
}

/// How long a blob no model uses is kept (an upload for a push in
/// progress).
const BLOB_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);
/// How long a fetch from peers may stand still before it is given up.
const PARTIAL_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// How often a node collects garbage by itself.
const GC_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Chunks a blob download keeps read ahead of its client.
const BLOB_STREAM_CHUNKS: usize = 2;

/// A blob being read ([`Service::blob_stream`]).
#[derive(Debug)]
pub struct BlobStream {
    /// The blob's size in bytes.
    pub size: u64,
    /// Its chunks in order, each checked; an error ends it.
    pub chunks: mpsc::Receiver<Result<Bytes, NodeError>>,
}

fn next_version(store: &Store, name: &str) -> Result<String, NodeError> {
    let highest = store
        .list_models()?
        .iter()
        .filter(|r| r.signed.manifest.name == name)
        .filter_map(|r| r.signed.manifest.version.parse::<u64>().ok())
        .max();
    Ok(highest.map_or(1, |v| v + 1).to_string())
}

/// Compiles the pushed model `digest` into its circuit, stores the circuit
/// and returns its manifest entry; refuses a model a circuit cannot cover,
/// naming what it lacks.
fn compile_circuit(
    store: &Store,
    format: ModelFormat,
    digest: &Digest,
    options: &vouch_proof::circuit::Options,
) -> Result<FileEntry, NodeError> {
    if format != ModelFormat::Onnx {
        return Err(NodeError::InvalidModel(
            "only ONNX models can be provable; push it without --provable".into(),
        ));
    }
    let bytes = store.read_blob(digest)?;
    let circuit = vouch_proof::Circuit::compile(&bytes, options)
        .map_err(|e| NodeError::InvalidModel(format!("not provable: {e}")))?;
    let encoded = circuit.encode();
    let (digest, size) = store.put_blob(&encoded)?;
    Ok(FileEntry {
        role: vouch_proof::bundle::CIRCUIT_ROLE.into(),
        digest,
        size,
    })
}

/// The blocking half of a push: write the blob as it arrives, validate it
/// with the engine, then commit and register.
fn write_and_register(
    store: &Store,
    engines: &Engines,
    key: &SecretKey,
    options: PushOptions,
    mut rx: mpsc::Receiver<Chunk>,
) -> Result<(ModelRecord, Arc<dyn LoadedModel>), NodeError> {
    let mut writer = store.blob_writer()?;
    let mut head = Vec::new();
    while let Some(chunk) = rx.blocking_recv() {
        match chunk {
            Chunk::Data(bytes) => {
                if head.len() < 4 {
                    head.extend_from_slice(&bytes[..bytes.len().min(4 - head.len())]);
                }
                writer.write(&bytes)?;
            }
            Chunk::Abort => return Err(NodeError::BadRequest("upload aborted".into())),
        }
    }
    if writer.size() == 0 {
        return Err(NodeError::InvalidModel(
            "the upload is empty: send the model file as the request body".into(),
        ));
    }
    let format = if head == b"GGUF" {
        ModelFormat::Gguf
    } else {
        ModelFormat::Onnx
    };
    let model = match format {
        ModelFormat::Gguf => engines
            .get(format)
            .load_path(writer.temp_path(), &Default::default())?,
        _ => {
            let bytes = std::fs::read(writer.temp_path())
                .map_err(|e| NodeError::Storage(format!("reading back the upload: {e}")))?;
            engines.get(format).load(
                &bytes,
                &LoadOptions {
                    input_shapes: options.input_shapes.clone(),
                },
            )?
        }
    };
    let (digest, size) = writer.commit()?;
    let mut files = Vec::new();
    if let Some(tok) = options.tokenizer {
        let bytes = store.read_blob(&tok).map_err(|e| match e {
            vouch_store::StoreError::MissingBlob(_) => NodeError::BadRequest(format!(
                "tokenizer {tok} is not on this node: upload it first with POST /v1/hub/blobs"
            )),
            e => e.into(),
        })?;
        vouch_engine::embed::TextEncoder::from_json(&bytes)?;
        files.push(FileEntry {
            role: "tokenizer".into(),
            digest: tok,
            size: bytes.len() as u64,
        });
    }
    if let Some(circuit) = &options.provable {
        files.push(compile_circuit(store, format, &digest, circuit)?);
    }
    let version = match options.version {
        Some(v) => v,
        None => next_version(store, &options.name)?,
    };
    let manifest = Manifest {
        name: options.name,
        version,
        format,
        files: std::iter::once(FileEntry {
            role: "model".into(),
            digest,
            size,
        })
        .chain(files)
        .collect(),
        schema: model.schema().clone(),
        license: options.license,
        publisher: key.public(),
    };
    let record = store.put_model(manifest.sign(key), now_ms())?;
    Ok((record, model))
}
