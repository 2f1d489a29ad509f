//! Float32 `Add`, `Sub`, `Mul` and `Div`, and comparisons, that tract
//! leaves generic.
//!
//! tract replaces a broadcasting binary operator by a vectorised kernel
//! only when it can prove, at load time, that the broadcast blocks are
//! long enough. With symbolic input shapes it cannot (it does not reason
//! about products of symbols such as `batch × sequence`), so in a
//! transformer every `x * 0.5`, `x + 1` and `scores + mask` ran through the
//! generic broadcasting path: 30 % of MiniLM's run time. [`speed_up`]
//! swaps those nodes for [`FastBin`], which decides at run time, on the
//! concrete shapes, and computes each element with the same single IEEE
//! operation, so outputs are bit-identical.
//!
//! Comparisons (`Eq`, `NE`, `LT`, `GT`, `LTE`, `GTE`) always run through
//! tract's generic path, an ndarray zip over the broadcast shape: magika's
//! one-hot encoding (2,048 bytes against 257 values) took 0.19 ms there.
//! [`FastCmp`] compares row by row with the same Rust operator.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;

/// The arithmetic of a [`FastBin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

impl Arith {
    fn of(op: &TypedBinOp) -> Option<Arith> {
        Some(match op.0.name() {
            "Add" => Arith::Add,
            "Sub" => Arith::Sub,
            "Mul" => Arith::Mul,
            "Div" => Arith::Div,
            _ => return None,
        })
    }
}

/// A float32 elementwise binary operator with numpy broadcasting, run
/// block by block over the output with the innermost contiguous run
/// vectorised. Inputs that are not laid out in natural order go to the
/// tract operator it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FastBin {
    arith: Arith,
    generic: TypedBinOp,
}

super::stands_in_for_generic!(FastBin);

impl EvalOp for FastBin {
    op_out_of_plan!();

    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        if inputs.len() != 2 || !inputs.iter().all(|t| natural_f32(t)) {
            return self.generic.eval(ctx, inputs);
        }
        let (a, b) = args_2!(inputs);
        let Some(out_shape) = broadcast(a.shape(), b.shape()) else {
            return self.generic.eval(ctx, tvec!(a, b));
        };
        let out = match self.arith {
            Arith::Add => apply(a, b, &out_shape, |x, y| x + y),
            Arith::Sub => apply(a, b, &out_shape, |x, y| x - y),
            Arith::Mul => apply(a, b, &out_shape, |x, y| x * y),
            Arith::Div => apply(a, b, &out_shape, |x, y| x / y),
        }?;
        Ok(tvec!(out.into_tvalue()))
    }
}

/// Replaces every float32 `Add`, `Sub`, `Mul` and `Div` still generic
/// after optimisation by a [`FastBin`], keeping node names (the trace
/// names steps by them). Returns how many it replaced.
pub(super) fn speed_up(model: &mut TypedModel) -> TractResult<usize> {
    super::swap_ops(model, |model, node| {
        let Some(generic) = node.op_as::<TypedBinOp>() else {
            return Ok(None);
        };
        let Some(arith) = Arith::of(generic) else {
            return Ok(None);
        };
        let facts = model.node_input_facts(node.id)?;
        let f32_only = facts.len() == 2
            && facts.iter().all(|f| f.datum_type == f32::datum_type())
            && node.outputs[0].fact.datum_type == f32::datum_type();
        Ok(f32_only.then(|| FastBin {
            arith,
            generic: generic.clone(),
        }))
    })
}

/// The comparison of a [`FastCmp`]: the operator tract's own uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Gt,
    Lte,
    Gte,
}

impl Cmp {
    fn of(op: &TypedBinOp) -> Option<Cmp> {
        Some(match op.0.name() {
            "Eq" => Cmp::Eq,
            "NE" => Cmp::Ne,
            "LT" => Cmp::Lt,
            "GT" => Cmp::Gt,
            "LTE" => Cmp::Lte,
            "GTE" => Cmp::Gte,
            _ => return None,
        })
    }
}

/// A comparison of two tensors of one numeric type with numpy
/// broadcasting, giving bools: the innermost axis as a loop over slices,
/// the others as an odometer. Other types (symbolic dimensions among them)
/// and inputs not laid out in natural order go to the tract operator it
/// replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FastCmp {
    cmp: Cmp,
    generic: TypedBinOp,
}

