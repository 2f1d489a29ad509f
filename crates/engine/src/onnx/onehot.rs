//! Matrix products of a one-hot encoding, as row lookups.
//!
//! A model that one-hot encodes its input and multiplies the encoding by a
//! weight matrix (magika: 2,048 bytes compared with 257 values, `Equal`
//! then `Cast` to float32, then a dense layer of 64) asks for a product
//! whose left rows are unit vectors: each output row is one row of the
//! weights, with the bias and whatever else tract fused after the product.
//! tract computes it all, 2,048 × 257 × 64 multiply-adds: 0.42 ms of
//! magika's 4.5. [`OneHotMatMul`] stands in for such a product.
//!
//! - On its first run it has tract's own operator compute the output row of
//!   each unit vector and of the zero row (a table), by packing a left
//!   operand made of those rows with tract's own packer. The table's rows
//!   are tract's kernel's bits.
//! - From then on, when every row of the bools the encoding casts holds at
//!   most one `true` (so the encoding's row is a unit vector or zero), it
//!   copies the rows from the table. Any other input goes to tract's
//!   operator. It reads the bools, a quarter of the encoding's bytes.
//! - An output row depends on its left row alone only if the product's
//!   fused operations do not vary by row: products with per-row or
//!   whole-matrix terms are left alone, and the first run compares the
//!   table's answer with tract's on the real input, bit for bit; on any
//!   difference the lookup is off for good.
//!
//! The packed operand still runs as a step, and the trace does not count
//! the lookup as a reader of the bools (`trace::intermediates`), so the
//! trace is the one tract's product gives.

use std::sync::{Arc, OnceLock};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::matmul::optimized::{OptMatMul, ProtoFusedSpec};
use tract_onnx::tract_core::ops::matmul::pack::OptMatMulPack;

/// The output rows of the unit vectors, then of the zero row.
#[derive(Debug)]
struct Table {
    /// The encoding's shape the table was built for.
    shape: TVec<usize>,
    /// Its rows' length (the encoding's width).
    k: usize,
    /// The output's rows' length.
    n: usize,
    /// `(k + 1) × n` values.
    rows: Vec<f32>,
}

/// A product of a float32 one-hot encoding by constants. Its last input is
/// the bools the encoding casts (read directly: a quarter of the bytes);
/// rows are looked up where each row of them holds at most one `true`,
/// and tract's `generic` operator runs otherwise.
#[derive(Debug, Clone)]
pub(super) struct OneHotMatMul {
    generic: OptMatMul,
    pack: OptMatMulPack,
    /// Built on the first run; `None` where the lookup does not apply.
    table: Arc<OnceLock<Option<Table>>>,
}

impl PartialEq for OneHotMatMul {
    fn eq(&self, other: &Self) -> bool {
        self.generic == other.generic && self.pack == other.pack
    }
}

impl Eq for OneHotMatMul {}

impl Op for OneHotMatMul {
    fn name(&self) -> StaticName {
        self.generic.name()
    }

    op_as_typed_op!();
}

impl TypedOp for OneHotMatMul {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.generic.output_facts(&inputs[..inputs.len() - 1])
    }
}

impl EvalOp for OneHotMatMul {
    not_out_of_plan!();

    fn eval(&self, ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let bools = inputs.pop().context("the encoding's bools")?;
        if let Some(table) = self.table.get() {
            return match table.as_ref().and_then(|t| t.lookup(&bools)) {
                Some(out) => Ok(tvec!(out.into_tvalue())),
                None => self.generic.eval(ctx, inputs),
            };
        }
        // First run: tract's answer, and the table if it gives that answer.
        let want = self.generic.eval(ctx, inputs.clone())?;
        let table = self.build(ctx, &bools, &inputs).ok().flatten().filter(|t| {
            t.lookup(&bools)
                .is_some_and(|got| same_bits(&got, &want[0]))
        });
        let _ = self.table.set(table);
        Ok(want)
    }

    fn drop_session(&self, session: SessionId, node_id: usize) {
        self.generic.drop_session(session, node_id)
    }
}

impl OneHotMatMul {
    /// Runs tract's packer and product on the unit vectors and the zero
    /// row, laid out as the encoding of `bools` is. `None` where that
    /// cannot be done: a batch of more than one matrix, fewer rows than the
    /// encoding is wide plus one, or an output that is not float32 rows by
    /// columns.
    fn build(
        &self,
        ctx: &EvalContext,
        bools: &Tensor,
        inputs: &TVec<TValue>,
    ) -> TractResult<Option<Table>> {
        let shape: TVec<usize> = bools.shape().into();
        let rank = shape.len();
        if rank < 2
            || shape[..rank - 2].iter().any(|&d| d != 1)
            || self.generic.c_m_axis != Some(rank - 2)
            || self.generic.c_n_axis != Some(rank - 1)
            || self.generic.c_fact.datum_type != f32::datum_type()
        {
            return Ok(None);
        }
        let (m, k) = (shape[rank - 2], shape[rank - 1]);
        if m < k + 1 {
            return Ok(None);
        }
        let mut units = vec![0f32; m * k];
        for r in 0..k {
            units[r * k + r] = 1.0;
        }
        let units = Tensor::from_shape(&shape, &units)?;
        let packed = self.pack.eval(ctx, tvec!(units.into_tvalue()))?;
        let mut args = inputs.clone();
        args[0] = packed.into_iter().next().context("a packed operand")?;
        let out = self.generic.eval(ctx, args)?.remove(0);
        let out_shape = out.shape();
        if out_shape.len() != rank || out_shape[rank - 2] != m {
            return Ok(None);
        }
        let n = out_shape[rank - 1];
        let plain = out.try_as_plain_ram()?;
        let rows = plain.as_slice::<f32>()?[..(k + 1) * n].to_vec();
        Ok(Some(Table { shape, k, n, rows }))
    }
}

