//! The ONNX engine, on tract.
//!
//! Loading: decode the protobuf, refuse external data and operators tract
//! does not register (listing them all at once), replace a `ZipMap` that
//! feeds a graph output by its input tensor (tract has no sequence-of-maps
//! type; the output keeps its name and carries the per-class tensor), apply
//! input shape overrides, analyse, optimize and plan.
//!
//! Running: every step of the optimized plan except constants is a trace
//! step; its outputs are hashed into a leaf as they are produced
//! ([`trace`] says which steps are hashed once at load time, and which
//! reuse their input's digest).

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimplePlan, eval as eval_node};
use tract_onnx::tract_hir::infer::Factoid;
use vouch_types::{
    DType, Determinism, Dim, EngineInfo, ModelFormat, Schema, TensorMap, TensorSpec,
};

use crate::{Engine, EngineError, Execution, Fault, LoadOptions, LoadedModel};

mod branch;
mod elementwise;
mod fixed;
mod onehot;
mod pad;
mod reduce;
mod shaped;
mod threads;
mod trace;

pub use shaped::{PLANS, ShapedModel};
pub use threads::{set_threads, threads, with_threads};

use trace::TraceRun;

#[cfg(not(target_endian = "little"))]
compile_error!("tensors are copied as little-endian bytes: big-endian hosts are not supported");

/// The tract version this engine is built with (pinned in Cargo.toml).
pub const TRACT_VERSION: &str = "0.23.9";

/// Relative tolerance for float models compared across machines.
pub const FLOAT_RTOL: f64 = 1e-4;

/// Constants the engine may add by folding what tract leaves unfolded: at
/// most this many times the model's size, within [`FOLD_MIN`, `FOLD_MAX`].
const FOLD_FACTOR: usize = 4;
const FOLD_MIN: usize = 16 << 20;
const FOLD_MAX: usize = 256 << 20;

/// `Op` and `TypedOp` for an engine operator that stands in for tract's
/// operator in its `generic` field: the same name (the trace names steps by
/// node names, which stay) and the same output facts. With `$fast`, also
/// its `EvalOp`: `$fast(&self.generic, first input)`, or tract's operator
/// where that gives `None`. (For the modules under `onnx`.)
macro_rules! stands_in_for_generic {
    ($op:ty, $fast:path) => {
        super::stands_in_for_generic!($op);

        impl EvalOp for $op {
            op_out_of_plan!();

            fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
                match $fast(&self.generic, &inputs[0])? {
                    Some(out) => Ok(tvec!(out.into_tvalue())),
                    None => self.generic.eval(ctx, inputs),
                }
            }
        }
    };
    ($op:ty) => {
        impl Op for $op {
            fn name(&self) -> StaticName {
                self.generic.name()
            }

            op_as_typed_op!();
        }

        impl TypedOp for $op {
            as_op!();

            fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
                self.generic.output_facts(inputs)
            }
        }
    };
}
use stands_in_for_generic;

/// Replaces each node of `model` for which `swap` gives an operator by that
/// operator, on the same inputs and under the same name. Returns how many.
fn swap_ops<O: TypedOp>(
    model: &mut TypedModel,
    swap: impl Fn(&TypedModel, &TypedNode) -> TractResult<Option<O>>,
) -> TractResult<usize> {
    swap_ops_wired(model, |model, node| {
        Ok(swap(model, node)?.map(|op| (op, node.inputs.to_vec())))
    })
}

/// [`swap_ops`] where `swap` also gives the new operator's inputs.
fn swap_ops_wired<O: TypedOp>(
    model: &mut TypedModel,
    swap: impl Fn(&TypedModel, &TypedNode) -> TractResult<Option<(O, Vec<OutletId>)>>,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some((op, inputs)) = swap(model, node)? else {
            continue;
        };
        let patch = TypedModelPatch::replace_single_op(model, node, &inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// tract's settings for how convolutions are planned, pinned so that a
/// plan does not depend on `TRACT_*` variables in a node's environment
/// (tract reads those scoped settings before the environment). One differs
/// from tract's default: convolutions with kernels of 4 to 5 taps gather
/// their patches as the matrix product reads them instead of copying them
/// out first (tract's default starts at 6; magika's 5-tap convolution ran
/// 9% faster on this machine's AMD EPYC, the same bits).
fn knobs() -> &'static tract_onnx::tract_core::knobs::KnobScope {
    static KNOBS: std::sync::OnceLock<tract_onnx::tract_core::knobs::KnobScope> =
        std::sync::OnceLock::new();
    KNOBS.get_or_init(|| {
        tract_onnx::tract_core::knobs::KnobScope::new([
            ("TRACT_LAZY_IM2COL_MIN_KERNEL", "4"),
            ("TRACT_LAZY_IM2COL_MAX_EAGER_BYTES", "4194304"),
            ("TRACT_DISABLE_DIRECT_SPATIAL", "false"),
            ("TRACT_ENABLE_BLOCKED_CONV", "false"),
            ("TRACT_DISABLE_BLOCKED_CONV", "false"),
            ("TRACT_DISABLE_DEPTHWISE_DECONV", "false"),
        ])
        .expect("tract's planning knobs")
    })
}

/// `model` optimized by tract under the engine's [`knobs`].
fn optimized(model: TypedModel) -> TractResult<TypedModel> {
    knobs().enter(|| model.into_optimized())
}

/// How many of tract's operators [`speed_up`] replaced, of each kind.
#[derive(Debug, Clone, Copy)]
struct Replaced {
    elementwise: usize,
    comparisons: usize,
    pads: usize,
    reductions: usize,
    lookups: usize,
    ifs: usize,
}

/// Which of the engine's own plans a load makes (tests compare each with
/// tract's way).
#[derive(Debug, Clone, Copy)]
struct Planning {
    /// `If` branches optimized and planned once.
    ifs: bool,
    /// Products of one-hot encodings as row lookups ([`onehot`]).
    lookups: bool,
}

impl Planning {
    const ALL: Planning = Planning {
        ifs: true,
        lookups: true,
    };
}

/// Puts the engine's operators in place of tract's in an optimized
/// `model`, where they are faster and give the same values: float32
/// arithmetic, comparisons, `Pad`, float32 max and min across rows, and,
/// as `planning` says, products of one-hot encodings and `If`.
fn speed_up(model: &mut TypedModel, planning: Planning) -> TractResult<Replaced> {
    Ok(Replaced {
        elementwise: elementwise::speed_up(model)?,
        comparisons: elementwise::speed_up_comparisons(model)?,
        pads: pad::speed_up(model)?,
        reductions: reduce::speed_up(model)?,
        lookups: if planning.lookups {
            onehot::speed_up(model)?
        } else {
            0
        },
        ifs: if planning.ifs {
            branch::plan_branches(model)?
        } else {
            0
        },
    })
}

/// One step of a plan and its mean time ([`OnnxModel::profile`]).
#[derive(Debug, Clone)]
pub struct StepTime {
    /// The plan node's name.
    pub name: String,
    /// Its operator.
    pub op: String,
    /// Its outputs' shapes, as the plan knows them.
    pub shapes: String,
    /// Mean microseconds a run.
    pub micros: f64,
}

/// Runs ONNX models with tract.
#[derive(Clone, Default)]
pub struct OnnxEngine {
    _private: (),
}

impl OnnxEngine {
    /// A new engine.
    pub fn new() -> OnnxEngine {
        OnnxEngine::default()
    }
}

fn malformed(detail: impl std::fmt::Display) -> EngineError {
    EngineError::Malformed {
        format: "ONNX",
        detail: detail.to_string(),
    }
}

/// The full error chain of a tract failure on one line.
fn chain(e: &TractError) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    parts.join(": ")
}

