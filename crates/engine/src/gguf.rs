//! GGUF language models on llama.cpp (through `llama-cpp-2`, which vendors
//! and statically links it).
//!
//! Each loaded model owns one scheduler thread with one llama.cpp context
//! holding [`GgufEngine::slots`] sequences. Every scheduler step builds one
//! batch: the next token of every sequence that is generating, then prompt
//! chunks of new sequences in the room left (at most [`BATCH_TOKENS`]), so a
//! long prompt or a long answer never blocks a short one. Logits come back
//! to our sampler ([`vouch_types::llm::choose`]); llama.cpp's samplers are
//! not used, so auditors can recompute every choice.
//!
//! Teacher-forced scoring ([`LanguageModel::score`]) runs on the caller's
//! thread in a context of its own.

use std::num::NonZeroU32;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use vouch_types::llm::{TokenLogprobs, choose};
use vouch_types::{
    DType, Determinism, Dim, EngineInfo, ModelFormat, Schema, Tensor, TensorMap, TensorSpec,
};

use crate::constrain::{Constraint, Grammar, choose_among};
use crate::llm::{Abandoned, Job, LanguageModel, Step};
use crate::{Engine, EngineError, Execution, LoadOptions, LoadedModel};

/// The llama-cpp-2 release this engine is built on (receipts pin it).
pub const LLAMA_CPP_2_VERSION: &str = "0.1.160";
/// Most tokens one scheduler step decodes.
pub const BATCH_TOKENS: usize = 512;
/// Tokens llama.cpp computes at once within a step. Its CPU kernels give
/// the same logits for micro-batches of 1 to at least 38 tokens but
/// different ones (off by up to 0.7 on SmolLM2) from 64 up, so generation
/// (one token per sequence) and the audit's teacher-forced pass (the whole
/// answer) both run in micro-batches of this size and agree exactly.
pub const UBATCH_TOKENS: usize = 32;
/// Near-tie tolerance of generated tokens: a re-executed logit gap may
/// differ from the executor's by this fraction of the top logit (taken as
/// at least `vouch_types::llm::LOGIT_SCALE`).
pub const LLM_RTOL: f64 = 0.02;

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            #[cfg(feature = "gpu")]
            load_backend_modules()?;
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Load(format!("llama.cpp did not start: {e}")))
}

/// A `gpu` build has no backend linked in: it loads llama.cpp's backend
/// modules (`libggml-cpu-*.so`, `libggml-cuda.so`, ...) from beside the
/// executable, and from the build's own directory when run where it was
/// built. llama.cpp then offloads every layer to the best device it has.
#[cfg(feature = "gpu")]
fn load_backend_modules() -> Result<(), String> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    if let Some(dir) = &beside {
        llama_cpp_2::llama_backend::load_backends_from_path(dir);
    }
    let has_cpu = || {
        llama_cpp_2::list_llama_ggml_backend_devices()
            .iter()
            .any(|d| d.backend == "CPU")
    };
    if !has_cpu() {
        llama_cpp_2::llama_backend::load_backends();
    }
    if !has_cpu() {
        let dir = beside.map_or_else(
            || "the executable's directory".into(),
            |d| d.display().to_string(),
        );
        return Err(format!(
            "no llama.cpp CPU backend module found in {dir}; a `gpu` build needs the libggml-cpu-*.so files of its build (and libggml-cuda.so for a GPU) beside the vouch binary (docs/gpu.md)"
        ));
    }
    let devices = llama_cpp_2::list_llama_ggml_backend_devices();
    for d in &devices {
        tracing::info!(backend = %d.backend, device = %d.description, memory = d.memory_total, "llama.cpp device");
    }
    if let Some(gpu) = devices.iter().find(|d| d.backend != "CPU") {
        tracing::warn!(
            "language models run on {} ({}): answers generated there differ from teacher-forced audits (batched, or on other hardware) by up to rtol 0.1, more than the strict {LLM_RTOL}; receipts say so, and audits on a ledger judge them by its accelerator rule (llm_exceed_ppm, docs/llm-audit.md), while a node without a ledger audits strictly and disputes some honest answers",
            gpu.description,
            gpu.backend
        );
    }
    Ok(())
}

