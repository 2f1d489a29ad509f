//! Models planned per input shape.
//!
//! Some models, as users download them, do not analyse with symbolic
//! dimensions: tract cannot carry a symbolic size through every operator (a
//! Reshape whose shape is computed, a Concat that must unify two expressions
//! of one size, a Squeeze of an axis not known to be 1), though every
//! concrete size runs. Such a model is kept with the schema it declares, and
//! a plan is built for each concrete set of input shapes a request brings,
//! exactly as a push with `--input-shape` set to those shapes builds it (so
//! its trace is the one that push would give). The last [`PLANS`] plans are
//! kept; a shape that cannot be planned is remembered as such.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use vouch_types::{Determinism, Dim, ModelFormat, Schema, TensorMap, TensorSpec};

use super::{OnnxModel, chain, prepare, to_dtype};
use crate::{EngineError, Execution, Fault, InputError, LoadOptions, LoadedModel};

/// Plans kept per model, most recently used first out of the cache last.
pub const PLANS: usize = 4;

/// A plan, or why the shapes cannot be planned; built once per shape.
type Slot = Arc<OnceLock<Result<Arc<OnnxModel>, String>>>;

/// An ONNX model whose plans are built per request shape.
pub struct ShapedModel {
    bytes: Vec<u8>,
    schema: Schema,
    determinism: Determinism,
    /// Least recently used first.
    plans: Mutex<VecDeque<(Vec<Vec<u64>>, Slot)>>,
}

