//! Model engines behind one trait.
//!
//! An [`Engine`] turns model bytes into a [`LoadedModel`] (checking at
//! load time that it can run them) and a loaded model runs named tensors,
//! hashing each step's outputs into trace leaves as it goes. The ONNX engine
//! ([`onnx::OnnxEngine`]) is built on tract; the GGUF engine
//! ([`gguf::GgufEngine`]) on llama.cpp, and its models also offer
//! [`llm::LanguageModel`] (tokenizer, chat template, scheduled generation,
//! teacher-forced scoring).
//!
//! Engines are synchronous and CPU-bound: callers run them on a blocking
//! pool, never on an async runtime. Nothing here does network or disk IO
//! beyond reading the bytes it is handed.

use std::collections::BTreeMap;
use std::sync::Arc;

use vouch_types::{
    DType, Determinism, Digest, Dim, EngineInfo, ModelFormat, Schema, TensorMap, TensorSpec,
};

pub mod constrain;
pub mod embed;
pub mod gguf;
pub mod llm;
pub mod onnx;

/// What went wrong loading or running a model. Messages say what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The bytes are not a model of this format.
    #[error("not a valid {format} model: {detail}")]
    Malformed {
        /// Expected format.
        format: &'static str,
        /// Parser's complaint.
        detail: String,
    },
    /// The model uses operators this engine cannot run.
    #[error(
        "the model uses operators {engine} does not support: {ops}; export the model without them (or with a lower opset) and push it again"
    )]
    UnsupportedOps {
        /// Engine and version.
        engine: String,
        /// Operator names, with counts.
        ops: String,
    },
    /// The model refers to data outside the file.
    #[error(
        "the model stores tensor `{0}` in an external data file; push a self-contained model (onnx.save(model, path, save_as_external_data=False))"
    )]
    ExternalData(String),
    /// The engine could not analyse or plan the model.
    #[error("the engine could not prepare the model: {0}")]
    Load(String),
    /// The request does not fit the model's schema.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Execution failed on these inputs.
    #[error("inference failed: {0}")]
    Run(String),
    /// The model's queue is full: retry later.
    #[error("{0}")]
    Busy(String),
}

/// A request that does not fit the model's inputs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// A required input is absent.
    #[error("missing input `{name}`: the model takes {expected}")]
    Missing {
        /// Missing name.
        name: String,
        /// Description of all inputs.
        expected: String,
    },
    /// An input the model does not have.
    #[error("unknown input `{name}`: the model takes {expected}")]
    Unknown {
        /// Unknown name.
        name: String,
        /// Description of all inputs.
        expected: String,
    },
    /// Wrong element type.
    #[error("input `{name}` is {got}; the model wants {want}: send \"dtype\": \"{want}\"")]
    DType {
        /// Input name.
        name: String,
        /// Given dtype.
        got: DType,
        /// Wanted dtype.
        want: DType,
    },
    /// Wrong rank.
    #[error(
        "input `{name}` has shape {got:?} (rank {got_rank}); the model wants rank {want_rank}: {want}"
    )]
    Rank {
        /// Input name.
        name: String,
        /// Given shape.
        got: Vec<u64>,
        /// Given rank.
        got_rank: usize,
        /// Wanted rank.
        want_rank: usize,
        /// Wanted shape, printed.
        want: String,
    },
    /// A fixed dim differs.
    #[error(
        "input `{name}` has {got} at dim {axis} (shape {shape:?}); the model wants {want} there: {spec} (a model whose declared shape is wrong is pushed with --input-shape {name}=DIM,DIM)"
    )]
    Dim {
        /// Input name.
        name: String,
        /// Axis.
        axis: usize,
        /// Given size.
        got: u64,
        /// Wanted size.
        want: u64,
        /// Given shape.
        shape: Vec<u64>,
        /// Wanted shape, printed.
        spec: String,
    },
    /// A symbolic dim is bound to two sizes.
    #[error(
        "dim `{symbol}` is {first} in input `{first_input}` but {second} in input `{second_input}`: inputs that share `{symbol}` must agree"
    )]
    Symbol {
        /// The symbol.
        symbol: String,
        /// First binding.
        first: u64,
        /// Where.
        first_input: String,
        /// Conflicting binding.
        second: u64,
        /// Where.
        second_input: String,
    },
    /// Shapes a model planned per input shape cannot be planned for.
    #[error(
        "the model cannot run at input shapes {shapes}: {why} (the model's declared shapes leave sizes open, and these do not fit it: send the sizes the model was exported for)"
    )]
    Plan {
        /// The request's input shapes.
        shapes: String,
        /// The engine's reason.
        why: String,
    },
    /// Chat on a model without a chat template.
    #[error(
        "this model has no chat template in its metadata: use /v1/completions with a prompt instead of /v1/chat/completions"
    )]
    NoChatTemplate,
    /// The chat template refused the messages.
    #[error("{0}")]
    Template(String),
    /// A constraint (`response_format`, tools) that cannot be compiled.
    #[error("{0}")]
    Constraint(String),
    /// Prompt and answer do not fit the context.
    #[error(
        "the prompt is {prompt} tokens and max_tokens is {max_tokens}, but this model's context holds {context} tokens: shorten the prompt or lower max_tokens"
    )]
    ContextLength {
        /// Prompt tokens.
        prompt: usize,
        /// Requested answer tokens.
        max_tokens: usize,
        /// Context length.
        context: usize,
    },
}

