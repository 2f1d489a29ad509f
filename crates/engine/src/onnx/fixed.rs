//! Steps whose outputs depend on the model alone.
//!
//! tract folds constant subgraphs while optimizing, except where folding
//! would grow memory: an int8 embedding table dequantized to float32 on
//! every run, for instance (the Cast alone is a quarter of MiniLM-int8's
//! run time). [`fold`] folds those too, within a memory allowance; the trace
//! ([`super::trace`]) hashes what remains fixed once, at load time.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::source::TypedSource;

/// Walks `order` (a topological order of `graph`) and calls `visit` for
/// every node that is not a constant, with its outputs when they are
/// fixed: its inputs are constants or fixed, no symbolic value goes in or
/// out, and tract can evaluate it outside a plan (so it reads no context
/// and keeps no state). Values are dropped after their last use.
pub(super) fn walk(
    graph: &TypedModel,
    order: &[usize],
    mut visit: impl FnMut(&TypedNode, Option<&TVec<TValue>>),
) {
    let nodes = graph.nodes();
    let mut values: Vec<Option<TVec<TValue>>> = vec![None; nodes.len()];
    let mut uses: Vec<usize> = nodes
        .iter()
        .map(|n| n.outputs.iter().map(|o| o.successors.len()).sum())
        .collect();
    for &n in order {
        let node = graph.node(n);
        if node.op_is::<Const>() {
            continue;
        }
        let inputs: Option<TVec<TValue>> = node
            .inputs
            .iter()
            .map(|o| match graph.node(o.node).op_as::<Const>() {
                Some(c) => Some(c.val().clone().into_tvalue()),
                None => values[o.node].as_ref().map(|v| v[o.slot].clone()),
            })
            .collect();
        for o in &node.inputs {
            uses[o.node] = uses[o.node].saturating_sub(1);
            if uses[o.node] == 0 {
                values[o.node] = None;
            }
        }
        let outputs = inputs
            .filter(|_| is_candidate(graph, node))
            .and_then(|inputs| node.op.eval_out_of_plan(inputs).ok().flatten());
        visit(node, outputs.as_ref());
        if uses[n] > 0 {
            values[n] = outputs;
        }
    }
}

/// Not a source, and no symbolic values in or out (those come from the
/// request).
fn is_candidate(graph: &TypedModel, node: &TypedNode) -> bool {
    let concrete = |f: &TypedFact| f.datum_type != TDim::datum_type() && f.shape.is_concrete();
    !node.op_is::<TypedSource>()
        && node.outputs.iter().all(|o| concrete(&o.fact))
        && node
            .inputs
            .iter()
            .all(|o| graph.outlet_fact(*o).is_ok_and(concrete))
}

/// Replaces fixed nodes that feed the rest of the graph by constants,
/// unless their values take more than `budget` bytes. Returns the model and
/// the bytes of the constants added.
pub(super) fn fold(mut model: TypedModel, budget: usize) -> TractResult<(TypedModel, usize)> {
    let order = model.eval_order()?;
    let mut fixed: Vec<Option<TVec<TValue>>> = vec![None; model.nodes().len()];
    let mut held = 0usize;
    let mut over = false;
    walk(&model, &order, |node, outputs| {
        if let Some(outputs) = outputs
            && !over
        {
            held += outputs
                .iter()
                .map(|t| t.len() * t.datum_type().size_of())
                .sum::<usize>();
            over = held > budget.saturating_mul(2);
            fixed[node.id] = Some(outputs.clone());
        }
    });
    if over {
        return Ok((model, 0));
    }
    let model_outputs = model.output_outlets()?.to_vec();
    let mut frontier = Vec::new();
    for (id, values) in fixed.iter().enumerate() {
        let Some(values) = values else { continue };
        let node = model.node(id);
        for (slot, value) in values.iter().enumerate() {
            let outlet = OutletId::new(id, slot);
            let feeds_rest = model_outputs.contains(&outlet)
                || node.outputs[slot]
                    .successors
                    .iter()
                    .any(|s| fixed[s.node].is_none());
            if feeds_rest {
                frontier.push((outlet, value.clone()));
            }
        }
    }
    let bytes = frontier.iter().map(|(_, t)| bytes_of(t)).sum();
    if frontier.is_empty() || bytes > budget {
        return Ok((model, 0));
    }
    drop(fixed);
    for (outlet, value) in frontier {
        let node = model.node(outlet.node);
        let name = if outlet.slot == 0 {
            node.name.clone()
        } else {
            format!("{}.{}", node.name, outlet.slot)
        };
        let mut patch = TypedModelPatch::default();
        let wire = patch.wire_node(name, Const::new(value.into_arc_tensor())?, &[])?[0];
        patch.shunt_outside(&model, outlet, wire)?;
        patch.apply(&mut model)?;
    }
    model.compact()?;
    Ok((model, bytes))
}

/// The bytes a tensor's elements take.
fn bytes_of(t: &Tensor) -> usize {
    t.len() * t.datum_type().size_of()
}
