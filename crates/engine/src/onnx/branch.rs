//! ONNX `If` with branches planned once, optimized, and per shape.
//!
//! tract's `IfThenElse` copies the branch it takes and plans it anew on
//! every run (`body.clone().into_runnable()`), as its ONNX importer typed
//! it: never optimized, with the model's weights arriving as run-time
//! inputs (ONNX branches see the outer graph's initializers). A model that
//! is all one `If` on an input, as silero-vad is (its sample rate picks the
//! branch), ran tract's generic kernels and packed its weights on every
//! request: 0.77 ms where onnxruntime takes 0.06 ms.
//!
//! [`PlannedIf`] makes each input the outer model holds constant a constant
//! of both branches, optimizes them as the outer model is optimized, and
//! plans them once. Where a branch's inputs have symbolic dimensions, it
//! also plans the branch for the concrete shapes a run brings (the last
//! [`SHAPED`] kept, for weights up to 16 MiB): with every size known,
//! tract lays out convolutions and products at load instead of on every
//! run. The `If` stays one step of the trace, and the outputs are a float
//! model's (within its tolerance of tract's generic kernels; test in
//! `super::tests`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::logic::IfThenElse;

/// Branch plans kept per `If` for concrete input shapes.
pub(super) const SHAPED: usize = 4;

/// Each plan holds its own packed copy of the branch's weights: an `If`
/// whose outer constants weigh more than this gets no plans per shape
/// (its symbolic plans only), so a model cannot grow a node's memory by
/// [`SHAPED`] copies of large weights.
const SHAPED_MAX_CONSTANT_BYTES: usize = 16 << 20;

/// Which branch, and its inputs' shapes.
type ShapeKey = (bool, Vec<TVec<usize>>);

/// A branch planned for one set of concrete shapes, or `None` where
/// those shapes do not plan (the symbolic plan runs them).
type Shaped = (ShapeKey, Option<Arc<TypedSimplePlan>>);

/// An `If` whose branches are optimized and planned.
#[derive(Clone)]
pub(super) struct PlannedIf {
    /// tract's op, with the branches as typed (constants inlined), before
    /// optimization: its facts, and the source of the per-shape plans.
    generic: IfThenElse,
    then_plan: Arc<TypedSimplePlan>,
    else_plan: Arc<TypedSimplePlan>,
    /// Whether branches are planned per shape (small weights only).
    per_shape: bool,
    /// Least recently used first.
    shaped: Arc<Mutex<VecDeque<Shaped>>>,
}

impl std::fmt::Debug for PlannedIf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedIf").finish_non_exhaustive()
    }
}

impl PartialEq for PlannedIf {
    fn eq(&self, _other: &Self) -> bool {
        // As tract's own `IfThenElse`: no two are merged.
        false
    }
}

impl Eq for PlannedIf {}

super::stands_in_for_generic!(PlannedIf);

impl EvalOp for PlannedIf {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let cond = inputs[0].cast_to_scalar::<bool>()?;
        let (mapping, body, plan) = if cond {
            let g = &self.generic;
            (&g.then_input_mapping, &g.then_body, &self.then_plan)
        } else {
            let g = &self.generic;
            (&g.else_input_mapping, &g.else_body, &self.else_plan)
        };
        let inputs: TVec<TValue> = mapping.iter().map(|&ix| inputs[ix].clone()).collect();
        if !self.per_shape {
            return plan.run(inputs);
        }
        let key = (cond, inputs.iter().map(|t| t.shape().into()).collect());
        match self.shaped_plan(key, body) {
            Some(shaped) => shaped.run(inputs),
            None => plan.run(inputs),
        }
    }
}

impl PlannedIf {
    /// The input shapes this `If` keeps branch plans for, least recently
    /// used first.
    #[cfg(test)]
    pub(super) fn shaped_plans(&self) -> Vec<Vec<TVec<usize>>> {
        let cache = self.shaped.lock().unwrap_or_else(|e| e.into_inner());
        let planned = cache.iter().filter(|(_, plan)| plan.is_some());
        planned.map(|((_, shapes), _)| shapes.clone()).collect()
    }

    /// The plan of `body` for the shapes in `key`, built on first use.
    ///
    /// Which plan runs depends on the shapes alone, never on what ran
    /// before: a shape evicted from the cache is planned again as it was
    /// (about 6 ms for a silero-vad branch), so every node computes the
    /// same values for the same request.
    fn shaped_plan(&self, key: ShapeKey, body: &TypedModel) -> Option<Arc<TypedSimplePlan>> {
        let lookup = |cache: &mut VecDeque<Shaped>, key: &ShapeKey| {
            let at = cache.iter().position(|(k, _)| k == key)?;
            let hit = cache.remove(at)?;
            let plan = hit.1.clone();
            cache.push_back(hit);
            Some(plan)
        };
        let mut cache = self.shaped.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = lookup(&mut cache, &key) {
            return plan;
        }
        drop(cache);
        // Shapes that do not plan run on the symbolic plan, which says
        // what is wrong with them if anything is.
        let plan = concrete(body, &key.1)
            .ok()
            .flatten()
            .and_then(|m| SimplePlan::new(m).ok());
        let mut cache = self.shaped.lock().unwrap_or_else(|e| e.into_inner());
        if lookup(&mut cache, &key).is_none() {
            if cache.len() == SHAPED {
                cache.pop_front();
            }
            cache.push_back((key, plan.clone()));
        }
        plan
    }
}