impl Engine for OnnxEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "tract-onnx".into(),
            version: TRACT_VERSION.into(),
        }
    }

    fn format(&self) -> ModelFormat {
        ModelFormat::Onnx
    }

    fn load(
        &self,
        bytes: &[u8],
        options: &LoadOptions,
    ) -> Result<Arc<dyn LoadedModel>, EngineError> {
        match OnnxModel::load(bytes, options) {
            Ok(model) => Ok(Arc::new(model)),
            // Symbols that do not analyse may still plan once a request
            // gives them values.
            Err(EngineError::Load(why)) => Ok(Arc::new(ShapedModel::new(bytes, options, why)?)),
            Err(e) => Err(e),
        }
    }
}

/// Every graph in the model, subgraphs included.
fn graphs(g: &pb::GraphProto) -> Vec<&pb::GraphProto> {
    let mut out = vec![g];
    for node in &g.node {
        for attr in &node.attribute {
            for sub in attr.g.iter().chain(attr.graphs.iter()) {
                out.extend(graphs(sub));
            }
        }
    }
    out
}

fn check_proto(proto: &pb::ModelProto, onnx: &tract_onnx::Onnx) -> Result<(), EngineError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| malformed("the file has no graph"))?;
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    for g in graphs(graph) {
        for t in &g.initializer {
            if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32)
                || !t.external_data.is_empty()
            {
                return Err(EngineError::ExternalData(t.name.clone()));
            }
        }
        for node in &g.node {
            if !onnx.op_register.0.contains_key(&node.op_type) {
                *missing.entry(&node.op_type).or_default() += 1;
            }
        }
    }
    if !missing.is_empty() {
        let ops: Vec<String> = missing
            .iter()
            .map(|(op, n)| {
                if *n == 1 {
                    op.to_string()
                } else {
                    format!("{op} ({n} nodes)")
                }
            })
            .collect();
        return Err(EngineError::UnsupportedOps {
            engine: format!("tract-onnx {TRACT_VERSION}"),
            ops: ops.join(", "),
        });
    }
    if graph.node.is_empty() {
        return Err(malformed("the graph has no nodes"));
    }
    Ok(())
}

/// Replaces each `ZipMap` whose output is a graph output by its input.
fn strip_output_zipmaps(proto: &mut pb::ModelProto) {
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut renames = Vec::new();
    graph.node.retain(|node| {
        let is_output_zipmap = node.op_type == "ZipMap"
            && node.input.len() == 1
            && node.output.len() == 1
            && outputs.contains(&node.output[0]);
        if is_output_zipmap {
            renames.push((node.output[0].clone(), node.input[0].clone()));
        }
        !is_output_zipmap
    });
    for (output, input) in renames {
        // The producer of the ZipMap's input now writes the graph output.
        for node in graph.node.iter_mut() {
            for o in node.output.iter_mut().filter(|o| **o == input) {
                *o = output.clone();
            }
            for i in node.input.iter_mut().filter(|i| **i == input) {
                *i = output.clone();
            }
        }
        if let Some(out) = graph.output.iter_mut().find(|o| o.name == output) {
            out.r#type = None; // a tensor now, not a sequence of maps: let tract infer it
        }
    }
}

fn to_dtype(dt: DatumType) -> Option<DType> {
    Some(match dt.unquantized() {
        DatumType::Bool => DType::Bool,
        DatumType::U8 => DType::U8,
        DatumType::I8 => DType::I8,
        DatumType::U16 => DType::U16,
        DatumType::I16 => DType::I16,
        DatumType::U32 => DType::U32,
        DatumType::I32 => DType::I32,
        DatumType::U64 => DType::U64,
        DatumType::I64 => DType::I64,
        DatumType::F16 => DType::F16,
        DatumType::F32 => DType::F32,
        DatumType::F64 => DType::F64,
        _ => return None,
    })
}

fn to_datum(dt: DType) -> DatumType {
    match dt {
        DType::Bool => DatumType::Bool,
        DType::U8 => DatumType::U8,
        DType::I8 => DatumType::I8,
        DType::U16 => DatumType::U16,
        DType::I16 => DatumType::I16,
        DType::U32 => DatumType::U32,
        DType::I32 => DatumType::I32,
        DType::U64 => DatumType::U64,
        DType::I64 => DatumType::I64,
        DType::F16 => DatumType::F16,
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
    }
}

fn to_dims(shape: &ShapeFact) -> Vec<Dim> {
    shape
        .iter()
        .map(|d| match d.to_i64() {
            Ok(n) if n >= 0 => Dim::Fixed(n as u64),
            _ => Dim::Symbol(d.to_string()),
        })
        .collect()
}

fn spec(name: String, fact: &TypedFact) -> TensorSpec {
    TensorSpec {
        name,
        dtype: to_dtype(fact.datum_type),
        shape: Some(to_dims(&fact.shape)),
    }
}

