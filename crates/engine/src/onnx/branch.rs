//! ONNX `If` with branches planned once.
//!
//! tract's `IfThenElse` copies the branch it takes and plans it anew on
//! every run (`body.clone().into_runnable()`). A model that is all one `If`
//! on an input, as silero-vad is (its sample rate picks the branch), paid
//! that on every request. [`PlannedIf`] plans both branches at load and
//! runs the one the condition picks: the same operators on the same
//! values, so its outputs are tract's bit for bit.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::logic::IfThenElse;

/// An `If` whose branches are planned.
#[derive(Clone)]
pub(super) struct PlannedIf {
    generic: IfThenElse,
    then_plan: Arc<TypedSimplePlan>,
    else_plan: Arc<TypedSimplePlan>,
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

impl Op for PlannedIf {
    fn name(&self) -> StaticName {
        self.generic.name()
    }

    op_as_typed_op!();
}

impl TypedOp for PlannedIf {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.generic.output_facts(inputs)
    }
}

impl EvalOp for PlannedIf {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let cond = inputs[0].cast_to_scalar::<bool>()?;
        let (mapping, plan) = if cond {
            (&self.generic.then_input_mapping, &self.then_plan)
        } else {
            (&self.generic.else_input_mapping, &self.else_plan)
        };
        let inputs: TVec<TValue> = mapping.iter().map(|&ix| inputs[ix].clone()).collect();
        plan.run(inputs)
    }
}

/// Replaces every `If` left in `model` by a [`PlannedIf`], keeping node
/// names (the trace names steps by them). Returns how many it replaced.
pub(super) fn plan_branches(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(generic) = node.op_as::<IfThenElse>() else {
            continue;
        };
        let op = PlannedIf {
            generic: generic.clone(),
            then_plan: SimplePlan::new(generic.then_body.clone())?,
            else_plan: SimplePlan::new(generic.else_body.clone())?,
        };
        let inputs = node.inputs.clone();
        let patch = TypedModelPatch::replace_single_op(model, node, &inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}