/// llama.cpp mutates the model while a context is created: one at a time.
static NEW_CONTEXT: Mutex<()> = Mutex::new(());

/// Threads for decoding one token: one fewer than the cores, at least one.
/// llama.cpp's threads spin while they wait for each other, so a thread
/// the node's own work (the HTTP stream, the hash chain) preempts stalls the
/// others for the whole token; on 2 cores one thread decodes faster than
/// two (docs/benchmarks.md). A batch is long enough to use every core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// A quantization llama.cpp can write ([`quantize`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// 4-bit, one scale per block of 32.
    Q4_0,
    /// 5-bit, one scale per block of 32.
    Q5_0,
    /// 8-bit, one scale per block of 32.
    Q8_0,
}

/// Writes `output`, the GGUF model at `input` quantized to `to` with
/// llama.cpp's own quantizer (re-quantizing weights that are quantized
/// already): the substitutes an executor could serve in place of the
/// model a receipt names, which the LLM audits must catch.
#[allow(unsafe_code)]
pub fn quantize(input: &Path, output: &Path, to: Quantization) -> Result<(), EngineError> {
    use llama_cpp_sys_2 as sys;
    backend()?;
    let path = |p: &Path| {
        std::ffi::CString::new(p.to_string_lossy().as_bytes())
            .map_err(|_| EngineError::Run(format!("{} has a NUL byte", p.display())))
    };
    let (input_c, output_c) = (path(input)?, path(output)?);
    // SAFETY: default parameters from llama.cpp itself, two valid C paths
    // that outlive the call; the call reads one file and writes the other.
    let rc = unsafe {
        let mut params = sys::llama_model_quantize_default_params();
        params.ftype = match to {
            Quantization::Q4_0 => sys::LLAMA_FTYPE_MOSTLY_Q4_0,
            Quantization::Q5_0 => sys::LLAMA_FTYPE_MOSTLY_Q5_0,
            Quantization::Q8_0 => sys::LLAMA_FTYPE_MOSTLY_Q8_0,
        };
        params.allow_requantize = true;
        params.nthread = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
        sys::llama_model_quantize(input_c.as_ptr(), output_c.as_ptr(), &params)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(EngineError::Run(format!(
            "llama.cpp could not quantize {} to {to:?} (code {rc})",
            input.display()
        )))
    }
}

/// The GGUF engine.
#[derive(Clone, Debug)]
pub struct GgufEngine {
    /// CPU threads for one token per sequence (decoding one sequence).
    pub threads: usize,
    /// CPU threads for batches of tokens (prompts, audits, several
    /// sequences at once).
    pub batch_threads: usize,
    /// Sequences decoded together in one batch.
    pub slots: usize,
    /// Most tokens (prompt + answer) per sequence; the model's own training
    /// context when smaller.
    pub context: usize,
    /// Tokens llama.cpp computes at once ([`UBATCH_TOKENS`] by default).
    pub ubatch: usize,
    /// Generations that may wait for a slot; one more is refused
    /// ([`EngineError::Busy`]) rather than queued without end.
    pub queue: usize,
    /// llama.cpp's flash attention: `None` leaves it to llama.cpp, which
    /// turns it on wherever the device has the kernel (every CPU). Off
    /// changes the logits (other kernels), so nodes keep the default; the
    /// calibration corpus measures off as honest kernel variation
    /// (`docs/llm-audit.md`).
    pub flash_attention: Option<bool>,
}

impl Default for GgufEngine {
    fn default() -> GgufEngine {
        GgufEngine {
            threads: default_threads(),
            batch_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            slots: 4,
            context: 4096,
            ubatch: UBATCH_TOKENS,
            queue: 16,
            flash_attention: None,
        }
    }
}