impl ShapedModel {
    /// Keeps a model whose symbolic plan failed with `why`, when its inputs
    /// have symbolic dimensions (a request's shapes may plan where symbols
    /// did not) and every input's and output's element type is declared.
    /// Otherwise the symbolic failure stands.
    pub fn new(bytes: &[u8], options: &LoadOptions, why: String) -> Result<Self, EngineError> {
        let (model, input_names, proto) = prepare(bytes, options)?;
        let refuse = |reason: &str| {
            EngineError::Load(format!(
                "{why} (nor can it be planned per request shape: {reason})"
            ))
        };
        let facts = |outlets: &[OutletId]| -> Result<Vec<&InferenceFact>, EngineError> {
            outlets
                .iter()
                .map(|o| model.outlet_fact(*o).map_err(|e| refuse(&chain(&e))))
                .collect()
        };
        let in_outlets = model
            .input_outlets()
            .map_err(|e| refuse(&chain(&e)))?
            .to_vec();
        let out_outlets = model
            .output_outlets()
            .map_err(|e| refuse(&chain(&e)))?
            .to_vec();
        let mut inputs = Vec::new();
        let mut symbolic = false;
        for (fact, name) in facts(&in_outlets)?.into_iter().zip(input_names) {
            let dims: Vec<TDim> = fact
                .shape
                .dims()
                .map(|d| d.concretize())
                .collect::<Option<_>>()
                .filter(|_| !fact.shape.is_open())
                .ok_or_else(|| refuse(&format!("input `{name}` declares no rank")))?;
            let shape: Vec<Dim> = dims
                .iter()
                .map(|d| match d.to_i64() {
                    Ok(n) if n >= 0 => Dim::Fixed(n as u64),
                    _ => Dim::Symbol(d.to_string()),
                })
                .collect();
            symbolic |= shape.iter().any(|d| matches!(d, Dim::Symbol(_)));
            let dtype = dtype_of(fact)
                .ok_or_else(|| refuse(&format!("input `{name}` declares no element type")))?;
            inputs.push(TensorSpec {
                name,
                dtype: Some(dtype),
                shape: Some(shape),
            });
        }
        if !symbolic {
            return Err(EngineError::Load(why));
        }
        let mut outputs = Vec::new();
        // tract leaves output facts to analysis: the element types come from
        // the file's declarations.
        let declared = proto
            .graph
            .as_ref()
            .map(|g| g.output.as_slice())
            .unwrap_or_default();
        for outlet in &out_outlets {
            let name = model
                .outlet_label(*outlet)
                .map(str::to_string)
                .unwrap_or_else(|| model.node(outlet.node).name.clone());
            let dtype = declared
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| match o.r#type.as_ref()?.value.as_ref()? {
                    pb::type_proto::Value::TensorType(t) => {
                        let dt = pb::tensor_proto::DataType::try_from(t.elem_type).ok()?;
                        to_dtype(DatumType::try_from(dt).ok()?)
                    }
                })
                .ok_or_else(|| refuse(&format!("output `{name}` declares no element type")))?;
            outputs.push(TensorSpec {
                name,
                dtype: Some(dtype),
                shape: None,
            });
        }
        let schema = Schema { inputs, outputs };
        tracing::info!(
            why,
            "the model's symbolic shapes do not analyse: it is planned per input shape"
        );
        Ok(ShapedModel {
            bytes: bytes.to_vec(),
            determinism: crate::determinism_of(ModelFormat::Onnx, &schema),
            schema,
            plans: Mutex::new(VecDeque::new()),
        })
    }

    /// The plan for these inputs' shapes, built on first use.
    fn plan(&self, inputs: &TensorMap) -> Result<Arc<OnnxModel>, EngineError> {
        let mut shapes = Vec::new();
        let mut options = LoadOptions::default();
        for spec in &self.schema.inputs {
            let shape = inputs
                .get(&spec.name)
                .ok_or_else(|| {
                    EngineError::Run(format!("input `{}` missing after validation", spec.name))
                })?
                .shape()
                .to_vec();
            options.input_shapes.insert(
                spec.name.clone(),
                shape.iter().map(|&d| Dim::Fixed(d)).collect(),
            );
            shapes.push(shape);
        }
        let slot = {
            let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
            let slot = match plans.iter().position(|(s, _)| *s == shapes) {
                Some(at) => plans.remove(at).expect("position is in range").1,
                None => Slot::default(),
            };
            plans.push_back((shapes, slot.clone()));
            if plans.len() > PLANS {
                plans.pop_front();
            }
            slot
        };
        let planned = slot.get_or_init(|| {
            let plan = OnnxModel::load(&self.bytes, &options).map_err(|e| e.to_string())?;
            let names = |s: &Schema| s.outputs.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
            if names(&plan.schema) != names(&self.schema) {
                return Err(format!(
                    "the plan's outputs {:?} differ from the declared {:?}",
                    names(&plan.schema),
                    names(&self.schema)
                ));
            }
            Ok(Arc::new(plan))
        });
        planned.clone().map_err(|why| {
            let shapes: Vec<String> = options
                .input_shapes
                .iter()
                .map(|(name, dims)| {
                    let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                    format!("{name}=[{}]", dims.join(","))
                })
                .collect();
            EngineError::Input(InputError::Plan {
                shapes: shapes.join(" "),
                why,
            })
        })
    }

    /// How many plans are cached.
    pub fn plans_cached(&self) -> usize {
        self.plans.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn dtype_of(fact: &InferenceFact) -> Option<vouch_types::DType> {
    to_dtype(fact.datum_type.concretize()?)
}

impl LoadedModel for ShapedModel {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn determinism(&self) -> Determinism {
        self.determinism
    }

    /// The bytes, and up to [`PLANS`] plans of about twice their size each.
    fn memory_bytes(&self) -> usize {
        let plan = self.bytes.len().saturating_mul(2).max(1 << 20);
        self.bytes.len().saturating_add(plan.saturating_mul(PLANS))
    }

    /// Empty: the steps depend on the shapes a request brings.
    fn steps(&self) -> &[String] {
        &[]
    }

    fn run(&self, inputs: &TensorMap, trace: bool) -> Result<Execution, EngineError> {
        self.plan(inputs)?.run(inputs, trace)
    }

    fn run_faulty(
        &self,
        inputs: &TensorMap,
        trace: bool,
        fault: Fault,
    ) -> Result<Execution, EngineError> {
        self.plan(inputs)?.run_faulty(inputs, trace, fault)
    }
}
