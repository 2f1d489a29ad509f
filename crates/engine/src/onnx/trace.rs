//! Which plan nodes are trace steps, and how each step's leaf is hashed.
//!
//! Every node of the optimized plan except constants is a step. Two things
//! keep the commitment cheap without weakening it:
//!
//! - **Fixed steps.** A step whose outputs depend on the model alone
//!   ([`super::fixed`]) and that was not folded into a constant (it would
//!   take too much memory) has its leaf computed once, at load time.
//! - **Relabels.** A step that only changes its input's shape (`AxisOp`
//!   add, remove or reshape) has the same row-major element bytes as its
//!   input, so it reuses the input's data digest instead of hashing again.
//!
//! Leaves commit to each output's data digest ([`merkle::tensor_data`]), so
//! both shortcuts produce exactly the leaves full hashing would.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use vouch_types::merkle::{self, LeafHasher};
use vouch_types::{DType, Digest};

use super::to_dtype;

/// The trace layout of a plan, fixed at load time.
pub(super) struct TracePlan {
    /// Step names, in execution order.
    pub(super) steps: Vec<String>,
    /// Plan node id -> trace step index (None for constants).
    step_of_node: Vec<Option<usize>>,
    /// Per step: its leaf, when its outputs depend on the model alone.
    fixed: Vec<Option<Digest>>,
    /// Per outlet: data digests known at load time (outputs of fixed steps).
    known: Vec<Option<Digest>>,
    layout: Layout,
}

/// Where each node's outputs sit in a per-outlet digest table, and which
/// nodes only relabel their input.
struct Layout {
    /// Plan node id -> index of its first output in a digest table.
    outlet_base: Vec<usize>,
    /// Total outputs of all nodes: the size of a digest table.
    outlets: usize,
    /// Plan node id -> whether its output is its first input, relabelled.
    relabels: Vec<bool>,
}

/// Per-run state: the data digests of the outputs produced so far.
pub(super) struct TraceRun<'a> {
    plan: &'a TracePlan,
    data: Vec<Option<Digest>>,
    /// The leaves, in step order.
    pub(super) leaves: Vec<Digest>,
}

impl TracePlan {
    /// Lays out the trace of `plan`, evaluating its fixed steps once.
    pub(super) fn new(plan: &TypedSimplePlan) -> TracePlan {
        let graph = plan.model();
        let nodes = graph.nodes();
        let layout = Layout::new(nodes);
        let mut known = vec![None; layout.outlets];
        let (mut steps, mut step_of_node, mut fixed) = (vec![], vec![None; nodes.len()], vec![]);
        super::fixed::walk(graph, plan.order_without_consts(), |node, outputs| {
            let step = steps.len();
            step_of_node[node.id] = Some(step);
            steps.push(node.name.clone());
            fixed.push(outputs.map(|outputs| layout.hash_step(&mut known, step, node, outputs)));
        });
        TracePlan {
            steps,
            step_of_node,
            fixed,
            known,
            layout,
        }
    }

    /// The number of fixed steps (for logs and tests).
    pub(super) fn fixed_steps(&self) -> usize {
        self.fixed.iter().filter(|f| f.is_some()).count()
    }

    /// Starts a traced run.
    pub(super) fn start(&self) -> TraceRun<'_> {
        TraceRun {
            plan: self,
            data: self.known.clone(),
            leaves: Vec::with_capacity(self.steps.len()),
        }
    }
}

impl TraceRun<'_> {
    /// Records the outputs of plan node `node` if it is a trace step.
    pub(super) fn record(&mut self, node: &TypedNode, outputs: &[TValue]) {
        if let Some(step) = self.plan.step_of_node[node.id] {
            let leaf = match self.plan.fixed[step] {
                Some(leaf) => leaf,
                None => self
                    .plan
                    .layout
                    .hash_step(&mut self.data, step, node, outputs),
            };
            self.leaves.push(leaf);
        }
    }
}

impl Layout {
    fn new(nodes: &[TypedNode]) -> Layout {
        let mut outlet_base = Vec::with_capacity(nodes.len());
        let mut outlets = 0;
        for node in nodes {
            outlet_base.push(outlets);
            outlets += node.outputs.len();
        }
        let relabels = nodes
            .iter()
            .map(|n| {
                matches!(
                    n.op_as::<AxisOp>(),
                    Some(AxisOp::Add(_) | AxisOp::Rm(_) | AxisOp::Reshape(..))
                ) && n.inputs.len() == 1
                    && n.outputs.len() == 1
            })
            .collect();
        Layout {
            outlet_base,
            outlets,
            relabels,
        }
    }

    /// Hashes one step's outputs into its leaf, recording their data digests
    /// in `data` (a table indexed by outlet).
    fn hash_step(
        &self,
        data: &mut [Option<Digest>],
        step: usize,
        node: &TypedNode,
        outputs: &[TValue],
    ) -> Digest {
        let relabelled = if self.relabels[node.id] {
            node.inputs
                .first()
                .and_then(|o| data[self.outlet_base[o.node] + o.slot])
        } else {
            None
        };
        let mut leaf = LeafHasher::new(step as u64, &node.name, outputs.len());
        let base = self.outlet_base[node.id];
        for (slot, v) in outputs.iter().enumerate() {
            let known = if slot == 0 { relabelled } else { None };
            data[base + slot] = commit(&mut leaf, v, known);
        }
        leaf.finish()
    }
}

/// Adds one output to a leaf; returns its data digest when it is a plain
/// tensor (`known`, when given, is its data digest, already computed).
fn commit(leaf: &mut LeafHasher, v: &Tensor, known: Option<Digest>) -> Option<Digest> {
    let shape: Vec<u64> = v.shape().iter().map(|&d| d as u64).collect();
    match to_dtype(v.datum_type()) {
        Some(dt) if v.is_plain_ram() => {
            let data = known.unwrap_or_else(|| merkle::tensor_data(v.as_bytes()));
            leaf.tensor(dt, &shape, &data);
            Some(data)
        }
        _ => {
            // Engine-internal forms (packed matmul operands, symbolic dims,
            // strings): committed by type and shape; their contents are
            // committed by the steps that consume them.
            let printed = format!("{:?}{:?}", v.datum_type(), v.shape());
            let data = merkle::tensor_data(printed.as_bytes());
            leaf.tensor(DType::U8, &[printed.len() as u64], &data);
            None
        }
    }
}

/// A leaf hashed without shortcuts: every output's bytes (for tests).
#[cfg(test)]
pub(super) fn naive_leaf(step: usize, node: &TypedNode, outputs: &[TValue]) -> Digest {
    let mut leaf = LeafHasher::new(step as u64, &node.name, outputs.len());
    for v in outputs {
        commit(&mut leaf, v, None);
    }
    leaf.finish()
}