impl GgufEngine {
    /// An engine with the default thread count and slots.
    pub fn new() -> GgufEngine {
        GgufEngine::default()
    }

    fn load_file(&self, path: &Path) -> Result<Arc<GgufModel>, EngineError> {
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| EngineError::Malformed {
                format: "GGUF",
                detail: format!("llama.cpp could not load it ({e}); check that the file is a complete GGUF model of an architecture llama.cpp supports"),
            })?;
        let context = self.context.min(model.n_ctx_train() as usize).max(16);
        let template = model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok());
        let vocab = model.n_vocab().max(0) as usize;
        let text = |t: LlamaToken| {
            model
                .vocab()
                .text(t)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let specials = (text(model.vocab().bos()), text(model.vocab().eos()));
        let inner = Arc::new(Inner {
            model,
            context,
            template,
            specials,
            vocab,
            threads: self.threads.max(1) as i32,
            batch_threads: self.batch_threads.max(1) as i32,
            ubatch: self.ubatch.clamp(1, BATCH_TOKENS) as u32,
            flash_attention: match self.flash_attention {
                None => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
                Some(true) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
                Some(false) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            },
        });
        let (tx, rx) = mpsc::sync_channel::<Job>(self.queue);
        let worker = inner.clone();
        let slots = self.slots.max(1);
        let counters = Arc::new(Counters::default());
        let scheduler = counters.clone();
        std::thread::Builder::new()
            .name("vouch-llm".into())
            .spawn(move || schedule(&worker, slots, rx, &scheduler))
            .map_err(|e| EngineError::Load(format!("starting the scheduler thread: {e}")))?;
        let schema = Schema {
            inputs: vec![TensorSpec {
                name: "tokens".into(),
                dtype: Some(DType::I32),
                shape: Some(vec![Dim::Symbol("sequence".into())]),
            }],
            outputs: vec![TensorSpec {
                name: "logits".into(),
                dtype: Some(DType::F32),
                shape: Some(vec![Dim::Fixed(vocab as u64)]),
            }],
        };
        Ok(Arc::new(GgufModel {
            inner,
            jobs: Mutex::new(tx),
            schema,
            slots,
            queue: self.queue,
            counters,
            grammar: OnceLock::new(),
        }))
    }
}

/// The accelerator llama.cpp runs language models on, if any (a `gpu`
/// build with a GPU backend module and device); `None`: the CPU.
fn accelerator() -> Option<String> {
    #[cfg(feature = "gpu")]
    {
        let _ = backend();
        llama_cpp_2::list_llama_ggml_backend_devices()
            .into_iter()
            .find(|d| d.backend != "CPU")
            .map(|d| d.backend)
    }
    #[cfg(not(feature = "gpu"))]
    None
}

impl Engine for GgufEngine {
    /// The version names the accelerator, if any, after a `+`: receipts
    /// state their hardware class (`vouch_types::llm_rule::HardwareClass`).
    fn info(&self) -> EngineInfo {
        static ACCELERATOR: OnceLock<Option<String>> = OnceLock::new();
        let version = match ACCELERATOR.get_or_init(accelerator) {
            Some(backend) => format!("llama-cpp-2 {LLAMA_CPP_2_VERSION} +{backend}"),
            None => format!("llama-cpp-2 {LLAMA_CPP_2_VERSION}"),
        };
        EngineInfo {
            name: "llama.cpp".into(),
            version,
        }
    }

    fn format(&self) -> ModelFormat {
        ModelFormat::Gguf
    }