/// One execution: outputs and the trace leaves.
#[derive(Clone, Debug)]
pub struct Execution {
    /// Named outputs.
    pub outputs: TensorMap,
    /// One leaf per executed step, in execution order; empty when tracing
    /// was off.
    pub leaves: Vec<Digest>,
}

/// A deliberate fault: the model runs with one step's output perturbed, and
/// the node signs the wrong answer. For demonstrations and tests of the
/// network's checks (quorum, audits, bisection) only: a node runs with one
/// when its operator starts it with `--fault`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fault {
    /// Perturb the first float-valued trace step at or after this one;
    /// `None`: the last float-valued step (the answer changes for sure).
    /// For language models: emit the runner-up token from this generated
    /// token on (0 when `None`).
    pub step: Option<usize>,
    /// Another fault of language models instead (the tensor models then
    /// run honestly).
    pub llm: Option<llm::LlmFault>,
}

impl Fault {
    /// The fault tensor models run with: none when this is a language
    /// model's fault only.
    pub fn tensor(self) -> Option<Fault> {
        self.llm.is_none().then_some(self)
    }

    /// The fault language models generate with.
    pub fn language(self) -> llm::LlmFault {
        self.llm
            .unwrap_or(llm::LlmFault::RunnerUpFrom(self.step.unwrap_or(0) as u64))
    }
}

/// A model ready to run.
pub trait LoadedModel: Send + Sync {
    /// Inputs and outputs.
    fn schema(&self) -> &Schema;
    /// How re-executions of this model compare.
    fn determinism(&self) -> Determinism;
    /// Approximate resident bytes, for the cache's memory bound.
    fn memory_bytes(&self) -> usize;
    /// Names of the traced steps, leaf `i` belonging to step `i`.
    fn steps(&self) -> &[String];
    /// Runs the model. `inputs` must already satisfy the schema
    /// ([`check_inputs`]); with `trace`, each step's outputs are hashed.
    fn run(&self, inputs: &TensorMap, trace: bool) -> Result<Execution, EngineError>;
    /// The language-model interface, for models that generate text.
    fn language(&self) -> Option<&dyn llm::LanguageModel> {
        None
    }
    /// Runs the model with `fault` injected (see [`Fault`]).
    fn run_faulty(
        &self,
        _inputs: &TensorMap,
        _trace: bool,
        _fault: Fault,
    ) -> Result<Execution, EngineError> {
        Err(EngineError::Run(
            "this engine cannot inject faults; start the node without --fault".into(),
        ))
    }
}

