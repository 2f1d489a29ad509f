//! Which plan nodes are trace steps, and how each step's leaf is hashed.
//!
//! Every node of the optimized plan is a step, except constants and the
//! intermediates of fused operators: a value that only feeds elementwise
//! arithmetic, a transpose, a reduction or a softmax (GELU's five
//! operations, a bias and a residual add, a layer norm, attention's
//! softmax) is committed by the step that reads it, as if the chain were
//! one fused operator ([`intermediates`]). A fault inside a chain changes
//! the chain's committed output, and a referee recomputes from the
//! request's inputs, so a dispute still pins it, to the chain. On MiniLM
//! this hashes 28 MB per 8 × 35-token batch instead of 126 MB. Two more
//! things keep the commitment cheap without weakening it:
//!
//! - **Fixed steps.** A step whose outputs depend on the model alone
//!   ([`super::fixed`]) and that was not folded into a constant (it would
//!   take too much memory) has its leaf computed once, at load time.
//! - **Relabels.** A step that only changes its input's shape (`AxisOp`
//!   add, remove or reshape) has the same row-major element bytes as its
//!   input, so it reuses the input's data digest instead of hashing again.
//!   And a step whose one reader is such a relabel is hashed through the
//!   relabel's output: were its value held for hashing, tract's reshape
//!   would deep-copy it (on MiniLM the layer norm, GELU and attention
//!   outputs all go through a reshape on their way to a matrix product).
//!
//! Leaves commit to each output's data digest ([`merkle::tensor_data`]), so
//! these shortcuts produce exactly the leaves full hashing would.
//!
//! **Off the critical path.** A tract value is an `Arc<Tensor>`, so a large
//! output is handed (not copied) to a hashing thread while the plan runs on;
//! the leaves are assembled in step order when the run ends. On a machine
//! with a spare core the trace then costs little more than the hashing of
//! the last outputs.

use std::sync::{OnceLock, mpsc};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::{OptBinByScalar, OptBinChain, OptBinUnicast, TypedBinOp};
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::logic::Iff;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm, Softmax};
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
    known: Vec<Option<Data>>,
    /// Plan node id -> node name (for leaves assembled after the run).
    names: Vec<String>,
    /// Plan node id -> whether its one output is hashed through its one
    /// reader, a relabelling step (same bytes): holding the value for the
    /// hashing thread would make the relabel deep-copy it.
    defers: Vec<bool>,
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

/// Outputs at least this large are hashed on the hashing thread; smaller
/// ones cost less to hash than to hand over.
const OFFLOAD_MIN_BYTES: usize = 32 << 10;

/// A tensor's data digest: known, being computed on the hashing thread,
/// or to be computed from the relabelling step that reads it.
#[derive(Clone, Copy, Debug)]
enum Data {
    Ready(Digest),
    Pending(usize),
    Deferred(usize),
}

/// One output of a step, as its leaf will commit to it.
struct Output {
    dtype: DType,
    shape: Vec<u64>,
    data: Data,
}

/// A step's leaf: computed (fixed steps), or waiting for its outputs'
/// data digests.
enum Entry {
    Leaf(Digest),
    Open {
        step: usize,
        node: usize,
        outputs: Vec<Output>,
    },
}

/// A tensor to hash, the ticket it answers, and where to send the result.
type Job = (TValue, usize, mpsc::Sender<(usize, Digest)>);

/// The hashing thread's queue, started on first use.
fn hasher() -> &'static mpsc::Sender<Job> {
    static HASHER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    HASHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("vouch-trace-hash".into())
            .spawn(move || {
                for (value, ticket, reply) in rx {
                    let _ = reply.send((ticket, merkle::tensor_data(value.as_bytes())));
                }
            })
            .expect("starting the trace hashing thread");
        tx
    })
}

/// Per-run state: the data digests of the outputs produced so far and the
/// leaves waiting for them.
pub(super) struct TraceRun<'a> {
    plan: &'a TracePlan,
    data: Vec<Option<Data>>,
    entries: Vec<Entry>,
    /// Tickets issued, and how many of them went to the hashing thread.
    tickets: usize,
    sent: usize,
    /// Digests of tickets hashed here (the hashing thread was gone).
    local: Vec<(usize, Digest)>,
    /// Where the hashing thread sends this run's digests, and where they
    /// arrive.
    sender: mpsc::Sender<(usize, Digest)>,
    results: mpsc::Receiver<(usize, Digest)>,
}