    fn load(&self, bytes: &[u8], _: &LoadOptions) -> Result<Arc<dyn LoadedModel>, EngineError> {
        if !bytes.starts_with(b"GGUF") {
            return Err(EngineError::Malformed {
                format: "GGUF",
                detail: "the file does not start with the GGUF magic".into(),
            });
        }
        let mut name = [0u8; 8];
        let _ = getrandom::fill(&mut name);
        let path = std::env::temp_dir().join(format!("vouch-{}.gguf", hex(&name)));
        std::fs::write(&path, bytes)
            .map_err(|e| EngineError::Load(format!("writing {}: {e}", path.display())))?;
        let model = self.load_file(&path);
        let _ = std::fs::remove_file(&path);
        Ok(model?)
    }

    fn load_path(&self, path: &Path, _: &Schema) -> Result<Arc<dyn LoadedModel>, EngineError> {
        let mut head = [0u8; 4];
        let ok = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok();
        if !ok || &head != b"GGUF" {
            return Err(EngineError::Malformed {
                format: "GGUF",
                detail: "the file does not start with the GGUF magic".into(),
            });
        }
        Ok(self.load_file(path)?)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Inner {
    model: LlamaModel,
    context: usize,
    template: Option<String>,
    specials: (String, String),
    vocab: usize,
    threads: i32,
    batch_threads: i32,
    ubatch: u32,
    flash_attention: llama_cpp_sys_2::llama_flash_attn_type,
}

impl Inner {
    fn new_context(
        &self,
        sequences: usize,
        tokens: usize,
    ) -> Result<LlamaContext<'_>, EngineError> {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(tokens as u32))
            .with_n_batch(BATCH_TOKENS as u32)
            .with_n_ubatch(self.ubatch)
            .with_n_seq_max(sequences as u32)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.batch_threads)
            .with_flash_attention_policy(self.flash_attention);
        let _guard = NEW_CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
        self.model
            .new_context(backend()?, params)
            .map_err(|e| EngineError::Run(format!("llama.cpp could not create a context: {e}")))
    }
}

/// A GGUF model with its scheduler.
pub struct GgufModel {
    inner: Arc<Inner>,
    jobs: Mutex<mpsc::SyncSender<Job>>,
    schema: Schema,
    slots: usize,
    queue: usize,
    counters: Arc<Counters>,
    /// The vocabulary indexed for constraints, once one is asked for.
    grammar: OnceLock<Result<Arc<Grammar>, String>>,
}

/// What the scheduler reports: jobs sent and not yet finished, and those
/// it stopped because nobody wanted them.
#[derive(Default)]
struct Counters {
    load: AtomicUsize,
    queued: AtomicU64,
    prefill: AtomicU64,
    decode: AtomicU64,
}

impl LoadedModel for GgufModel {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn determinism(&self) -> Determinism {
        Determinism::Tolerant { rtol: LLM_RTOL }
    }

    fn memory_bytes(&self) -> usize {
        // Weights plus the scheduler's KV cache (f16 keys and values).
        let m = &self.inner.model;
        let kv_per_token = 2
            * 2
            * m.n_layer() as usize
            * m.n_head_kv() as usize
            * (m.n_embd() as usize / m.n_head().max(1) as usize);
        m.size() as usize + kv_per_token * self.inner.context * self.slots
    }

    fn steps(&self) -> &[String] {
        &[]
    }

    /// The tensor interface: `tokens` int32 [n] in, the logits that predict
    /// the next token out.
    fn run(&self, inputs: &TensorMap, _trace: bool) -> Result<Execution, EngineError> {
        let t = inputs
            .get("tokens")
            .ok_or_else(|| EngineError::Run("missing `tokens`".into()))?;
        let tokens: Vec<u32> = t
            .data()
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .map(|v| {
                u32::try_from(v)
                    .ok()
                    .filter(|&v| (v as usize) < self.inner.vocab)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| {
                EngineError::Run(format!(
                    "`tokens` must hold token ids in 0..{}",
                    self.inner.vocab
                ))
            })?;
        if tokens.is_empty() {
            return Err(EngineError::Run(
                "`tokens` is empty: send at least one token".into(),
            ));
        }
        let mut last = Vec::new();
        let n = tokens.len();
        self.score(&tokens, n - 1..n, &mut |_, l| last = l.to_vec())?;
        let mut outputs = TensorMap::new();
        let logits = Tensor::from_f32(vec![last.len() as u64], &last)
            .map_err(|e| EngineError::Run(e.to_string()))?;
        outputs.insert("logits", logits);
        Ok(Execution {
            outputs,
            leaves: Vec::new(),
        })
    }

    fn language(&self) -> Option<&dyn LanguageModel> {
        Some(self)
    }
}

impl LanguageModel for GgufModel {
    fn context_length(&self) -> usize {
        self.inner.context
    }