impl Table {
    /// The output for the encoding of `bools` from the table, or `None`
    /// unless each of its rows holds at most one `true` (the cast of such a
    /// row is a unit vector or zero).
    fn lookup(&self, bools: &Tensor) -> Option<Tensor> {
        if bools.datum_type() != bool::datum_type()
            || bools.shape() != &*self.shape
            || !bools.is_plain_ram()
            || !super::elementwise::laid_out_naturally(bools)
        {
            return None;
        }
        let plain = bools.try_as_plain_ram().ok()?;
        let values = plain.as_slice::<bool>().ok()?;
        let rows = values.len() / self.k.max(1);
        let mut shape = self.shape.clone();
        *shape.last_mut()? = self.n;
        let mut out = Tensor::zero::<f32>(&shape).ok()?;
        let mut out_view = out.try_as_plain_ram_mut().ok()?;
        let dst = out_view.as_slice_mut::<f32>().ok()?;
        if dst.len() != rows * self.n {
            return None;
        }
        for (row, dst) in values
            .chunks_exact(self.k)
            .zip(dst.chunks_exact_mut(self.n))
        {
            // Blocks of `false` are skipped whole (an OR of 32 lanes).
            let (blocks, tail) = row.as_chunks::<32>();
            let mut hot = None;
            let mut find = |at: usize, values: &[bool]| -> Option<()> {
                for (i, &v) in values.iter().enumerate() {
                    if v {
                        if hot.is_some() {
                            return None;
                        }
                        hot = Some(at + i);
                    }
                }
                Some(())
            };
            for (b, block) in blocks.iter().enumerate() {
                if block.iter().fold(false, |acc, &v| acc | v) {
                    find(b * 32, block)?;
                }
            }
            find(blocks.len() * 32, tail)?;
            let hot = hot.unwrap_or(self.k);
            dst.copy_from_slice(&self.rows[hot * self.n..(hot + 1) * self.n]);
        }
        Some(out)
    }
}

/// Whether two float32 tensors have the same shape and bits.
fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    let bits = |t: &Tensor| -> Option<Vec<u32>> {
        let plain = t.try_as_plain_ram().ok()?;
        Some(
            plain
                .as_slice::<f32>()
                .ok()?
                .iter()
                .map(|v| v.to_bits())
                .collect(),
        )
    };
    let (x, y) = (bits(a), bits(b));
    a.shape() == b.shape() && x.is_some() && x == y
}

/// Whether tract's fused operations after the product treat every row
/// alike: no per-row term, no matrix added, no quantization products.
fn rows_alike(op: &OptMatMul) -> bool {
    op.micro_ops.iter().all(|spec| {
        matches!(
            spec,
            ProtoFusedSpec::AddMatMul { .. }
                | ProtoFusedSpec::BinScalar(..)
                | ProtoFusedSpec::BinPerCol(..)
                | ProtoFusedSpec::LeakyRelu(..)
                | ProtoFusedSpec::Scaler(..)
                | ProtoFusedSpec::Store(..)
        )
    })
}

/// Replaces each float32 product whose left operand packs a cast of bools
/// (a one-hot encoding) and whose other inputs are constants by a
/// [`OneHotMatMul`], which also reads the bools. Returns how many.
pub(super) fn speed_up(model: &mut TypedModel) -> TractResult<usize> {
    super::swap_ops_wired(model, |model, node| {
        let Some(generic) = node.op_as::<OptMatMul>() else {
            return Ok(None);
        };
        if !rows_alike(generic) || node.inputs.is_empty() {
            return Ok(None);
        }
        let packer = model.node(node.inputs[0].node);
        let Some(pack) = packer.op_as::<OptMatMulPack>() else {
            return Ok(None);
        };
        let Some(&encoded) = packer.inputs.first() else {
            return Ok(None);
        };
        let cast = model.node(encoded.node);
        let one_hot = cast
            .op_as::<Cast>()
            .is_some_and(|c| c.to == f32::datum_type())
            && cast.inputs.len() == 1
            && model.outlet_fact(cast.inputs[0])?.datum_type == bool::datum_type()
            && model.outlet_fact(encoded)?.shape.as_concrete().is_some();
        let constants = node.inputs[1..]
            .iter()
            .map(|i| model.outlet_fact(*i).map(|f| f.konst.is_some()))
            .collect::<TractResult<Vec<bool>>>()?;
        if !one_hot || !constants.iter().all(|&c| c) {
            return Ok(None);
        }
        let op = OneHotMatMul {
            generic: generic.clone(),
            pack: pack.clone(),
            table: Arc::new(OnceLock::new()),
        };
        let mut inputs = node.inputs.to_vec();
        inputs.push(cast.inputs[0]);
        Ok(Some((op, inputs)))
    })
}