impl TracePlan {
    /// Lays out the trace of `plan`, evaluating its fixed steps once.
    pub(super) fn new(plan: &TypedSimplePlan) -> TracePlan {
        let graph = plan.model();
        let nodes = graph.nodes();
        let layout = Layout::new(nodes);
        let mut known = vec![None; layout.outlets];
        let (mut steps, mut step_of_node, mut fixed) = (vec![], vec![None; nodes.len()], vec![]);
        let intermediate = intermediates(graph, plan.order_without_consts(), &layout);
        super::fixed::walk(graph, plan.order_without_consts(), |node, outputs| {
            if intermediate[node.id] {
                return;
            }
            let step = steps.len();
            step_of_node[node.id] = Some(step);
            steps.push(node.name.clone());
            fixed.push(outputs.map(|outputs| {
                let outputs = layout.outputs(&mut known, node, outputs, &mut |v| {
                    Data::Ready(merkle::tensor_data(v.as_bytes()))
                });
                leaf(step, &node.name, &outputs, &[])
            }));
        });
        let defers = nodes
            .iter()
            .map(|n| {
                let is_open_step =
                    |id: usize| step_of_node[id].is_some_and(|step: usize| fixed[step].is_none());
                match n.outputs.as_slice() {
                    [o] => {
                        is_open_step(n.id)
                            && !graph.outputs.contains(&OutletId::new(n.id, 0))
                            && matches!(o.successors.as_slice(),
                                [r] if layout.relabels[r.node] && is_open_step(r.node))
                    }
                    _ => false,
                }
            })
            .collect();
        TracePlan {
            steps,
            step_of_node,
            fixed,
            known,
            names: nodes.iter().map(|n| n.name.clone()).collect(),
            defers,
            layout,
        }
    }

    /// The trace step of plan node `node`, if it is one.
    pub(super) fn step_of(&self, node: usize) -> Option<usize> {
        self.step_of_node.get(node).copied().flatten()
    }

    /// Whether plan node `node` only relabels its input (its leaf reuses
    /// the input's data digest).
    pub(super) fn relabels(&self, node: usize) -> bool {
        self.layout.relabels.get(node).copied().unwrap_or(false)
    }

    /// The number of steps hashed through the relabel reading them (for
    /// tests).
    #[cfg(test)]
    pub(super) fn deferred_steps(&self) -> usize {
        self.defers.iter().filter(|&&d| d).count()
    }

    /// The number of fixed steps (for logs and tests).
    pub(super) fn fixed_steps(&self) -> usize {
        self.fixed.iter().filter(|f| f.is_some()).count()
    }

    /// Starts a traced run.
    pub(super) fn start(&self) -> TraceRun<'_> {
        let (sender, results) = mpsc::channel();
        TraceRun {
            plan: self,
            data: self.known.clone(),
            entries: Vec::with_capacity(self.steps.len()),
            tickets: 0,
            sent: 0,
            local: Vec::new(),
            sender,
            results,
        }
    }
}