/// Decodes and checks the model, and sets each input's fact: the override
/// when given; otherwise the declared one, where dimensions the model
/// leaves unnamed and unknown (`?`, `-1`) become symbols of their own,
/// `INPUT_AXIS`, as named ones (`N`) are: the model loads as it comes, and
/// a request gives each its value. Returns the model, its input names and
/// the decoded file.
fn prepare(
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<(InferenceModel, Vec<String>, pb::ModelProto), EngineError> {
    let mut proto = pb::ModelProto::decode(bytes).map_err(malformed)?;
    strip_output_zipmaps(&mut proto);
    // Intermediate shapes the file declares (`value_info`) are written in
    // the input's symbols; an override that fixes a symbolic size would
    // contradict them, so tract then infers those shapes itself.
    let onnx = tract_onnx::onnx().with_ignore_value_info(fixes_a_symbol(&proto, options));
    check_proto(&proto, &onnx)?;
    let mut model = onnx
        .model_for_proto_model(&proto)
        .map_err(|e| malformed(chain(&e)))?;

    let input_names: Vec<String> = model
        .input_outlets()
        .map_err(|e| malformed(chain(&e)))?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    for name in options.input_shapes.keys() {
        if !input_names.contains(name) {
            return Err(EngineError::Load(format!(
                "shape override names input `{name}`, but the model's inputs are {input_names:?}"
            )));
        }
    }
    for (ix, name) in input_names.iter().enumerate() {
        let old = model
            .input_fact(ix)
            .map_err(|e| malformed(chain(&e)))?
            .clone();
        let shape: TVec<TDim> = match options.input_shapes.get(name) {
            Some(dims) => dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => TDim::from(*n as i64),
                    Dim::Symbol(s) => model.symbols.sym(s).into(),
                })
                .collect(),
            None => {
                let dims: Vec<_> = old.shape.dims().cloned().collect();
                if old.shape.is_open() || dims.iter().all(|d| d.concretize().is_some()) {
                    continue;
                }
                let base: String = name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                dims.iter()
                    .enumerate()
                    .map(|(axis, d)| {
                        d.concretize()
                            .unwrap_or_else(|| model.symbols.sym(&format!("{base}_{axis}")).into())
                    })
                    .collect()
            }
        };
        let mut fact = InferenceFact::shape(shape);
        if let Some(dt) = old.datum_type.concretize() {
            fact = fact.with_datum_type(dt);
        }
        model
            .set_input_fact(ix, fact)
            .map_err(|e| malformed(chain(&e)))?;
    }
    Ok((model, input_names, proto))
}

/// Whether an override gives a fixed size where the file declares none.
fn fixes_a_symbol(proto: &pb::ModelProto, options: &LoadOptions) -> bool {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(graph) = &proto.graph else {
        return false;
    };
    graph.input.iter().any(|input| {
        let Some(dims) = options.input_shapes.get(&input.name) else {
            return false;
        };
        let declared = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(t)) => t.shape.as_ref().map(|s| &s.dim),
            None => None,
        };
        let Some(declared) = declared else {
            return true;
        };
        declared.len() != dims.len()
            || declared.iter().zip(dims).any(|(d, o)| {
                matches!(o, Dim::Fixed(_)) && !matches!(d.value, Some(Value::DimValue(v)) if v >= 0)
            })
    })
}

/// A loaded ONNX model.
pub struct OnnxModel {
    plan: Arc<TypedSimplePlan>,
    schema: Schema,
    trace: trace::TracePlan,
    determinism: Determinism,
    memory: usize,
    /// How its runs alone went on one thread and split.
    pace: threads::Pace,
}

impl OnnxModel {
    /// Loads and plans a model from ONNX bytes.
    pub fn load(bytes: &[u8], options: &LoadOptions) -> Result<OnnxModel, EngineError> {
        let budget = (bytes.len().saturating_mul(FOLD_FACTOR)).clamp(FOLD_MIN, FOLD_MAX);
        OnnxModel::load_with_fold_budget(bytes, options, budget)
    }

    fn load_with_fold_budget(
        bytes: &[u8],
        options: &LoadOptions,
        budget: usize,
    ) -> Result<OnnxModel, EngineError> {
        OnnxModel::load_planned(bytes, options, budget, Planning::ALL)
    }

    /// Loads with `budget` for folding, and the engine's own plans as
    /// `planning` says.
    fn load_planned(
        bytes: &[u8],
        options: &LoadOptions,
        budget: usize,
        planning: Planning,
    ) -> Result<OnnxModel, EngineError> {
        let (model, input_names, _) = prepare(bytes, options)?;
        let hint = " (if the model declares wrong input shapes, override them at push time with --input-shape NAME=DIM,DIM)";
        let typed = model
            .into_typed()
            .map_err(|e| EngineError::Load(format!("{}{hint}", chain(&e))))?;
        let inputs = typed
            .input_outlets()
            .map_err(|e| EngineError::Load(chain(&e)))?
            .iter()
            .zip(&input_names)
            .map(|(o, name)| Ok(spec(name.clone(), typed.outlet_fact(*o)?)))
            .collect::<TractResult<Vec<_>>>()
            .map_err(|e| EngineError::Load(chain(&e)))?;
        let outputs = typed
            .output_outlets()
            .map_err(|e| EngineError::Load(chain(&e)))?
            .iter()
            .map(|o| {
                let name = typed
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| typed.node(o.node).name.clone());
                Ok(spec(name, typed.outlet_fact(*o)?))
            })
            .collect::<TractResult<Vec<_>>>()
            .map_err(|e| EngineError::Load(chain(&e)))?;
        for s in inputs.iter().chain(&outputs) {
            if s.dtype.is_none() {
                return Err(EngineError::Load(format!(
                    "tensor `{}` has an element type this node cannot exchange (only numeric and bool tensors)",
                    s.name
                )));
            }
        }
        let optimized =
            optimized(typed).map_err(|e| EngineError::Load(format!("{}{hint}", chain(&e))))?;
        let (mut folded, folded_bytes) =
            fixed::fold(optimized, budget).map_err(|e| EngineError::Load(chain(&e)))?;
        let replaced = speed_up(&mut folded, planning).map_err(|e| EngineError::Load(chain(&e)))?;
        let plan = SimplePlan::new(folded).map_err(|e| EngineError::Load(chain(&e)))?;