super::stands_in_for_generic!(FastCmp);

impl EvalOp for FastCmp {
    op_out_of_plan!();

    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let natural = |t: &TValue| t.is_plain_ram() && laid_out_naturally(t);
        if inputs.len() != 2
            || inputs[0].datum_type() != inputs[1].datum_type()
            || !inputs.iter().all(natural)
        {
            return self.generic.eval(ctx, inputs);
        }
        let Some(shape) = broadcast(inputs[0].shape(), inputs[1].shape()) else {
            return self.generic.eval(ctx, inputs);
        };
        let (a, b) = (&inputs[0], &inputs[1]);
        let out = match a.datum_type() {
            DatumType::F32 => compare::<f32>(self.cmp, a, b, &shape)?,
            DatumType::I32 => compare::<i32>(self.cmp, a, b, &shape)?,
            DatumType::I64 => compare::<i64>(self.cmp, a, b, &shape)?,
            DatumType::U8 => compare::<u8>(self.cmp, a, b, &shape)?,
            DatumType::I8 => compare::<i8>(self.cmp, a, b, &shape)?,
            _ => return self.generic.eval(ctx, inputs),
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

/// `cmp` over `a` and `b` broadcast to `out_shape`.
fn compare<T: Datum + PartialOrd + Copy>(
    cmp: Cmp,
    a: &Tensor,
    b: &Tensor,
    out_shape: &[usize],
) -> TractResult<Tensor> {
    match cmp {
        Cmp::Eq => compare_with::<T>(a, b, out_shape, |x, y| x == y),
        Cmp::Ne => compare_with::<T>(a, b, out_shape, |x, y| x != y),
        Cmp::Lt => compare_with::<T>(a, b, out_shape, |x, y| x < y),
        Cmp::Gt => compare_with::<T>(a, b, out_shape, |x, y| x > y),
        Cmp::Lte => compare_with::<T>(a, b, out_shape, |x, y| x <= y),
        Cmp::Gte => compare_with::<T>(a, b, out_shape, |x, y| x >= y),
    }
}

fn compare_with<T: Datum + Copy>(
    a: &Tensor,
    b: &Tensor,
    out_shape: &[usize],
    f: impl Fn(T, T) -> bool + Copy,
) -> TractResult<Tensor> {
    let mut out = Tensor::zero_dt(bool::datum_type(), out_shape)?;
    let Some((&row, outer)) = out_shape.split_last() else {
        // Rank 0: one value each.
        let (x, y) = (a.try_as_plain_ram()?, b.try_as_plain_ram()?);
        let v = f(x.as_slice::<T>()?[0], y.as_slice::<T>()?[0]);
        out.try_as_plain_ram_mut()?.as_slice_mut::<bool>()?[0] = v;
        return Ok(out);
    };
    let a_strides = strides_over(a.shape(), out_shape);
    let b_strides = strides_over(b.shape(), out_shape);
    let (a_view, b_view) = (a.try_as_plain_ram()?, b.try_as_plain_ram()?);
    let (x, y) = (a_view.as_slice::<T>()?, b_view.as_slice::<T>()?);
    let (a_step, b_step) = (a_strides[outer.len()], b_strides[outer.len()]);
    let mut out_view = out.try_as_plain_ram_mut()?;
    let dst = out_view.as_slice_mut::<bool>()?;
    let mut index: TVec<usize> = tvec![0; outer.len()];
    let (mut at_a, mut at_b) = (0usize, 0usize);
    for start in (0..dst.len()).step_by(row.max(1)) {
        let d = &mut dst[start..start + row];
        match (a_step, b_step) {
            (0, 0) => d.fill(f(x[at_a], y[at_b])),
            (0, _) => {
                (d.iter_mut().zip(&y[at_b..at_b + row])).for_each(|(d, &y)| *d = f(x[at_a], y))
            }
            (_, 0) => {
                (d.iter_mut().zip(&x[at_a..at_a + row])).for_each(|(d, &x)| *d = f(x, y[at_b]))
            }
            _ => (d
                .iter_mut()
                .zip(x[at_a..at_a + row].iter().zip(&y[at_b..at_b + row])))
            .for_each(|(d, (&x, &y))| *d = f(x, y)),
        }
        advance(
            &mut index,
            outer,
            (&a_strides, &b_strides),
            (&mut at_a, &mut at_b),
        );
    }
    Ok(out)
}

/// Replaces every comparison still generic after optimisation by a
/// [`FastCmp`], keeping node names. Returns how many it replaced.
pub(super) fn speed_up_comparisons(model: &mut TypedModel) -> TractResult<usize> {
    super::swap_ops(model, |_, node| {
        Ok(node.op_as::<TypedBinOp>().and_then(|generic| {
            Cmp::of(generic).map(|cmp| FastCmp {
                cmp,
                generic: generic.clone(),
            })
        }))
    })
}

/// float32 in ordinary memory, row-major with no gaps.
fn natural_f32(t: &Tensor) -> bool {
    t.datum_type() == f32::datum_type() && t.is_plain_ram() && laid_out_naturally(t)
}

/// Row-major with no gaps, ignoring the strides of axes of length 1 (never
/// stepped over).
pub(super) fn laid_out_naturally(t: &Tensor) -> bool {
    let natural = Tensor::natural_strides(t.shape());
    t.len() == t.shape().iter().product::<usize>()
        && t.shape().len() == t.strides().len()
        && (t.shape().iter().zip(t.strides()).zip(&natural)).all(|((&d, s), n)| d == 1 || s == n)
}

/// Resets the strides of length-1 axes to the natural ones in outputs
/// nothing else holds yet. tract's `AddAxis` keeps the next axis's stride
/// on the axis it inserts; its vectorised binary operators then see
/// "non-natural" strides and take their generic path (10× slower on
/// MiniLM's layer norms). Data and shape are unchanged.
pub(super) fn natural_strides(values: &mut TVec<TValue>) {
    let odd = |t: &TValue| {
        t.is_exclusive()
            && t.strides() != &*Tensor::natural_strides(t.shape())
            && laid_out_naturally(t)
    };
    if !values.iter().any(odd) {
        return;
    }
    *values = values
        .drain(..)
        .map(|v| {
            if !odd(&v) {
                return v;
            }
            let shape: TVec<usize> = v.shape().into();
            let mut t = v.into_tensor();
            // Setting a shape recomputes natural strides, but only when it
            // changes: go through the flat shape.
            let flat = [t.len()];
            match t.set_shape(&flat).and_then(|()| t.set_shape(&shape)) {
                Ok(()) => t.into_tvalue(),
                Err(_) => t.into_tvalue(),
            }
        })
        .collect();
}

/// numpy broadcasting of two shapes of the same rank.
fn broadcast(a: &[usize], b: &[usize]) -> Option<TVec<usize>> {
    if a.len() != b.len() {
        return None;
    }
    a.iter()
        .zip(b)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Some(x),
            (1, _) => Some(y),
            (_, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// One operand of the innermost block.
#[derive(Clone, Copy)]
enum Operand<'a> {
    /// The output buffer itself (the operand was computed in place).
    Out,
    /// A run as long as the block.
    Run(&'a [f32]),
    /// One value repeated over the block.
    Scalar(f32),
}

/// How an operand is read: its element strides over the output's axes
/// (0 where it broadcasts).
fn strides_over(shape: &[usize], out: &[usize]) -> TVec<usize> {
    let natural = Tensor::natural_strides(shape);
    shape
        .iter()
        .zip(out)
        .zip(natural)
        .map(|((&d, &o), s)| if d == o { s as usize } else { 0 })
        .collect()
}

/// `f` over `a` and `b` broadcast to `out_shape`, in the buffer of an
/// operand that has the output's shape and that nothing else holds, else
/// in a new one.
fn apply(
    a: TValue,
    b: TValue,
    out_shape: &[usize],
    f: impl Fn(f32, f32) -> f32 + Copy,
) -> TractResult<Tensor> {
    let rank = out_shape.len();
    let a_strides = strides_over(a.shape(), out_shape);
    let b_strides = strides_over(b.shape(), out_shape);
    // The innermost block: trailing axes over which each operand is either
    // contiguous (its strides are the output's) or one value (strides 0).
    let mode = |s: &[usize], i: usize| -> Option<bool> {
        if out_shape[i] == 1 {
            None
        } else {
            Some(s[i] != 0)
        }
    };
    let (mut a_mode, mut b_mode) = (None, None);
    let mut split = rank;
    while split > 0 {
        let i = split - 1;
        let (am, bm) = (mode(&a_strides, i), mode(&b_strides, i));
        let fits = |m: Option<bool>, seen: Option<bool>| m.is_none() || seen.is_none() || m == seen;
        if !fits(am, a_mode) || !fits(bm, b_mode) {
            break;
        }
        a_mode = a_mode.or(am);
        b_mode = b_mode.or(bm);
        split = i;
    }
    let block: usize = out_shape[split..].iter().product();
    let outer = &out_shape[..split];

    let in_place_a = a.is_exclusive() && a.shape() == out_shape;
    let in_place_b = !in_place_a && b.is_exclusive() && b.shape() == out_shape;
    let (mut out, a_src, b_src) = if in_place_a {
        (a.into_tensor(), None, Some(b))
    } else if in_place_b {
        (b.into_tensor(), Some(a), None)
    } else {
        (Tensor::zero::<f32>(out_shape)?, Some(a), Some(b))
    };
    let a_data = a_src.as_ref().map(|t| t.try_as_plain_ram()).transpose()?;
    let a_data = a_data.as_ref().map(|v| v.as_slice::<f32>()).transpose()?;
    let b_data = b_src.as_ref().map(|t| t.try_as_plain_ram()).transpose()?;
    let b_data = b_data.as_ref().map(|v| v.as_slice::<f32>()).transpose()?;
    let mut out_view = out.try_as_plain_ram_mut()?;
    let out_data = out_view.as_slice_mut::<f32>()?;
    let mut index: TVec<usize> = tvec![0; outer.len()];
    let (mut at_a, mut at_b) = (0usize, 0usize);
    for start in (0..out_data.len()).step_by(block.max(1)) {
        let dst = &mut out_data[start..start + block];
        let x = operand(a_data, a_mode, at_a, block);
        let y = operand(b_data, b_mode, at_b, block);
        run(dst, x, y, f);
        advance(
            &mut index,
            outer,
            (&a_strides, &b_strides),
            (&mut at_a, &mut at_b),
        );
    }
    Ok(out)
}

/// Advances `index` over the `outer` axes by one, odometer style, moving
/// each operand's offset by its strides.
fn advance(
    index: &mut [usize],
    outer: &[usize],
    strides: (&[usize], &[usize]),
    at: (&mut usize, &mut usize),
) {
    for axis in (0..outer.len()).rev() {
        index[axis] += 1;
        *at.0 += strides.0[axis];
        *at.1 += strides.1[axis];
        if index[axis] < outer[axis] {
            return;
        }
        *at.0 -= strides.0[axis] * outer[axis];
        *at.1 -= strides.1[axis] * outer[axis];
        index[axis] = 0;
    }
}

/// An operand's part of the block starting at element `at`: a run when it
/// is contiguous over the block, else one value.
fn operand(data: Option<&[f32]>, contiguous: Option<bool>, at: usize, block: usize) -> Operand<'_> {
    match data {
        None => Operand::Out,
        Some(d) if contiguous.unwrap_or(true) => Operand::Run(&d[at..at + block]),
        Some(d) => Operand::Scalar(d[at]),
    }
}

/// One block: `dst[j] = f(x[j], y[j])`.
#[inline(always)]
fn run(dst: &mut [f32], x: Operand, y: Operand, f: impl Fn(f32, f32) -> f32) {
    match (x, y) {
        (Operand::Out, Operand::Run(y)) => dst.iter_mut().zip(y).for_each(|(d, &y)| *d = f(*d, y)),
        (Operand::Out, Operand::Scalar(s)) => dst.iter_mut().for_each(|d| *d = f(*d, s)),
        (Operand::Run(x), Operand::Out) => dst.iter_mut().zip(x).for_each(|(d, &x)| *d = f(x, *d)),
        (Operand::Scalar(s), Operand::Out) => dst.iter_mut().for_each(|d| *d = f(s, *d)),
        (Operand::Run(x), Operand::Run(y)) => dst
            .iter_mut()
            .zip(x.iter().zip(y))
            .for_each(|(d, (&x, &y))| *d = f(x, y)),
        (Operand::Run(x), Operand::Scalar(s)) => {
            dst.iter_mut().zip(x).for_each(|(d, &x)| *d = f(x, s))
        }
        (Operand::Scalar(s), Operand::Run(y)) => {
            dst.iter_mut().zip(y).for_each(|(d, &y)| *d = f(s, y))
        }
        (Operand::Scalar(s), Operand::Scalar(t)) => dst.fill(f(s, t)),
        (Operand::Out, Operand::Out) => dst.iter_mut().for_each(|d| *d = f(*d, *d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::math;

    /// Deterministic values in [-2, 2), none zero (Div).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let v = (x % 4000) as f32 / 1000.0 - 2.0;
                if v == 0.0 { 0.5 } else { v }
            })
            .collect()
    }

    fn tensor(shape: &[usize], seed: u32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_shape(shape, &values(n, seed)).unwrap()
    }

    fn generic(name: &str) -> TypedBinOp {
        let mini: Box<dyn tract_onnx::tract_core::ops::binary::BinMiniOp> = match name {
            "Add" => Box::new(math::Add),
            "Sub" => Box::new(math::Sub),
            "Mul" => Box::new(math::Mul),
            _ => Box::new(math::Div),
        };
        TypedBinOp(mini, None)
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn broadcasting_gives_tracts_bits() {
        let shapes: &[(&[usize], &[usize])] = &[
            (&[2, 3, 5], &[2, 3, 5]),
            (&[2, 3, 5], &[1, 1, 1]),
            (&[1, 1, 1], &[2, 3, 5]),
            (&[2, 3, 4, 5], &[2, 1, 1, 5]),
            (&[2, 1, 4, 1], &[1, 3, 1, 5]),
            (&[4, 1], &[1, 7]),
            (&[3, 6], &[3, 1]),
            (&[1, 6], &[3, 6]),
            (&[2, 1, 3], &[2, 4, 3]),
            (&[0, 3], &[1, 3]),
            (&[5], &[1]),
            (&[], &[]),
        ];
        for name in ["Add", "Sub", "Mul", "Div"] {
            let op = generic(name);
            let fast = FastBin {
                arith: Arith::of(&op).unwrap(),
                generic: op.clone(),
            };
            for (i, (sa, sb)) in shapes.iter().enumerate() {
                let (a, b) = (tensor(sa, i as u32), tensor(sb, 100 + i as u32));
                let want = op
                    .eval_out_of_plan(tvec!(a.clone().into_tvalue(), b.clone().into_tvalue()))
                    .unwrap()
                    .unwrap();
                // Exclusive inputs (computed in place) and shared ones.
                let got = fast
                    .eval_out_of_plan(tvec!(a.clone().into_tvalue(), b.clone().into_tvalue()))
                    .unwrap()
                    .unwrap();
                let (ka, kb) = (a.into_tvalue(), b.into_tvalue());
                let shared = fast
                    .eval_out_of_plan(tvec!(ka.clone(), kb.clone()))
                    .unwrap()
                    .unwrap();
                for out in [&got[0], &shared[0]] {
                    assert_eq!(out.shape(), want[0].shape(), "{name} {sa:?} {sb:?}");
                    assert_eq!(bits(out), bits(&want[0]), "{name} {sa:?} {sb:?}");
                }
                assert_eq!(bits(&ka), bits(&tensor(sa, i as u32)), "a was not modified");
            }
        }
    }

    #[test]
    fn comparisons_give_tracts_bools() {
        use tract_onnx::tract_core::ops::logic::{
            CompEq, CompGT, CompGTE, CompLT, CompLTE, CompNE,
        };
        let ops: Vec<Box<dyn tract_onnx::tract_core::ops::binary::BinMiniOp>> = vec![
            Box::new(CompEq),
            Box::new(CompNE),
            Box::new(CompLT),
            Box::new(CompGT),
            Box::new(CompLTE),
            Box::new(CompGTE),
        ];
        let shapes: &[(&[usize], &[usize])] = &[
            (&[1, 2048, 1], &[1, 1, 257]),
            (&[2, 3, 5], &[2, 3, 5]),
            (&[2, 3, 5], &[1, 1, 1]),
            (&[1, 1, 1], &[2, 3, 5]),
            (&[2, 1, 4, 1], &[1, 3, 1, 5]),
            (&[4, 1], &[1, 7]),
            (&[3, 6], &[3, 1]),
            (&[0, 3], &[1, 3]),
            (&[5], &[1]),
            (&[], &[]),
        ];
        // Small integers, so that equal values occur; NaN, infinities and
        // both zeros among the floats.
        let ints = |shape: &[usize], seed: u32| -> Vec<i64> {
            (values(shape.iter().product(), seed).iter())
                .map(|v| (v * 2.0) as i64)
                .collect()
        };
        let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0];
        let floats = |shape: &[usize], seed: u32| -> Vec<f32> {
            (ints(shape, seed).iter().enumerate())
                .map(|(i, &v)| {
                    if i % 3 == 0 {
                        special[(v.unsigned_abs() as usize + i) % 6]
                    } else {
                        v as f32
                    }
                })
                .collect()
        };
        for op in ops {
            let generic = TypedBinOp(op, None);
            let fast = FastCmp {
                cmp: Cmp::of(&generic).unwrap(),
                generic: generic.clone(),
            };
            for (i, (sa, sb)) in shapes.iter().enumerate() {
                let seed = i as u32;
                let pairs: Vec<(Tensor, Tensor)> = vec![
                    (
                        Tensor::from_shape(sa, &floats(sa, seed)).unwrap(),
                        Tensor::from_shape(sb, &floats(sb, seed + 50)).unwrap(),
                    ),
                    (
                        Tensor::from_shape(sa, &ints(sa, seed)).unwrap(),
                        Tensor::from_shape(sb, &ints(sb, seed + 50)).unwrap(),
                    ),
                    (
                        Tensor::from_shape(
                            sa,
                            &ints(sa, seed).iter().map(|&v| v as i32).collect::<Vec<_>>(),
                        )
                        .unwrap(),
                        Tensor::from_shape(
                            sb,
                            &ints(sb, seed + 50)
                                .iter()
                                .map(|&v| v as i32)
                                .collect::<Vec<_>>(),
                        )
                        .unwrap(),
                    ),
                    (
                        Tensor::from_shape(
                            sa,
                            &ints(sa, seed).iter().map(|&v| v as u8).collect::<Vec<_>>(),
                        )
                        .unwrap(),
                        Tensor::from_shape(
                            sb,
                            &ints(sb, seed + 50)
                                .iter()
                                .map(|&v| v as u8)
                                .collect::<Vec<_>>(),
                        )
                        .unwrap(),
                    ),
                ];
                for (a, b) in pairs {
                    let inputs = || tvec!(a.clone().into_tvalue(), b.clone().into_tvalue());
                    let want = generic.eval_out_of_plan(inputs()).unwrap().unwrap();
                    let got = fast.eval_out_of_plan(inputs()).unwrap().unwrap();
                    let name = generic.0.name();
                    assert_eq!(got[0].shape(), want[0].shape(), "{name} {sa:?} {sb:?}");
                    let bools = |t: &Tensor| {
                        t.try_as_plain_ram()
                            .unwrap()
                            .as_slice::<bool>()
                            .unwrap()
                            .to_vec()
                    };
                    assert_eq!(
                        bools(&got[0]),
                        bools(&want[0]),
                        "{name} {:?} {sa:?} {sb:?}",
                        a.datum_type()
                    );
                }
            }
        }
    }

    #[test]
    fn any_stride_on_a_length_one_axis_is_read_as_natural() {
        let op = generic("Sub");
        let fast = FastBin {
            arith: Arith::Sub,
            generic: op.clone(),
        };
        let mut a = tensor(&[3, 4], 7);
        a.insert_axis(0).unwrap();
        assert_ne!(a.strides(), &*Tensor::natural_strides(a.shape()));
        assert!(natural_f32(&a));
        let mut values = tvec!(a.clone().into_tvalue());
        natural_strides(&mut values);
        assert_eq!(values[0].strides(), &*Tensor::natural_strides(a.shape()));
        assert_eq!(bits(&values[0]), bits(&a));
        let b = tensor(&[1, 1, 4], 8);
        let want = op
            .eval_out_of_plan(tvec!(a.clone().into_tvalue(), b.clone().into_tvalue()))
            .unwrap()
            .unwrap();
        let got = fast
            .eval_out_of_plan(tvec!(a.into_tvalue(), b.into_tvalue()))
            .unwrap()
            .unwrap();
        assert_eq!(bits(&got[0]), bits(&want[0]));
    }
}