impl TraceRun<'_> {
    /// Records the outputs of plan node `node` if it is a trace step.
    pub(super) fn record(&mut self, node: &TypedNode, outputs: &[TValue]) {
        let Some(step) = self.plan.step_of_node[node.id] else {
            return;
        };
        if let Some(leaf) = self.plan.fixed[step] {
            self.entries.push(Entry::Leaf(leaf));
            return;
        }
        let defers = self.plan.defers[node.id];
        let mut handed = Vec::new();
        let tickets = &mut self.tickets;
        let described =
            self.plan
                .layout
                .outputs(&mut self.data, node, outputs, &mut |v: &TValue| {
                    if v.len() * v.datum_type().size_of() < OFFLOAD_MIN_BYTES {
                        return Data::Ready(merkle::tensor_data(v.as_bytes()));
                    }
                    let ticket = *tickets;
                    *tickets += 1;
                    if defers {
                        return Data::Deferred(ticket);
                    }
                    handed.push((v.clone(), ticket));
                    Data::Pending(ticket)
                });
        // A relabel whose input's hashing was deferred to it hashes its own
        // output (the same bytes) under that ticket, unless it defers too.
        let base = self.plan.layout.outlet_base[node.id];
        if let (true, false, Some(Some(Data::Deferred(ticket))), Some(v)) = (
            self.plan.layout.relabels[node.id],
            defers,
            self.data.get(base),
            outputs.first(),
        ) {
            handed.push((v.clone(), *ticket));
            self.data[base] = Some(Data::Pending(*ticket));
        }
        for (v, ticket) in handed {
            self.hash(v, ticket);
        }
        self.entries.push(Entry::Open {
            step,
            node: node.id,
            outputs: described,
        });
    }

    /// Hands `v` to the hashing thread under `ticket` (or hashes it here
    /// when that thread is gone).
    fn hash(&mut self, v: TValue, ticket: usize) {
        match hasher().send((v, ticket, self.sender.clone())) {
            Ok(()) => self.sent += 1,
            Err(mpsc::SendError((v, ..))) => {
                self.local.push((ticket, merkle::tensor_data(v.as_bytes())))
            }
        }
    }

    /// Waits for the hashing thread and returns the leaves in step order.
    pub(super) fn finish(self) -> Vec<Digest> {
        let mut digests = vec![None; self.tickets];
        for (ticket, digest) in self.local {
            digests[ticket] = Some(digest);
        }
        for _ in 0..self.sent {
            let (ticket, digest) = self
                .results
                .recv()
                .expect("the hashing thread answers every ticket");
            digests[ticket] = Some(digest);
        }
        let digests: Vec<Digest> = digests
            .into_iter()
            .map(|d| d.expect("every ticket is hashed: a deferred value by the relabel reading it"))
            .collect();
        self.entries
            .into_iter()
            .map(|e| match e {
                Entry::Leaf(leaf) => leaf,
                Entry::Open {
                    step,
                    node,
                    outputs,
                } => leaf(step, &self.plan.names[node], &outputs, &digests),
            })
            .collect()
    }
}

/// Which plan nodes' values are intermediates of fused operators, and so
/// not steps of their own: a node's one output is not a model output, and
/// every reader only rearranges, maps or normalizes it:
///
/// - an elementwise node that produces as many elements (it does not
///   broadcast this value up): GELU's five operations, a bias or residual
///   add;
/// - a permutation of its axes (a transpose): the heads of attention;
/// - a reduction or a softmax: the statistics of a layer norm, attention
///   weights;
/// - a relabel whose own value is an intermediate;
/// - a one-hot lookup, as its copy of the bools an encoding casts (the
///   cast, also a reader, stands for it; [`super::onehot`]).
///
/// The steps that read it commit to it, as if the chain were one fused
/// operator (ONNX's own `LayerNormalization`, `Gelu`, `Softmax`), so the
/// trace commits to what each matrix product, gather or concatenation
/// reads and to what the model returns. A fault in an intermediate that
/// changes anything committed shows at the first step downstream, and a
/// referee recomputes that step from the request's inputs. Not holding such
/// a value for hashing also lets its reader overwrite it in place.
fn intermediates(graph: &TypedModel, order: &[usize], layout: &Layout) -> Vec<bool> {
    let mut flags = vec![false; graph.nodes().len()];
    for &n in order.iter().rev() {
        let node = graph.node(n);
        let [output] = node.outputs.as_slice() else {
            continue;
        };
        let volume = output.fact.shape.volume();
        flags[n] = !output.successors.is_empty()
            && !graph.outputs.contains(&OutletId::new(n, 0))
            && output.successors.iter().all(|inlet| {
                let reader = graph.node(inlet.node);
                // A one-hot lookup's own copy of the bools its encoding
                // casts: the cast and the packed product read them too.
                (reader.op_is::<super::onehot::OneHotMatMul>()
                    && inlet.slot + 1 == reader.inputs.len())
                    || (layout.relabels[reader.id] && flags[reader.id])
                    || is_permutation(reader)
                    || is_normalization(reader)
                    || (is_elementwise(reader)
                        && reader
                            .outputs
                            .first()
                            .is_some_and(|o| o.fact.shape.volume() == volume))
            });
    }
    flags
}