    fn chat_template(&self) -> Option<&str> {
        self.inner.template.as_deref()
    }

    fn special_tokens(&self) -> (String, String) {
        self.inner.specials.clone()
    }

    fn tokenize(&self, text: &str) -> Vec<u32> {
        ModelView(&self.inner).tokenize(text)
    }

    fn piece(&self, token: u32) -> Vec<u8> {
        ModelView(&self.inner).piece(token)
    }

    fn is_end(&self, token: u32) -> bool {
        ModelView(&self.inner).is_end(token)
    }

    fn grammar(&self) -> Result<Arc<Grammar>, EngineError> {
        self.grammar
            .get_or_init(|| {
                let view = ModelView(&self.inner);
                Grammar::new(self.inner.vocab, &|t| view.piece(t), &|t| view.is_end(t))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(EngineError::Load)
    }

    fn generate(&self, job: Job) -> Result<(), EngineError> {
        let need = job.prompt.len() + job.request.max_tokens as usize;
        if job.prompt.is_empty() || need > self.inner.context {
            return Err(EngineError::Input(crate::InputError::ContextLength {
                prompt: job.prompt.len(),
                max_tokens: job.request.max_tokens as usize,
                context: self.inner.context,
            }));
        }
        self.counters.load.fetch_add(1, Ordering::SeqCst);
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_send(job);
        match sent {
            Ok(()) => Ok(()),
            Err(e) => {
                self.counters.load.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    mpsc::TrySendError::Full(_) => EngineError::Busy(format!(
                        "the model is busy: {} generations run and {} wait already; retry shortly (operators: --llm-slots, --llm-queue)",
                        self.slots, self.queue
                    )),
                    mpsc::TrySendError::Disconnected(_) => {
                        EngineError::Run("the model's scheduler stopped".into())
                    }
                })
            }
        }
    }

    fn load(&self) -> usize {
        self.counters.load.load(Ordering::SeqCst)
    }

    fn abandoned(&self) -> Abandoned {
        Abandoned {
            queued: self.counters.queued.load(Ordering::SeqCst),
            prefill: self.counters.prefill.load(Ordering::SeqCst),
            decode: self.counters.decode.load(Ordering::SeqCst),
        }
    }