        let trace = trace::TracePlan::new(&plan);
        tracing::debug!(
            steps = trace.steps.len(),
            folded_bytes,
            fast_elementwise = replaced.elementwise,
            fast_comparisons = replaced.comparisons,
            lookups = replaced.lookups,
            fast_pads = replaced.pads,
            fast_reductions = replaced.reductions,
            planned_ifs = replaced.ifs,
            fixed = trace.fixed_steps(),
            "planned ONNX model"
        );
        let memory = bytes
            .len()
            .saturating_mul(2)
            .saturating_add(folded_bytes)
            .max(1 << 20);
        let schema = Schema { inputs, outputs };
        Ok(OnnxModel {
            plan,
            determinism: crate::determinism_of(vouch_types::ModelFormat::Onnx, &schema),
            schema,
            trace,
            memory,
            pace: threads::Pace::default(),
        })
    }

    /// Runs the plan, handing each node's outputs to `record` as they are
    /// produced. A panic inside tract (some kernels index without checking,
    /// e.g. a Gather given token ids beyond the vocabulary) is returned as
    /// an error: the node keeps serving.
    fn execute(
        &self,
        inputs: &TensorMap,
        mut record: impl FnMut(&TypedNode, &mut TVec<TValue>),
    ) -> Result<TensorMap, EngineError> {
        let values = self.to_tract(inputs)?;
        let run = std::panic::AssertUnwindSafe(|| {
            let mut state = self.plan.spawn()?;
            state.run_plan_with_eval(values, |ctx, op_state, node, node_inputs| {
                let mut out = eval_node(ctx, op_state, node, node_inputs)?;
                elementwise::natural_strides(&mut out);
                record(node, &mut out);
                Ok::<_, TractError>(out)
            })
        });
        let results = match threads::run(&self.pace, || std::panic::catch_unwind(run)) {
            Ok(results) => results.map_err(|e| EngineError::Run(chain(&e)))?,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown cause");
                return Err(EngineError::Run(format!(
                    "the engine stopped on these inputs ({why}); check that index-valued inputs (token ids, class ids) are within the model's range"
                )));
            }
        };
        let mut outputs = TensorMap::new();
        for (spec, value) in self.schema.outputs.iter().zip(results.iter()) {
            outputs.insert(spec.name.clone(), from_tract(&spec.name, value)?);
        }
        Ok(outputs)
    }

    /// The mean time of each step of the plan over `runs` runs of
    /// `inputs`, slowest first: where the model's time goes
    /// (`examples/onnx_profile.rs`). A step's time runs from the end of
    /// the step before, so it includes gathering its inputs.
    pub fn profile(&self, inputs: &TensorMap, runs: usize) -> Result<Vec<StepTime>, EngineError> {
        let model = self.plan.model();
        let runs = runs.max(1);
        let mut total = vec![0f64; model.nodes.len()];
        for _ in 0..runs {
            let mut last = std::time::Instant::now();
            self.execute(inputs, |node, _| {
                let now = std::time::Instant::now();
                total[node.id] += (now - last).as_secs_f64();
                last = now;
            })?;
        }
        let mut steps: Vec<StepTime> = (model.nodes.iter().zip(total))
            .filter(|(_, t)| *t > 0.0)
            .map(|(node, t)| StepTime {
                name: node.name.clone(),
                op: node.op.name().to_string(),
                shapes: (node.outputs.iter())
                    .map(|o| format!("{:?}", o.fact.shape))
                    .collect::<Vec<_>>()
                    .join(", "),
                micros: t * 1e6 / runs as f64,
            })
            .collect();
        steps.sort_by(|a, b| b.micros.total_cmp(&a.micros));
        Ok(steps)
    }

    fn to_tract(&self, inputs: &TensorMap) -> Result<TVec<TValue>, EngineError> {
        self.schema
            .inputs
            .iter()
            .map(|spec| {
                let t = inputs.get(&spec.name).ok_or_else(|| {
                    EngineError::Run(format!("input `{}` missing after validation", spec.name))
                })?;
                let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
                let mut out = Tensor::zero_dt(to_datum(t.dtype()), &shape)
                    .map_err(|e| EngineError::Run(chain(&e)))?;
                out.as_bytes_mut().copy_from_slice(t.data());
                Ok(out.into_tvalue())
            })
            .collect()
    }
}

fn from_tract(name: &str, t: &Tensor) -> Result<vouch_types::Tensor, EngineError> {
    let dtype = to_dtype(t.datum_type()).ok_or_else(|| {
        EngineError::Run(format!(
            "output `{name}` has element type {:?}, which cannot be returned",
            t.datum_type()
        ))
    })?;
    let shape = t.shape().iter().map(|&d| d as u64).collect();
    vouch_types::Tensor::new(dtype, shape, t.as_bytes().to_vec())
        .map(vouch_types::Tensor::canonical_nans)
        .map_err(|e| EngineError::Run(e.to_string()))
}

impl LoadedModel for OnnxModel {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn determinism(&self) -> Determinism {
        self.determinism
    }

    fn memory_bytes(&self) -> usize {
        self.memory
    }

    fn steps(&self) -> &[String] {
        &self.trace.steps
    }

    fn run(&self, inputs: &TensorMap, trace: bool) -> Result<Execution, EngineError> {
        self.run_perturbed(inputs, trace, None)
    }

    fn run_faulty(
        &self,
        inputs: &TensorMap,
        trace: bool,
        fault: Fault,
    ) -> Result<Execution, EngineError> {
        let node = self.fault_node(fault).ok_or_else(|| {
            EngineError::Run("no float-valued step at or after the fault's step to perturb".into())
        })?;
        self.run_perturbed(inputs, trace, Some(node))
    }
}

impl OnnxModel {
    /// Runs the plan; when `perturb` names a plan node, its first output's
    /// first element is changed before anything downstream (or the trace)
    /// sees it.
    fn run_perturbed(
        &self,
        inputs: &TensorMap,
        trace: bool,
        perturb: Option<usize>,
    ) -> Result<Execution, EngineError> {
        let mut run = trace.then(|| self.trace.start());
        let outputs = self.execute(inputs, |node, out| {
            if perturb == Some(node.id)
                && let Some(first) = out.first_mut()
            {
                let mut t = first.clone().into_tensor();
                if let Ok(mut view) = t.to_plain_array_view_mut::<f32>()
                    && let Some(x) = view.iter_mut().next()
                {
                    *x += 1.0 + x.abs();
                }
                *first = t.into_tvalue();
            }
            if let Some(run) = run.as_mut() {
                run.record(node, out);
            }
        })?;
        Ok(Execution {
            outputs,
            leaves: run.map(TraceRun::finish).unwrap_or_default(),
        })
    }

