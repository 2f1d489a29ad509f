//! The ONNX engine, on tract.
//!
//! Loading: decode the protobuf, refuse external data and operators tract
//! does not register (listing them all at once), replace a `ZipMap` that
//! feeds a graph output by its input tensor (tract has no sequence-of-maps
//! type; the output keeps its name and carries the per-class tensor), apply
//! input shape overrides, analyse, optimize and plan.
//!
//! Running: every step of the optimized plan except constants is a trace
//! step; its outputs are hashed into a leaf as they are produced.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::plan::{SimplePlan, eval as eval_node};
use tract_onnx::tract_hir::infer::Factoid;
use vouch_types::merkle::LeafHasher;
use vouch_types::{
    DType, Determinism, Dim, EngineInfo, ModelFormat, Schema, TensorMap, TensorSpec,
};

use crate::{Engine, EngineError, Execution, LoadOptions, LoadedModel};

#[cfg(not(target_endian = "little"))]
compile_error!("tensors are copied as little-endian bytes: big-endian hosts are not supported");

/// The tract version this engine is built with (pinned in Cargo.toml).
pub const TRACT_VERSION: &str = "0.23.9";

/// Relative tolerance for float models compared across machines.
pub const FLOAT_RTOL: f64 = 1e-4;

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
        Ok(Arc::new(OnnxModel::load(bytes, options)?))
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

/// A loaded ONNX model.
pub struct OnnxModel {
    plan: Arc<TypedSimplePlan>,
    schema: Schema,
    steps: Vec<String>,
    /// Plan node id -> trace step index (None for constants).
    step_of_node: Vec<Option<usize>>,
    determinism: Determinism,
    memory: usize,
}

impl OnnxModel {
    /// Loads and plans a model from ONNX bytes.
    pub fn load(bytes: &[u8], options: &LoadOptions) -> Result<OnnxModel, EngineError> {
        let onnx = tract_onnx::onnx();
        let mut proto = pb::ModelProto::decode(bytes).map_err(malformed)?;
        strip_output_zipmaps(&mut proto);
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
        for (name, dims) in &options.input_shapes {
            let ix = input_names.iter().position(|n| n == name).ok_or_else(|| {
                EngineError::Load(format!(
                    "shape override names input `{name}`, but the model's inputs are {input_names:?}"
                ))
            })?;
            let shape: TVec<TDim> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => TDim::from(*n as i64),
                    Dim::Symbol(s) => model.symbols.sym(s).into(),
                })
                .collect();
            let old = model
                .input_fact(ix)
                .map_err(|e| malformed(chain(&e)))?
                .clone();
            let mut fact = InferenceFact::shape(shape);
            if let Some(dt) = old.datum_type.concretize() {
                fact = fact.with_datum_type(dt);
            }
            model
                .set_input_fact(ix, fact)
                .map_err(|e| malformed(chain(&e)))?;
        }

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
        let optimized = typed
            .into_optimized()
            .map_err(|e| EngineError::Load(format!("{}{hint}", chain(&e))))?;
        let plan = SimplePlan::new(optimized).map_err(|e| EngineError::Load(chain(&e)))?;

        let graph = plan.model();
        let mut step_of_node = vec![None; graph.nodes().len()];
        let mut steps = Vec::new();
        for &n in plan.order_without_consts() {
            let node = graph.node(n);
            if !node.op_is::<Const>() {
                step_of_node[n] = Some(steps.len());
                steps.push(node.name.clone());
            }
        }
        let memory = bytes.len().saturating_mul(2).max(1 << 20);
        let determinism = if outputs.iter().any(|s| s.dtype.is_some_and(DType::is_float)) {
            Determinism::Tolerant { rtol: FLOAT_RTOL }
        } else {
            Determinism::Exact
        };
        Ok(OnnxModel {
            plan,
            schema: Schema { inputs, outputs },
            steps,
            step_of_node,
            determinism,
            memory,
        })
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

fn hash_value(leaf: &mut LeafHasher, v: &Tensor) {
    let shape: Vec<u64> = v.shape().iter().map(|&d| d as u64).collect();
    match to_dtype(v.datum_type()) {
        Some(dt) if v.is_plain_ram() => leaf.tensor(dt, &shape, v.as_bytes()),
        _ => {
            // Engine-internal forms (packed matmul operands, symbolic dims,
            // strings): committed by type and shape; their contents are
            // committed by the steps that consume them.
            let printed = format!("{:?}{:?}", v.datum_type(), v.shape());
            leaf.tensor(DType::U8, &[printed.len() as u64], printed.as_bytes());
        }
    }
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
        &self.steps
    }

    fn run(&self, inputs: &TensorMap, trace: bool) -> Result<Execution, EngineError> {
        let values = self.to_tract(inputs)?;
        let mut state = self.plan.spawn().map_err(|e| EngineError::Run(chain(&e)))?;
        let mut leaves = Vec::with_capacity(if trace { self.steps.len() } else { 0 });
        let results = state
            .run_plan_with_eval(values, |ctx, op_state, node, node_inputs| {
                let out = eval_node(ctx, op_state, node, node_inputs)?;
                if trace && let Some(step) = self.step_of_node[node.id] {
                    let mut leaf = LeafHasher::new(step as u64, &node.name, out.len());
                    for v in out.iter() {
                        hash_value(&mut leaf, v);
                    }
                    leaves.push(leaf.finish());
                }
                Ok::<_, TractError>(out)
            })
            .map_err(|e| EngineError::Run(chain(&e)))?;
        let mut outputs = TensorMap::new();
        for (spec, value) in self.schema.outputs.iter().zip(results.iter()) {
            outputs.insert(spec.name.clone(), from_tract(&spec.name, value)?);
        }
        Ok(Execution { outputs, leaves })
    }
}