/// Options a publisher gives when pushing a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Input shapes that replace the ones the model declares (for models
    /// whose declared shapes are wrong), by input name.
    pub input_shapes: BTreeMap<String, Vec<Dim>>,
}

/// An engine for one model format.
pub trait Engine: Send + Sync {
    /// Name and version, as receipts record them.
    fn info(&self) -> EngineInfo;
    /// The format it runs.
    fn format(&self) -> ModelFormat;
    /// Loads model bytes, checking the engine can run them. The schema of
    /// the result is the one to record in the manifest.
    fn load(
        &self,
        bytes: &[u8],
        options: &LoadOptions,
    ) -> Result<Arc<dyn LoadedModel>, EngineError>;
    /// Loads model bytes as a manifest describes them (its schema's input
    /// shapes are applied, so overrides given at push time persist).
    fn load_with_schema(
        &self,
        bytes: &[u8],
        schema: &Schema,
    ) -> Result<Arc<dyn LoadedModel>, EngineError> {
        let input_shapes = schema
            .inputs
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.shape.clone()?)))
            .collect();
        self.load(bytes, &LoadOptions { input_shapes })
    }
    /// Loads a model from a file (engines that map files override this).
    fn load_path(
        &self,
        path: &std::path::Path,
        schema: &Schema,
    ) -> Result<Arc<dyn LoadedModel>, EngineError> {
        let bytes = std::fs::read(path)
            .map_err(|e| EngineError::Load(format!("reading {}: {e}", path.display())))?;
        self.load_with_schema(&bytes, schema)
    }
}

fn describe(specs: &[TensorSpec]) -> String {
    let parts: Vec<String> = specs
        .iter()
        .map(|s| {
            let dt = s.dtype.map_or("any".to_string(), |d| d.to_string());
            format!("`{}` {} {}", s.name, dt, s.shape_string())
        })
        .collect();
    parts.join(", ")
}

/// The determinism class a checker holds a model's answers to, from its
/// manifest alone (never from the receipt under check): language models
/// are compared within [`gguf::LLM_RTOL`], ONNX models with a float output
/// within [`onnx::FLOAT_RTOL`], and the rest exactly. It is the class the
/// engines state when they run the model.
pub fn determinism_of(format: ModelFormat, schema: &Schema) -> Determinism {
    match format {
        ModelFormat::Gguf => Determinism::Tolerant {
            rtol: gguf::LLM_RTOL,
        },
        _ if schema
            .outputs
            .iter()
            .any(|s| s.dtype.is_some_and(DType::is_float)) =>
        {
            Determinism::Tolerant {
                rtol: onnx::FLOAT_RTOL,
            }
        }
        _ => Determinism::Exact,
    }
}