    /// The plan node a fault perturbs: the first step at or after
    /// `fault.step` whose first output is a plain f32 tensor (default: the
    /// last such step). Relabelling steps are passed over: their leaves
    /// reuse their input's digest, so a fault there would show only in the
    /// next step.
    fn fault_node(&self, fault: Fault) -> Option<usize> {
        let model = self.plan.model();
        let mut floats: Vec<(usize, usize)> = model
            .nodes()
            .iter()
            .filter(|n| {
                n.outputs.first().is_some_and(|o| {
                    o.fact.datum_type == f32::datum_type() && o.fact.exotic_fact.is_none()
                }) && !self.trace.relabels(n.id)
            })
            .filter_map(|n| self.trace.step_of(n.id).map(|s| (s, n.id)))
            .collect();
        floats.sort_unstable();
        match fault.step {
            Some(k) => floats.into_iter().find(|(s, _)| *s >= k),
            None => floats.pop(),
        }
        .map(|(_, node)| node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::logic::IfThenElse;
    use vouch_types::{Digest, Tensor};

    fn sample(file: &str) -> Vec<u8> {
        let dir = std::env::var_os("VOUCH_MODELS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").unwrap())
                    .join(".cache/vouch/models")
            });
        std::fs::read(dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}: run scripts/fetch-models.sh"))
    }

    fn minilm_inputs(ids: impl Fn(i64) -> i64) -> TensorMap {
        let n = 16i64;
        let col = |f: &dyn Fn(i64) -> i64| {
            Tensor::new(
                DType::I64,
                vec![1, n as u64],
                (0..n).flat_map(|i| f(i).to_le_bytes()).collect(),
            )
            .unwrap()
        };
        let mut m = TensorMap::new();
        m.insert("input_ids".to_string(), col(&ids));
        m.insert("attention_mask".to_string(), col(&|_| 1));
        m.insert("token_type_ids".to_string(), col(&|_| 0));
        m
    }

    /// Leaves computed the long way: every output of every step hashed.
    fn naive_leaves(model: &OnnxModel, inputs: &TensorMap) -> Vec<Digest> {
        let mut leaves = Vec::new();
        model
            .execute(inputs, |node, out| {
                if let Some(step) = model.trace.steps.iter().position(|s| *s == node.name)
                    && !node.op_is::<tract_onnx::tract_core::ops::konst::Const>()
                {
                    leaves.push(trace::naive_leaf(step, node, out));
                }
            })
            .unwrap();
        leaves
    }

    /// `rows` × `seq` token inputs for the MiniLM family (`input_ids`,
    /// `attention_mask` and, where the model takes it, `token_type_ids`).
    fn token_batch(model: &OnnxModel, rows: u64, seq: u64) -> TensorMap {
        let n = (rows * seq) as i64;
        let col = |f: &dyn Fn(i64) -> i64| {
            Tensor::new(
                DType::I64,
                vec![rows, seq],
                (0..n).flat_map(|i| f(i).to_le_bytes()).collect(),
            )
            .unwrap()
        };
        let mut m = TensorMap::new();
        for spec in &model.schema.inputs {
            let t = match spec.name.as_str() {
                "input_ids" => col(&|i| 1000 + (i * 37) % 20_000),
                "attention_mask" => col(&|_| 1),
                _ => col(&|_| 0),
            };
            m.insert(spec.name.clone(), t);
        }
        m
    }

    /// silero-vad's inputs: `samples` of a sine from sample `from` at
    /// rate `sr`, and the recurrent `state` (little-endian float32 bytes).
    fn silero_chunk(sr: i64, samples: u64, from: u64, state: Vec<u8>) -> TensorMap {
        let audio: Vec<u8> = (from..from + samples)
            .flat_map(|i| ((i as f32 * 0.17).sin() * 0.3).to_le_bytes())
            .collect();
        let mut inputs = TensorMap::new();
        inputs.insert(
            "input".to_string(),
            Tensor::new(DType::F32, vec![1, samples], audio).unwrap(),
        );
        inputs.insert(
            "sr".to_string(),
            Tensor::new(DType::I64, vec![], sr.to_le_bytes().to_vec()).unwrap(),
        );
        inputs.insert(
            "state".to_string(),
            Tensor::new(DType::F32, vec![2, 1, 128], state).unwrap(),
        );
        inputs
    }

    /// The `PlannedIf` of a model's plan.
    fn planned_if(model: &OnnxModel) -> &branch::PlannedIf {
        let mut nodes = model.plan.model().nodes.iter();
        nodes
            .find_map(|n| n.op_as::<branch::PlannedIf>())
            .expect("a PlannedIf in the plan")
    }

    #[test]
    fn magikas_one_hot_product_is_looked_up_with_tracts_bits_and_trace() {
        let bytes = sample("magika.onnx");
        let mut options = LoadOptions::default();
        options
            .input_shapes
            .insert("bytes".into(), vec![Dim::Fixed(1), Dim::Fixed(2048)]);
        let load = |lookups| {
            OnnxModel::load_planned(&bytes, &options, FOLD_MIN, Planning { ifs: true, lookups })
                .unwrap()
        };
        let (fast, slow) = (load(true), load(false));
        let lookups = || {
            (fast.plan.model().nodes.iter())
                .filter_map(|n| n.op_as::<onehot::OneHotMatMul>())
                .collect::<Vec<_>>()
        };
        assert_eq!(lookups().len(), 1);
        assert_eq!(fast.trace.steps, slow.trace.steps);
        // Bytes, the padding value 256 and values the encoding does not
        // cover (a zero row).
        for seed in [1i32, 7, 300] {
            let data: Vec<u8> = (0..2048i32)
                .flat_map(|i| {
                    match (i * seed) % 97 {
                        0 => 256,
                        1 => 4000,
                        2 => -1,
                        _ => (i * seed) % 256,
                    }
                    .to_le_bytes()
                })
                .collect();
            let mut inputs = TensorMap::new();
            inputs.insert(
                "bytes",
                Tensor::new(DType::I32, vec![1, 2048], data).unwrap(),
            );
            let (got, want) = (
                fast.run(&inputs, true).unwrap(),
                slow.run(&inputs, true).unwrap(),
            );
            assert_eq!(got.outputs, want.outputs, "seed {seed}");
            assert_eq!(got.leaves, want.leaves, "seed {seed}");
            assert!(lookups().iter().all(|op| op.in_force()), "seed {seed}");
        }
    }

    #[test]
    fn an_if_planned_once_answers_as_tract_plans_it_per_run() {
        let bytes = sample("silero-vad.onnx");
        let planned = OnnxModel::load(&bytes, &LoadOptions::default()).unwrap();
        let per_run = OnnxModel::load_planned(
            &bytes,
            &LoadOptions::default(),
            FOLD_MIN,
            Planning {
                ifs: false,
                lookups: true,
            },
        )
        .unwrap();
        let if_inputs = |m: &OnnxModel| {
            let nodes = &m.plan.model().nodes;
            let planned = nodes.iter().find(|n| n.op_is::<branch::PlannedIf>());
            let generic = nodes.iter().find(|n| n.op_is::<IfThenElse>());
            (
                planned.map(|n| n.inputs.len()),
                generic.map(|n| n.inputs.len()),
            )
        };
        let (Some(ours), None) = if_inputs(&planned) else {
            panic!("no PlannedIf in the engine's plan");
        };
        let (None, Some(tracts)) = if_inputs(&per_run) else {
            panic!("no If in tract's plan");
        };
        // The weights became constants of the branches: the condition,
        // the audio and the state are what is left.
        assert_eq!((ours, tracts), (3, 44));
        // Both branches (the sample rate picks one), over a stream of
        // chunks carrying the state from one to the next.
        for sr in [16_000i64, 8_000] {
            let samples = (sr / 16_000 * 256 + 256) as u64;
            let mut state = vec![0u8; 2 * 128 * 4];
            for chunk in 0..4u64 {
                let inputs = silero_chunk(sr, samples, chunk * samples, state);
                let ours = planned.run(&inputs, true).unwrap();
                let tracts = per_run.run(&inputs, true).unwrap();
                assert!(
                    vouch_types::quorum::outputs_agree(
                        planned.determinism,
                        &ours.outputs,
                        &tracts.outputs
                    ),
                    "sr {sr}, chunk {chunk}: {:?} against {:?}",
                    ours.outputs.get("output").unwrap().to_f64_vec(),
                    tracts.outputs.get("output").unwrap().to_f64_vec(),
                );
                state = tracts.outputs.get("stateN").unwrap().data().to_vec();
            }
        }
        // Each branch ran on a plan for its concrete shapes.
        assert_eq!(planned_if(&planned).shaped_plans().len(), 2);
    }

    #[test]
    fn an_if_answers_a_shape_the_same_after_its_plan_was_evicted() {
        let model = OnnxModel::load(&sample("silero-vad.onnx"), &LoadOptions::default()).unwrap();
        let request = |samples: u64| {
            let inputs = silero_chunk(16_000, samples, 0, vec![0; 2 * 128 * 4]);
            model.run(&inputs, true).unwrap()
        };
        let planned = planned_if(&model);
        // The audio's length, per plan kept (the state is the branch's
        // other input).
        let kept = || -> Vec<usize> { planned.shaped_plans().iter().map(|s| s[0][1]).collect() };
        let first = request(512);
        assert_eq!(kept(), [512]);
        // More shapes than the If keeps plans for: 512's is evicted.
        let lengths = (1..=branch::SHAPED as u64).map(|i| 512 + 64 * i);
        for samples in lengths {
            request(samples);
        }
        assert_eq!(kept(), [576, 640, 704, 768]);
        let again = request(512);
        assert_eq!(kept(), [640, 704, 768, 512]);
        assert_eq!(again.outputs, first.outputs);
        assert_eq!(again.leaves, first.leaves);
    }

    #[test]
    fn convolutions_are_planned_the_same_whatever_tracts_settings_around() {
        let mut options = LoadOptions::default();
        options.input_shapes.insert(
            "bytes".to_string(),
            vec![vouch_types::Dim::Fixed(1), vouch_types::Dim::Fixed(2048)],
        );
        let bytes = sample("magika.onnx");
        let lazy = |m: &OnnxModel| {
            let nodes = &m.plan.model().nodes;
            nodes
                .iter()
                .filter(|n| n.name.ends_with(".lazyIm2col"))
                .count()
        };
        let ours = OnnxModel::load(&bytes, &options).unwrap();
        // As a node's environment would set it: every kernel copied out.
        let around = tract_onnx::tract_core::knobs::KnobScope::new([(
            "TRACT_LAZY_IM2COL_MIN_KERNEL",
            "100",
        )])
        .unwrap();
        let under = around.enter(|| OnnxModel::load(&bytes, &options)).unwrap();
        // magika's one convolution has 5 taps: gathered as it is read.
        assert_eq!((lazy(&ours), lazy(&under)), (1, 1));
        assert_eq!(ours.trace.steps, under.trace.steps);
    }

    #[test]
    fn matrix_products_split_over_threads_change_no_bit() {
        for file in ["minilm-int8.onnx", "paraphrase-minilm-l3.onnx"] {
            let model = OnnxModel::load(&sample(file), &LoadOptions::default()).unwrap();
            // Batch 8 of 128 tokens: products large enough to be split.
            let inputs = token_batch(&model, 8, 128);
            let one = with_threads(1, || model.run(&inputs, true)).unwrap();
            // The plan runs with the pool in force.
            let mut pooled = false;
            with_threads(2, || {
                model.execute(&inputs, |_, _| {
                    pooled |= matches!(
                        tract_linalg::multithread::current_tract_executor(),
                        tract_linalg::multithread::Executor::MultiThread(_)
                    );
                })
            })
            .unwrap();
            assert!(pooled, "{file}: no pool in force");
            for n in [2, 3] {
                let split = with_threads(n, || model.run(&inputs, true)).unwrap();
                assert_eq!(split.leaves, one.leaves, "{file}, {n} threads");
                assert_eq!(split.outputs, one.outputs, "{file}, {n} threads");
            }
        }
    }

    #[test]
    fn shortcuts_give_the_leaves_full_hashing_gives() {
        let bytes = sample("minilm-int8.onnx");
        let inputs = minilm_inputs(|i| 101 + i * 37);
        let folded = OnnxModel::load(&bytes, &LoadOptions::default()).unwrap();
        let unfolded =
            OnnxModel::load_with_fold_budget(&bytes, &LoadOptions::default(), 0).unwrap();
        // Folding moved the dequantized embedding table out of the run.
        assert_eq!(folded.trace.fixed_steps(), 0);
        // Layer norm, GELU and attention outputs are hashed through the
        // reshape that reads them.
        assert!(
            folded.trace.deferred_steps() >= 6 * 4,
            "{}",
            folded.trace.deferred_steps()
        );
        assert!(unfolded.trace.fixed_steps() > 0);
        assert!(folded.trace.steps.len() < unfolded.trace.steps.len());
        assert!(folded.memory > unfolded.memory);
        for model in [&folded, &unfolded] {
            let exec = model.run(&inputs, true).unwrap();
            assert_eq!(exec.leaves.len(), model.trace.steps.len());
            assert_eq!(exec.leaves, naive_leaves(model, &inputs));
        }
        // Folding changes no output bit.
        assert_eq!(
            folded.run(&inputs, false).unwrap().outputs,
            unfolded.run(&inputs, false).unwrap().outputs
        );
    }

    #[test]
    fn a_fault_changes_one_step_and_everything_after_it() {
        let model = OnnxModel::load(&sample("minilm-int8.onnx"), &LoadOptions::default()).unwrap();
        let inputs = minilm_inputs(|i| 101 + i * 37);
        let honest = model.run(&inputs, true).unwrap();
        let fault = Fault {
            step: Some(model.trace.steps.len() / 2),
            llm: None,
        };
        let k = model
            .trace
            .step_of(model.fault_node(fault).unwrap())
            .unwrap();
        assert!(k >= model.trace.steps.len() / 2);
        let faulty = model.run_faulty(&inputs, true, fault).unwrap();
        assert_eq!(faulty.leaves[..k], honest.leaves[..k]);
        assert_ne!(faulty.leaves[k], honest.leaves[k]);
        assert_ne!(faulty.outputs, honest.outputs);
        let last = model.run_faulty(&inputs, false, Fault::default()).unwrap();
        assert_ne!(last.outputs, honest.outputs);
    }

    #[test]
    fn fused_operators_are_committed_where_they_end() {
        let model = OnnxModel::load(&sample("minilm-int8.onnx"), &LoadOptions::default()).unwrap();
        let graph = model.plan.model();
        let consts = graph
            .nodes()
            .iter()
            .filter(|n| n.op_is::<tract_onnx::tract_core::ops::konst::Const>())
            .count();
        assert!(model.trace.steps.len() + consts < graph.nodes().len());
        // The first step downstream of `node`: the one that commits to it.
        let first_step_after = |node: usize| {
            let (mut todo, mut first) = (vec![node], usize::MAX);
            while let Some(n) = todo.pop() {
                for inlet in &graph.node(n).outputs[0].successors {
                    match model.trace.step_of(inlet.node) {
                        Some(step) => first = first.min(step),
                        None => todo.push(inlet.node),
                    }
                }
            }
            first
        };
        let reads = |node: &TypedNode, op: &str| {
            node.outputs
                .iter()
                .flat_map(|o| &o.successors)
                .any(|i| graph.node(i.node).op.name() == op)
        };
        let inputs = minilm_inputs(|i| 101 + i * 37);
        let honest = model.run(&inputs, true).unwrap();
        // GELU's erf (an elementwise chain), what a layer norm normalizes, a
        // matrix product whose heads are transposed, and the attention
        // scores a softmax reads: none is a step; the step after each is,
        // and a fault in it shows there first.
        // (what, an op, whether the node is that op or reads it)
        let cases = [
            ("erf", "Erf", false),
            ("a layer norm's input", "RmsNorm", true),
            ("a transpose's input", "MoveAxis", true),
            ("a softmax's input", "Softmax", true),
        ];
        for (what, op, reader) in cases {
            let node = graph
                .nodes()
                .iter()
                .find(|n| {
                    (if reader {
                        reads(n, op)
                    } else {
                        n.op.name() == op
                    }) && !n.op_is::<tract_onnx::tract_core::ops::konst::Const>()
                })
                .unwrap_or_else(|| panic!("MiniLM has {what}"));
            assert_eq!(model.trace.step_of(node.id), None, "{what} is a step");
            let end = first_step_after(node.id);
            let faulty = model.run_perturbed(&inputs, true, Some(node.id)).unwrap();
            assert_eq!(faulty.leaves[..end], honest.leaves[..end], "{what}");
            assert_ne!(faulty.leaves[end], honest.leaves[end], "{what}");
        }
    }

    #[test]
    fn a_token_id_beyond_the_vocabulary_is_an_error_not_a_crash() {
        let model = OnnxModel::load(&sample("minilm-int8.onnx"), &LoadOptions::default()).unwrap();
        let Err(err) = model.run(&minilm_inputs(|_| 1 << 40), true) else {
            panic!("out-of-range ids must fail");
        };
        assert!(
            err.to_string().contains("within the model's range"),
            "{err}"
        );
        // And the model still runs.
        model.run(&minilm_inputs(|i| 100 + i), true).unwrap();
    }
}

