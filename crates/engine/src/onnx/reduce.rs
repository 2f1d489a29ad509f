//! float32 `ReduceMax` and `ReduceMin` across rows.
//!
//! tract reduces over an axis that is not the innermost one output element
//! by output element, building an ndarray slice for each: magika's max over
//! its 508 positions of 512 channels took 0.43 ms, a tenth of the model.
//! [`FastReduce`] folds whole rows into a row of running values with the
//! comparison tract folds with, element by element in the same order from
//! the same start, so outputs are the same bits (NaN and signed zeros
//! included).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};

use super::elementwise::laid_out_naturally;

/// A float32 max or min over one axis with more after it, folded row by
/// row. Anything else goes to the tract operator it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FastReduce {
    generic: Reduce,
}

super::stands_in_for_generic!(FastReduce, reduce);

/// Replaces every max or min `Reduce` by a [`FastReduce`], keeping node
/// names (the trace names steps by them). Returns how many it replaced.
pub(super) fn speed_up(model: &mut TypedModel) -> TractResult<usize> {
    super::swap_ops(model, |_, node| {
        let generic = node.op_as::<Reduce>().cloned();
        let generic = generic.filter(|r| matches!(r.reducer, Reducer::Max | Reducer::Min));
        Ok(generic.map(|generic| FastReduce { generic }))
    })
}

/// `op` applied to `input`, or `None` where tract's own operator should
/// run: not float32 in row-major order, several axes, or an axis whose
/// elements are contiguous (tract reduces those with its vector kernels,
/// which fold differently) or fewer than two.
fn reduce(op: &Reduce, input: &Tensor) -> TractResult<Option<Tensor>> {
    let shape = input.shape();
    let [axis] = op.axes[..] else {
        return Ok(None);
    };
    let Some(&len) = shape.get(axis) else {
        return Ok(None);
    };
    let inner: usize = shape[axis + 1..].iter().product();
    if input.datum_type() != f32::datum_type()
        || !input.is_plain_ram()
        || !laid_out_naturally(input)
        || len < 2
        || inner < 2
    {
        return Ok(None);
    }
    let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
    let mut out_shape: TVec<usize> = shape.into();
    out_shape[axis] = 1;
    // tract's fold: `if acc > v { acc } else { v }` from f32::MIN for max,
    // `if acc < v { acc } else { v }` from f32::MAX for min.
    let out = match op.reducer {
        Reducer::Max => fold_rows(
            data,
            len,
            inner,
            f32::MIN,
            |acc, v| if acc > v { acc } else { v },
        ),
        Reducer::Min => fold_rows(
            data,
            len,
            inner,
            f32::MAX,
            |acc, v| if acc < v { acc } else { v },
        ),
        _ => return Ok(None),
    };
    Ok(Some(Tensor::from_shape(&out_shape, &out)?))
}

/// Each block of `len` rows of `inner` values in `data` folded into one
/// row with `keep`, from `start`, row after row.
fn fold_rows(
    data: &[f32],
    len: usize,
    inner: usize,
    start: f32,
    keep: impl Fn(f32, f32) -> f32 + Copy,
) -> Vec<f32> {
    let mut out = vec![start; data.len() / len];
    for (acc, block) in out
        .chunks_exact_mut(inner)
        .zip(data.chunks_exact(len * inner))
    {
        for row in block.chunks_exact(inner) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = keep(*a, v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with every case a fold can meet: NaN, both zeros, both
    /// infinities, the extremes and ordinary numbers.
    fn values(n: usize, seed: usize) -> Vec<f32> {
        let special = [
            f32::NAN,
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN,
            f32::MAX,
            1.5,
            -2.25,
        ];
        (0..n)
            .map(|i| {
                let k = (i * 7919 + seed * 104_729) % 23;
                special
                    .get(k)
                    .copied()
                    .unwrap_or(((i + seed) as f32 * 0.61).sin() * 10.0)
            })
            .collect()
    }

    #[test]
    fn max_and_min_across_rows_give_tracts_bits() {
        let cases: &[(&[usize], usize)] = &[
            (&[1, 508, 512], 1),
            (&[3, 4, 5], 0),
            (&[3, 4, 5], 1),
            (&[2, 2, 3, 7], 2),
            (&[6, 2], 0),
            // All negative infinity down a column; NaN first or last.
            (&[2, 3], 0),
        ];
        for reducer in [Reducer::Max, Reducer::Min] {
            for (seed, (shape, axis)) in cases.iter().enumerate() {
                let n: usize = shape.iter().product();
                let mut v = values(n, seed);
                if *shape == [2, 3] {
                    v = vec![
                        f32::NEG_INFINITY,
                        f32::NAN,
                        1.0,
                        f32::NEG_INFINITY,
                        2.0,
                        f32::NAN,
                    ];
                }
                let input = Tensor::from_shape(shape, &v).unwrap();
                let op = Reduce::new(tvec![*axis], reducer);
                let ours = reduce(&op, &input).unwrap().expect("covered");
                let tracts = op
                    .eval_out_of_plan(tvec!(input.into_tvalue()))
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    ours.shape(),
                    tracts[0].shape(),
                    "{reducer:?} {shape:?} {axis}"
                );
                assert_eq!(
                    ours.as_bytes(),
                    tracts[0].as_bytes(),
                    "{reducer:?} {shape:?} {axis}"
                );
            }
        }
    }

    #[test]
    fn what_it_does_not_cover_goes_to_tract() {
        let input = Tensor::from_shape(&[2, 3], &values(6, 1)).unwrap();
        // The innermost axis, several axes, another reducer, another type.
        assert!(
            reduce(&Reduce::new(tvec![1], Reducer::Max), &input)
                .unwrap()
                .is_none()
        );
        assert!(
            reduce(&Reduce::new(tvec![0, 1], Reducer::Max), &input)
                .unwrap()
                .is_none()
        );
        assert!(
            reduce(&Reduce::new(tvec![0], Reducer::Sum), &input)
                .unwrap()
                .is_none()
        );
        let ints = Tensor::from_shape(&[2, 3], &[1i32, 2, 3, 4, 5, 6]).unwrap();
        assert!(
            reduce(&Reduce::new(tvec![0], Reducer::Max), &ints)
                .unwrap()
                .is_none()
        );
    }
}