/// Checks a request against a schema: every input present and known, with
/// the declared dtype, rank and fixed dims, and symbols bound consistently.
pub fn check_inputs(schema: &Schema, inputs: &TensorMap) -> Result<(), InputError> {
    let expected = || describe(&schema.inputs);
    for (name, _) in inputs.iter() {
        if !schema.inputs.iter().any(|s| s.name == name) {
            return Err(InputError::Unknown {
                name: name.into(),
                expected: expected(),
            });
        }
    }
    let mut bound: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for spec in &schema.inputs {
        let t = inputs.get(&spec.name).ok_or_else(|| InputError::Missing {
            name: spec.name.clone(),
            expected: expected(),
        })?;
        if let Some(want) = spec.dtype
            && t.dtype() != want
        {
            return Err(InputError::DType {
                name: spec.name.clone(),
                got: t.dtype(),
                want,
            });
        }
        let Some(dims) = &spec.shape else { continue };
        if dims.len() != t.shape().len() {
            return Err(InputError::Rank {
                name: spec.name.clone(),
                got: t.shape().to_vec(),
                got_rank: t.shape().len(),
                want_rank: dims.len(),
                want: spec.shape_string(),
            });
        }
        for (axis, (dim, &got)) in dims.iter().zip(t.shape()).enumerate() {
            match dim {
                Dim::Fixed(want) if *want != got => {
                    return Err(InputError::Dim {
                        name: spec.name.clone(),
                        axis,
                        got,
                        want: *want,
                        shape: t.shape().to_vec(),
                        spec: spec.shape_string(),
                    });
                }
                Dim::Fixed(_) => {}
                Dim::Symbol(sym) => match bound.get(sym.as_str()) {
                    Some(&(first, first_input)) if first != got => {
                        return Err(InputError::Symbol {
                            symbol: sym.clone(),
                            first,
                            first_input: first_input.into(),
                            second: got,
                            second_input: spec.name.clone(),
                        });
                    }
                    Some(_) => {}
                    None => {
                        bound.insert(sym, (got, &spec.name));
                    }
                },
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The engine versions receipts name are the ones compiled in: each
    /// constant equals the version `Cargo.lock` resolved (the workspace pins
    /// both crates exactly, so `cargo update` cannot move them silently).
    #[test]
    fn receipts_name_the_engine_versions_that_were_built() {
        // The package directory as cargo gives it when the test runs (a
        // test binary built in another clone, reused from a shared target
        // directory, carries that clone's path in `env!`).
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let lock = std::fs::read_to_string(dir.join("../../Cargo.lock"))
            .expect("the workspace's Cargo.lock");
        let locked = |name: &str| {
            let at = lock
                .find(&format!("name = \"{name}\"\nversion = \""))
                .unwrap_or_else(|| panic!("{name} is not in Cargo.lock"));
            let rest = &lock[at..];
            let v = rest.split("version = \"").nth(1).unwrap();
            v[..v.find('"').unwrap()].to_string()
        };
        assert_eq!(locked("llama-cpp-2"), crate::gguf::LLAMA_CPP_2_VERSION);
        assert_eq!(locked("tract-onnx"), crate::onnx::TRACT_VERSION);
    }

    use super::*;
    use vouch_types::Tensor;

    fn schema() -> Schema {
        let spec = |name: &str| TensorSpec {
            name: name.into(),
            dtype: Some(DType::I64),
            shape: Some(vec![Dim::Symbol("batch".into()), Dim::Fixed(4)]),
        };
        Schema {
            inputs: vec![spec("a"), spec("b")],
            outputs: vec![],
        }
    }

    fn check(inputs: &[(&str, Tensor)], expected: Result<(), &str>) {
        let map: TensorMap = inputs
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        let got = check_inputs(&schema(), &map).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(msg), Err(want)) => assert!(msg.contains(want), "`{msg}` lacks `{want}`"),
            (got, want) => panic!("got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn input_errors_say_what_to_change() {
        let ok = Tensor::from_i64(vec![2, 4], &[0; 8]).unwrap();
        check(&[("a", ok.clone()), ("b", ok.clone())], Ok(()));
        check(
            &[("a", ok.clone())],
            Err("missing input `b`: the model takes `a` int64 [batch, 4]"),
        );
        check(
            &[("a", ok.clone()), ("b", ok.clone()), ("c", ok.clone())],
            Err("unknown input `c`"),
        );
        let f = Tensor::from_f32(vec![2, 4], &[0.0; 8]).unwrap();
        check(
            &[("a", f), ("b", ok.clone())],
            Err("send \"dtype\": \"int64\""),
        );
        let r3 = Tensor::from_i64(vec![2, 4, 1], &[0; 8]).unwrap();
        check(
            &[("a", r3), ("b", ok.clone())],
            Err("the model wants rank 2"),
        );
        let d = Tensor::from_i64(vec![2, 2], &[0; 4]).unwrap();
        check(&[("a", d), ("b", ok.clone())], Err("has 2 at dim 1"));
        let other_batch = Tensor::from_i64(vec![1, 4], &[0; 4]).unwrap();
        check(
            &[("a", ok), ("b", other_batch)],
            Err("dim `batch` is 2 in input `a` but 1 in input `b`"),
        );
    }
}