/// Ops whose every output element depends only on the inputs' elements at
/// the same position (after broadcasting).
fn is_elementwise(node: &TypedNode) -> bool {
    node.outputs.len() == 1
        && (node.op_is::<super::elementwise::FastBin>()
            || node.op_is::<super::elementwise::FastCmp>()
            || node.op_is::<ElementWiseOp>()
            || node.op_is::<TypedBinOp>()
            || node.op_is::<OptBinByScalar>()
            || node.op_is::<OptBinUnicast>()
            || node.op_is::<OptBinChain>()
            || node.op_is::<Iff>()
            || node.op_is::<Cast>())
}

/// A transpose: one input, its elements in another order.
fn is_permutation(node: &TypedNode) -> bool {
    matches!(node.op_as::<AxisOp>(), Some(AxisOp::Move(..)))
        && node.inputs.len() == 1
        && node.outputs.len() == 1
}

/// A sum, mean, maximum, softmax or RMS normalization over some axes (one
/// output).
fn is_normalization(node: &TypedNode) -> bool {
    node.outputs.len() == 1
        && node.inputs.len() == 1
        && (node.op_as::<Reduce>().is_some_and(|r| {
            matches!(
                r.reducer,
                Reducer::Sum | Reducer::MeanOfSquares | Reducer::Max | Reducer::Min
            )
        }) || node.op_is::<Softmax>()
            || node.op_is::<RmsNorm>())
}

/// Hashes a leaf once its outputs' data digests are known.
fn leaf(step: usize, name: &str, outputs: &[Output], pending: &[Digest]) -> Digest {
    let mut leaf = LeafHasher::new(step as u64, name, outputs.len());
    for o in outputs {
        let data = match o.data {
            Data::Ready(d) => d,
            Data::Pending(ticket) | Data::Deferred(ticket) => pending[ticket],
        };
        leaf.tensor(o.dtype, &o.shape, &data);
    }
    leaf.finish()
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

    /// What one step's leaf commits to for each output, recording their
    /// data digests in `data` (a table indexed by outlet). `hash` computes
    /// (or starts computing) a plain tensor's data digest; a relabelling
    /// step reuses its input's instead.
    fn outputs(
        &self,
        data: &mut [Option<Data>],
        node: &TypedNode,
        outputs: &[TValue],
        hash: &mut dyn FnMut(&TValue) -> Data,
    ) -> Vec<Output> {
        let relabelled = if self.relabels[node.id] {
            node.inputs
                .first()
                .and_then(|o| data[self.outlet_base[o.node] + o.slot])
        } else {
            None
        };
        let base = self.outlet_base[node.id];
        outputs
            .iter()
            .enumerate()
            .map(|(slot, v)| {
                let known = if slot == 0 { relabelled } else { None };
                let (output, digest) = describe(v, known, hash);
                data[base + slot] = digest;
                output
            })
            .collect()
    }
}

/// What a leaf commits to for one output, and its data digest when it is a
/// plain tensor (`known`, when given, is that digest, already computed).
fn describe(
    v: &TValue,
    known: Option<Data>,
    hash: &mut dyn FnMut(&TValue) -> Data,
) -> (Output, Option<Data>) {
    match to_dtype(v.datum_type()) {
        Some(dtype) if v.is_plain_ram() => {
            let data = known.unwrap_or_else(|| hash(v));
            let shape = v.shape().iter().map(|&d| d as u64).collect();
            (Output { dtype, shape, data }, Some(data))
        }
        _ => {
            // Engine-internal forms (packed matmul operands, symbolic dims,
            // strings): committed by type and shape; their contents are
            // committed by the steps that consume them.
            let printed = format!("{:?}{:?}", v.datum_type(), v.shape());
            let output = Output {
                dtype: DType::U8,
                shape: vec![printed.len() as u64],
                data: Data::Ready(merkle::tensor_data(printed.as_bytes())),
            };
            (output, None)
        }
    }
}

/// A leaf hashed without shortcuts: every output's bytes (for tests).
#[cfg(test)]
pub(super) fn naive_leaf(step: usize, node: &TypedNode, outputs: &[TValue]) -> Digest {
    let outputs: Vec<Output> = outputs
        .iter()
        .map(|v| {
            describe(v, None, &mut |v| {
                Data::Ready(merkle::tensor_data(v.as_bytes()))
            })
            .0
        })
        .collect();
    leaf(step, &node.name, &outputs, &[])
}