#[cfg(test)]
impl OneHotMatMul {
    /// Whether rows are looked up (the first run built a table that gave
    /// tract's answer).
    pub(super) fn in_force(&self) -> bool {
        self.table.get().is_some_and(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::einsum::EinSum;
    use tract_onnx::tract_core::ops::math;

    const M: usize = 300;
    const K: usize = 257;
    const N: usize = 8;

    /// bools [1, M, K] -> f32 -> · W [K, N] + bias [N], optimized by tract;
    /// with the lookup swapped in when `lookups`.
    fn plan(lookups: bool) -> (Arc<TypedSimplePlan>, usize) {
        let mut model = TypedModel::default();
        let x = model.add_source("x", bool::fact([1, M, K])).unwrap();
        let cast = model
            .wire_node("cast", Cast::new(f32::datum_type()), &[x])
            .unwrap();
        // Weights with both zeros, tiny, huge and negative values.
        let special = [
            -0.0f32,
            0.0,
            f32::MIN_POSITIVE / 8.0,
            -3.0e38,
            7.25,
            -1.0e-3,
        ];
        let w: Vec<f32> = (0..K * N)
            .map(|i| {
                if i % 7 == 0 {
                    special[i / 7 % special.len()]
                } else {
                    ((i * 2654435761) % 1000) as f32 / 250.0 - 2.0
                }
            })
            .collect();
        let w = model
            .add_const("w", Tensor::from_shape(&[K, N], &w).unwrap())
            .unwrap();
        let bias: Vec<f32> = (0..N)
            .map(|j| if j == 0 { -0.0 } else { j as f32 * 0.3 - 1.0 })
            .collect();
        let bias = model
            .add_const("bias", Tensor::from_shape(&[1, 1, N], &bias).unwrap())
            .unwrap();
        let y = model
            .wire_node(
                "dense",
                EinSum::new("bmk,kn->bmn".parse().unwrap(), f32::datum_type()),
                &[cast[0], w],
            )
            .unwrap();
        let z = model
            .wire_node(
                "bias_add",
                TypedBinOp(Box::new(math::Add), None),
                &[y[0], bias],
            )
            .unwrap();
        model.select_output_outlets(&z).unwrap();
        let mut model = super::super::optimized(model).unwrap();
        let replaced = if lookups {
            speed_up(&mut model).unwrap()
        } else {
            0
        };
        (SimplePlan::new(model).unwrap(), replaced)
    }

    /// Rows of bools with a `true` at each index `hot` gives (none where
    /// it gives an index beyond the row).
    fn rows(hot: impl Fn(usize) -> Vec<usize>) -> Tensor {
        let mut v = vec![false; M * K];
        for r in 0..M {
            for h in hot(r) {
                if h < K {
                    v[r * K + h] = true;
                }
            }
        }
        Tensor::from_shape(&[1, M, K], &v).unwrap()
    }

    fn bits(t: &TValue) -> Vec<u32> {
        let plain = t.try_as_plain_ram().unwrap();
        plain
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    fn lookup_in_force(plan: &Arc<TypedSimplePlan>) -> bool {
        plan.model()
            .nodes
            .iter()
            .filter_map(|n| n.op_as::<OneHotMatMul>())
            .all(OneHotMatMul::in_force)
    }

    #[test]
    fn looked_up_rows_are_tracts_bits_and_other_inputs_go_to_tract() {
        let (fast, replaced) = plan(true);
        let (slow, _) = plan(false);
        assert_eq!(
            replaced, 1,
            "the product of the one-hot encoding is swapped"
        );
        let one_hot = rows(|r| vec![(r * 37) % (K + 20)]);
        let two_hot = rows(|r| vec![r % K, (r + 1) % K]);
        let zeros = rows(|_| vec![]);
        for (what, input) in [
            ("one-hot rows, some zero", &one_hot),
            ("one-hot again", &one_hot),
            ("two per row", &two_hot),
            ("zero rows", &zeros),
            ("one-hot after the others", &one_hot),
        ] {
            let got = fast.run(tvec!(input.clone().into_tvalue())).unwrap();
            let want = slow.run(tvec!(input.clone().into_tvalue())).unwrap();
            assert_eq!(got[0].shape(), want[0].shape(), "{what}");
            assert_eq!(bits(&got[0]), bits(&want[0]), "{what}");
            assert!(lookup_in_force(&fast), "{what}: rows are looked up");
        }
    }
}