    fn score(
        &self,
        tokens: &[u32],
        rows: Range<usize>,
        each: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<(), EngineError> {
        if tokens.len() > self.inner.context {
            return Err(EngineError::Input(crate::InputError::ContextLength {
                prompt: tokens.len(),
                max_tokens: 0,
                context: self.inner.context,
            }));
        }
        let size = tokens.len().div_ceil(256).max(1) * 256;
        let mut ctx = self.inner.new_context(1, size)?;
        let mut batch = LlamaBatch::new(BATCH_TOKENS, 1);
        for (c, chunk) in tokens.chunks(BATCH_TOKENS).enumerate() {
            batch.clear();
            let base = c * BATCH_TOKENS;
            for (j, &t) in chunk.iter().enumerate() {
                let pos = base + j;
                batch
                    .add(LlamaToken(t as i32), pos as i32, &[0], rows.contains(&pos))
                    .map_err(|e| EngineError::Run(e.to_string()))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| EngineError::Run(format!("llama.cpp decode failed: {e}")))?;
            for j in 0..chunk.len() {
                if rows.contains(&(base + j)) {
                    each(base + j, ctx.get_logits_ith(j as i32));
                }
            }
        }
        Ok(())
    }
}

/// One sequence in the scheduler.
struct Seq {
    job: Job,
    slot: i32,
    /// Prompt tokens already decoded.
    fed: usize,
    /// Tokens in the KV cache.
    pos: i32,
    /// The token to decode next, once the prompt is in.
    next: Option<u32>,
    step: Step,
}

fn schedule(inner: &Inner, slots: usize, rx: mpsc::Receiver<Job>, counters: &Counters) {
    let mut ctx = match inner.new_context(slots, inner.context * slots) {
        Ok(c) => c,
        Err(e) => {
            // Fail every job that arrives: the model cannot run here.
            for mut job in rx {
                (job.sink)(Err(EngineError::Run(e.to_string())));
                counters.load.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
    };
    let model: &dyn LanguageModel = &ModelView(inner);
    let mut batch = LlamaBatch::new(BATCH_TOKENS, slots as i32);
    let mut active: Vec<Seq> = Vec::new();
    let mut free: Vec<i32> = (0..slots as i32).rev().collect();
    let mut turn = 0usize;
    // Takes a job from the queue: a live one gets a slot, an abandoned
    // one is dropped unstarted.
    let take =
        |job: Job, active: &mut Vec<Seq>, free: &mut Vec<i32>, ctx: &mut LlamaContext<'_>| {
            if (job.alive)() {
                admit(active, free, ctx, job);
            } else {
                counters.queued.fetch_add(1, Ordering::SeqCst);
                counters.load.fetch_sub(1, Ordering::SeqCst);
            }
        };
    loop {
        // Sequences nobody wants any more stop here, prompt read or not.
        let mut i = 0;
        while i < active.len() {
            if (active[i].job.alive)() {
                i += 1;
                continue;
            }
            let s = active.swap_remove(i);
            if s.next.is_none() {
                counters.prefill.fetch_add(1, Ordering::SeqCst);
            } else {
                counters.decode.fetch_add(1, Ordering::SeqCst);
            }
            let _ = ctx.clear_kv_cache_seq(Some(s.slot as u32), None, None);
            free.push(s.slot);
            counters.load.fetch_sub(1, Ordering::SeqCst);
        }
        if active.is_empty() {
            match rx.recv() {
                Ok(job) => take(job, &mut active, &mut free, &mut ctx),
                Err(_) => return,
            }
        }
        while !free.is_empty() {
            match rx.try_recv() {
                Ok(job) => take(job, &mut active, &mut free, &mut ctx),
                Err(_) => break,
            }
        }
        if active.is_empty() {
            continue;
        }
        // Decoding sequences first (one token each), then prompt chunks,
        // starting from a rotating position so prefills take turns.
        batch.clear();
        let mut rows: Vec<(usize, i32)> = Vec::new();
        let mut room = BATCH_TOKENS;
        for (i, s) in active.iter_mut().enumerate() {
            if let Some(t) = s.next {
                let _ = batch.add(LlamaToken(t as i32), s.pos, &[s.slot], true);
                rows.push((i, batch.n_tokens() - 1));
                s.pos += 1;
                room -= 1;
            }
        }
        let n = active.len();
        for k in 0..n {
            let i = (turn + k) % n;
            let s = &mut active[i];
            if s.next.is_some() || room == 0 {
                continue;
            }
            let take = (s.job.prompt.len() - s.fed).min(room);
            for j in 0..take {
                let last = s.fed + j + 1 == s.job.prompt.len();
                let t = s.job.prompt[s.fed + j];
                let _ = batch.add(LlamaToken(t as i32), s.pos, &[s.slot], last);
                if last {
                    rows.push((i, batch.n_tokens() - 1));
                }
                s.pos += 1;
            }
            s.fed += take;
            room -= take;
        }
        turn = turn.wrapping_add(1);
        if let Err(e) = ctx.decode(&mut batch) {
            for mut s in active.drain(..) {
                (s.job.sink)(Err(EngineError::Run(format!(
                    "llama.cpp decode failed: {e}"
                ))));
                free.push(s.slot);
                counters.load.fetch_sub(1, Ordering::SeqCst);
            }
            ctx.clear_kv_cache();
            continue;
        }
        let mut done = Vec::new();
        for (i, row) in rows {
            let s = &mut active[i];
            let logits = ctx.get_logits_ith(row);
            let step = u64::from(s.step.produced());
            let sampling = &s.job.request.sampling;
            let mut token = match s.job.constraint.as_mut().map(Constraint::allowed) {
                None => choose(logits, sampling, step),
                Some(Ok(allowed)) => choose_among(logits, &allowed, sampling, step),
                Some(Err(e)) => {
                    (s.job.sink)(Err(EngineError::Run(format!(
                        "the constraint failed at token {step}: {e}"
                    ))));
                    done.push(i);
                    continue;
                }
            };
            if let Some(fault) = s.job.fault {
                let faulty = fault.apply(logits, sampling, step, s.job.request.max_tokens, token);
                if faulty != token {
                    // A faulty executor ignores the constraint too.
                    token = faulty;
                    s.job.constraint = None;
                }
            }
            if let Some(c) = s.job.constraint.as_mut()
                && let Err(e) = c.advance(token)
            {
                (s.job.sink)(Err(EngineError::Run(format!(
                    "the constraint refused its own choice at token {step}: {e}"
                ))));
                done.push(i);
                continue;
            }
            let mut ev = s.step.next(model, token);
            ev.logprobs = s
                .job
                .request
                .logprobs
                .map(|n| TokenLogprobs::of(logits, token, n, &|t| model.piece(t)));
            let finished = ev.finish.is_some();
            let wanted = (s.job.sink)(Ok(ev));
            s.next = Some(token);
            if !finished && !wanted {
                counters.decode.fetch_add(1, Ordering::SeqCst);
            }
            if finished || !wanted {
                done.push(i);
            }
        }
        done.sort_unstable();
        for i in done.into_iter().rev() {
            let s = active.swap_remove(i);
            let _ = ctx.clear_kv_cache_seq(Some(s.slot as u32), None, None);
            free.push(s.slot);
            counters.load.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn admit(active: &mut Vec<Seq>, free: &mut Vec<i32>, ctx: &mut LlamaContext<'_>, job: Job) {
    let slot = free.pop().expect("admitted only with a free slot");
    let _ = ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
    active.push(Seq {
        step: Step::new(&job.request),
        job,
        slot,
        fed: 0,
        pos: 0,
        next: None,
    });
}

/// The tokenizer half of a model, for the scheduler thread.
struct ModelView<'a>(&'a Inner);

impl LanguageModel for ModelView<'_> {
    fn context_length(&self) -> usize {
        self.0.context
    }
    fn chat_template(&self) -> Option<&str> {
        self.0.template.as_deref()
    }
    fn special_tokens(&self) -> (String, String) {
        self.0.specials.clone()
    }
    fn tokenize(&self, text: &str) -> Vec<u32> {
        self.0
            .model
            .vocab()
            .tokenize(text.as_bytes(), true, true)
            .into_iter()
            .map(|t| t.0 as u32)
            .collect()
    }
    fn piece(&self, token: u32) -> Vec<u8> {
        self.0
            .model
            .vocab()
            .token_to_piece(LlamaToken(token as i32), false, None)
    }
    fn is_end(&self, token: u32) -> bool {
        self.0.model.vocab().is_eog(LlamaToken(token as i32))
    }
    fn generate(&self, _: Job) -> Result<(), EngineError> {
        Err(EngineError::Run("not from the scheduler thread".into()))
    }
    fn score(
        &self,
        _: &[u32],
        _: Range<usize>,
        _: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<(), EngineError> {
        Err(EngineError::Run("not from the scheduler thread".into()))
    }
}