/// `body` optimized with the symbols of its inputs' dimensions bound to
/// `shapes`; `None` when it has none, or some dimension is an expression
/// rather than a symbol (nothing to gain over the symbolic plan).
fn concrete(body: &TypedModel, shapes: &[TVec<usize>]) -> TractResult<Option<TypedModel>> {
    let mut subs: HashMap<Symbol, TDim> = HashMap::new();
    for (outlet, shape) in body.input_outlets()?.iter().zip(shapes) {
        let fact = body.outlet_fact(*outlet)?;
        ensure!(
            fact.rank() == shape.len(),
            "a branch input of rank {} given a tensor of shape {shape:?}",
            fact.rank()
        );
        for (dim, &n) in fact.shape.iter().zip(shape) {
            match dim {
                TDim::Val(v) => ensure!(
                    *v == n as i64,
                    "a branch input {:?} given {shape:?}",
                    fact.shape
                ),
                TDim::Sym(s) => {
                    let bound = subs.entry(s.clone()).or_insert_with(|| n.to_dim());
                    ensure!(*bound == n.to_dim(), "`{s}` is both {bound} and {n}");
                }
                _ => return Ok(None),
            }
        }
    }
    if subs.is_empty() {
        return Ok(None);
    }
    optimize(body.set_symbols(&subs)?).map(Some)
}

/// Replaces every `If` left in `model` by a [`PlannedIf`] (constants of
/// the outer model inlined into both branches), keeping node names (the
/// trace names steps by them). Returns how many it replaced.
pub(super) fn plan_branches(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(generic) = node.op_as::<IfThenElse>() else {
            continue;
        };
        // The condition stays an input; so does every value not constant.
        let konst: Vec<Option<Arc<Tensor>>> = node
            .inputs
            .iter()
            .enumerate()
            .map(|(ix, o)| {
                let c = model.node(o.node).op_as::<Const>()?;
                (ix > 0 && c.val().is_plain()).then(|| c.val().clone())
            })
            .collect();
        let kept: Vec<usize> = (0..node.inputs.len())
            .filter(|&ix| konst[ix].is_none())
            .collect();
        let (then_body, then_input_mapping) = inline(
            &generic.then_body,
            &generic.then_input_mapping,
            &konst,
            &kept,
        )?;
        let (else_body, else_input_mapping) = inline(
            &generic.else_body,
            &generic.else_input_mapping,
            &konst,
            &kept,
        )?;
        let op = PlannedIf {
            then_plan: SimplePlan::new(optimize(then_body.clone())?)?,
            else_plan: SimplePlan::new(optimize(else_body.clone())?)?,
            generic: IfThenElse {
                then_body,
                then_input_mapping,
                else_body,
                else_input_mapping,
            },
            per_shape: plans_per_shape(&konst),
            shaped: Arc::default(),
        };
        let inputs: TVec<OutletId> = kept.iter().map(|&ix| node.inputs[ix]).collect();
        let patch = TypedModelPatch::replace_single_op(model, node, &inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Whether an `If` whose outer constants are `konst` gets plans per shape
/// ([`SHAPED_MAX_CONSTANT_BYTES`]).
fn plans_per_shape(konst: &[Option<Arc<Tensor>>]) -> bool {
    let bytes: usize = (konst.iter().flatten())
        .map(|t| t.len() * t.datum_type().size_of())
        .sum();
    bytes <= SHAPED_MAX_CONSTANT_BYTES
}

/// `body` optimized as the engine optimizes a model: by tract, then with
/// the engine's own operators (nested `If`s planned as this one).
fn optimize(body: TypedModel) -> TractResult<TypedModel> {
    let mut body = super::optimized(body)?;
    super::speed_up(&mut body, super::Planning::ALL)?;
    Ok(body)
}

/// `body` with its inputs that `konst` holds (by the `If`'s input index
/// `mapping` gives them) made constants, and its input mapping onto the
/// `If`'s remaining inputs, `kept`.
fn inline(
    body: &TypedModel,
    mapping: &[usize],
    konst: &[Option<Arc<Tensor>>],
    kept: &[usize],
) -> TractResult<(TypedModel, Vec<usize>)> {
    let mut body = body.clone();
    let mut inputs = vec![];
    let mut remaining = vec![];
    for (outlet, &ix) in body.input_outlets()?.to_vec().iter().zip(mapping) {
        match &konst[ix] {
            Some(value) => {
                let node = body.node_mut(outlet.node);
                node.op = Box::new(Const::new(value.clone())?);
                node.outputs[0].fact = TypedFact::try_from(value.clone())?;
            }
            None => {
                inputs.push(*outlet);
                let at = kept.iter().position(|&k| k == ix);
                remaining.push(at.context("an input of a branch the If does not keep")?);
            }
        }
    }
    body.set_input_outlets(&inputs)?;
    Ok((body, remaining))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_weights_get_no_plans_per_shape() {
        let weights = |floats: usize| Some(Arc::new(Tensor::zero::<f32>(&[floats]).unwrap()));
        // silero-vad's branches hold about 1.2 MB.
        assert!(plans_per_shape(&[None, weights(300_000), None]));
        assert!(plans_per_shape(&[weights(4 << 20)]));
        assert!(!plans_per_shape(&[weights(4 << 20), weights(1)]));
        assert!(!plans_per_shape(&[weights(3 << 20), weights(2 << 20)]));
    }
}