#[cfg(test)]
mod unknown_dims {
    use super::*;
    use crate::InputError;

    fn model(dims: &[Option<i64>]) -> Vec<u8> {
        let add = pb::NodeProto {
            op_type: "Add".into(),
            name: "add".into(),
            input: vec!["x".into(), "x".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        graph(dims, dims, vec![add])
    }

    /// A graph from input `x` to output `y` through `nodes`.
    fn graph(dims: &[Option<i64>], out: &[Option<i64>], nodes: Vec<pb::NodeProto>) -> Vec<u8> {
        use pb::tensor_shape_proto::{Dimension, dimension};
        let ty = |dims: &[Option<i64>]| {
            Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: 1,
                    shape: Some(pb::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|d| Dimension {
                                value: d.map(dimension::Value::DimValue),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            })
        };
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(pb::GraphProto {
                name: "t".into(),
                node: nodes,
                input: vec![pb::ValueInfoProto {
                    name: "x".into(),
                    r#type: ty(dims),
                    ..Default::default()
                }],
                output: vec![pb::ValueInfoProto {
                    name: "y".into(),
                    r#type: ty(out),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Unnamed, unknown dimensions (`?`) become symbols: the model loads
    /// as it comes (tract alone refuses it: "Source node without a
    /// determined fact"), and runs at whatever sizes a request brings.
    #[test]
    fn unknown_dimensions_become_symbols_and_take_the_requests_sizes() {
        use vouch_types::Tensor;
        for (dims, run) in [
            (vec![None, Some(3)], vec![2u64, 3]),
            (vec![Some(1), Some(3), None, None], vec![1, 3, 4, 5]),
        ] {
            let m = OnnxModel::load(&model(&dims), &LoadOptions::default()).unwrap();
            let shape = m.schema.inputs[0].shape.clone().unwrap();
            for (d, want) in shape.iter().zip(&dims) {
                match (d, want) {
                    (Dim::Fixed(n), Some(w)) => assert_eq!(*n as i64, *w),
                    (Dim::Symbol(s), None) => assert!(s.starts_with("x_"), "{s}"),
                    other => panic!("{other:?}"),
                }
            }
            let n: u64 = run.iter().product();
            let xs: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let mut inputs = TensorMap::new();
            inputs.insert("x", Tensor::from_f32(run.clone(), &xs).unwrap());
            let out = m.run(&inputs, true).unwrap().outputs;
            let y = out.iter().next().unwrap().1;
            assert_eq!(y.shape(), run.as_slice());
            let doubled: Vec<f64> = xs.iter().map(|x| 2.0 * f64::from(*x)).collect();
            assert_eq!(y.to_f64_vec(), doubled);
        }
    }

    /// A model whose symbolic graph does not analyse (a Reshape to a shape
    /// computed through casts, as PaddleOCR's classifier has) is kept, and
    /// each request's shapes get a plan of their own: the same outputs and
    /// trace as a model pushed with those shapes, a clear error for shapes
    /// the graph cannot take, and at most `PLANS` plans cached.
    #[test]
    fn a_model_whose_symbols_do_not_analyse_is_planned_per_request_shape() {
        use vouch_types::Tensor;
        let node = |op: &str, input: &[&str], output: &str, attribute| pb::NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: input.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        };
        let int = |name: &str, i: i64| pb::AttributeProto {
            name: name.into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i,
            ..Default::default()
        };
        let konst = |output: &str, v: i64| {
            let t = pb::TensorProto {
                dims: vec![1],
                data_type: 7,
                int64_data: vec![v],
                ..Default::default()
            };
            let value = pb::AttributeProto {
                name: "value".into(),
                r#type: pb::attribute_proto::AttributeType::Tensor as i32,
                t: Some(t),
                ..Default::default()
            };
            node("Constant", &[], output, vec![value])
        };
        // y = relu(reshape(x + x, [x.shape[0] as i32 as i64, 3]))
        let bytes = graph(
            &[None, None],
            &[None, Some(3)],
            vec![
                konst("zero", 0),
                konst("one", 1),
                konst("three", 3),
                node("Shape", &["x"], "shape", vec![]),
                node("Slice", &["shape", "zero", "one"], "rows", vec![]),
                node("Cast", &["rows"], "rows32", vec![int("to", 6)]),
                node("Cast", &["rows32"], "rows64", vec![int("to", 7)]),
                node("Concat", &["rows64", "three"], "to", vec![int("axis", 0)]),
                node("Add", &["x", "x"], "twice", vec![]),
                node("Reshape", &["twice", "to"], "reshaped", vec![]),
                node("Relu", &["reshaped"], "y", vec![]),
            ],
        );
        let symbolic = OnnxModel::load(&bytes, &LoadOptions::default());
        assert!(
            matches!(&symbolic, Err(EngineError::Load(why)) if why.contains("Reshape")),
            "tract alone refuses it: {:?}",
            symbolic.err()
        );
        let engine = OnnxEngine::new();
        let m = engine.load(&bytes, &LoadOptions::default()).unwrap();
        let shape = m.schema().inputs[0].shape.clone().unwrap();
        assert!(
            matches!(shape[..], [Dim::Symbol(_), Dim::Symbol(_)]),
            "{shape:?}"
        );
        assert_eq!(m.schema().outputs[0].name, "y");
        assert!(m.steps().is_empty());
        let input = |n: u64| {
            let xs: Vec<f32> = (0..n * 3).map(|i| i as f32 - 4.0).collect();
            let mut inputs = TensorMap::new();
            inputs.insert("x", Tensor::from_f32(vec![n, 3], &xs).unwrap());
            (inputs, xs)
        };
        for n in 1..=PLANS as u64 + 2 {
            let (inputs, xs) = input(n);
            let ours = m.run(&inputs, true).unwrap();
            let y = ours.outputs.get("y").unwrap();
            assert_eq!(y.shape(), &[n, 3]);
            let want: Vec<f64> = xs.iter().map(|x| (2.0 * f64::from(*x)).max(0.0)).collect();
            assert_eq!(y.to_f64_vec(), want);
            let mut shapes = BTreeMap::new();
            shapes.insert("x".to_string(), vec![Dim::Fixed(n), Dim::Fixed(3)]);
            let pushed = OnnxModel::load(
                &bytes,
                &LoadOptions {
                    input_shapes: shapes,
                },
            )
            .unwrap();
            let theirs = pushed.run(&inputs, true).unwrap();
            assert!(!ours.leaves.is_empty());
            assert_eq!(ours.leaves, theirs.leaves, "the trace of a push at [{n},3]");
            assert_eq!(ours.outputs, theirs.outputs);
        }
        let shaped = ShapedModel::new(&bytes, &LoadOptions::default(), String::new()).unwrap();
        for n in 1..=PLANS as u64 + 2 {
            shaped.run(&input(n).0, false).unwrap();
        }
        assert_eq!(shaped.plans_cached(), PLANS);
        // A shape the Reshape cannot take: the request is told why.
        let mut wide = TensorMap::new();
        wide.insert("x", Tensor::from_f32(vec![1, 2], &[0.0; 2]).unwrap());
        let err = m.run(&wide, false).unwrap_err();
        assert!(
            matches!(err, EngineError::Input(InputError::Plan { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("x=[1,2]"), "{err}");
        // And the model still runs.
        m.run(&input(1).0, false).unwrap();
    }
}
