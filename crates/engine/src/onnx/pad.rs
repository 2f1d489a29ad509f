//! `Pad` by rows of bytes.
//!
//! tract's `Pad` fills a reflected or repeated edge one slice at a time
//! through ndarray views: 7 µs for silero-vad's 64 samples each side of
//! its 512, an eighth of the model's run. [`FastPad`] copies each output
//! row at once, every element from the input element tract copies it from,
//! so outputs are the same bytes.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};

/// A `Pad` of a plain tensor of numbers or booleans, copied row by row.
/// Anything else goes to the tract operator it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FastPad {
    generic: Pad,
}

super::stands_in_for_generic!(FastPad, pad);

/// Replaces every `Pad` by a [`FastPad`], keeping node names (the trace
/// names steps by them). Returns how many it replaced.
pub(super) fn speed_up(model: &mut TypedModel) -> TractResult<usize> {
    super::swap_ops(model, |_, node| {
        let generic = node.op_as::<Pad>().cloned();
        Ok(generic.map(|generic| FastPad { generic }))
    })
}

/// Where output coordinate `o` of an axis of length `d` padded by `before`
/// reads from: the input coordinate, or `None` for the constant.
fn source(mode: &PadMode, o: usize, d: usize, before: usize) -> Option<usize> {
    let x = o as isize - before as isize;
    let d = d as isize;
    let at = match mode {
        PadMode::Constant(_) => (0..d).contains(&x).then_some(x)?,
        PadMode::Edge => x.clamp(0, d - 1),
        PadMode::Reflect if x < 0 => -x,
        PadMode::Reflect if x >= d => 2 * (d - 1) - x,
        PadMode::Reflect => x,
    };
    Some(at as usize)
}

/// `op` applied to `input`, or `None` where tract's own operator should
/// run: an element type that is not plain bytes or is quantized (a
/// constant would be cast differently), a layout that is not row major, an
/// empty axis, or a reflection longer than its axis.
fn pad(op: &Pad, input: &Tensor) -> TractResult<Option<Tensor>> {
    let dt = input.datum_type();
    let shape = input.shape();
    let rank = shape.len();
    let natural = Tensor::natural_strides(shape);
    let row_major =
        (shape.iter().zip(input.strides()).zip(&natural)).all(|((&d, s), n)| d == 1 || s == n);
    let fits = |&(before, after): &(usize, usize), &d: &usize| match op.mode {
        PadMode::Reflect => before < d && after < d,
        _ => d > 0,
    };
    if !dt.is_copy()
        || dt.is_quantized()
        || !input.is_plain_ram()
        || !row_major
        || rank == 0
        || op.pads.len() != rank
        || !op.pads.iter().zip(shape).all(|(p, d)| fits(p, d))
    {
        return Ok(None);
    }
    let size = dt.size_of();
    let fill: Vec<u8> = match &op.mode {
        PadMode::Constant(value) => value.cast_to_dt(dt)?.as_bytes()[..size].to_vec(),
        _ => vec![0; size],
    };
    let out_shape: TVec<usize> = (op.pads.iter().zip(shape))
        .map(|(&(b, a), &d)| d + b + a)
        .collect();
    let mut out = Tensor::zero_dt(dt, &out_shape)?;
    let src = input.as_bytes();
    let dst = out.as_bytes_mut();
    let (d_last, (before, _)) = (shape[rank - 1], op.pads[rank - 1]);
    let row = out_shape[rank - 1] * size;
    // The output's coordinates on every axis but the last, row by row.
    let mut at: TVec<usize> = tvec![0; rank - 1];
    for out_row in dst.chunks_exact_mut(row) {
        let from: Option<usize> = (0..rank - 1).try_fold(0, |offset, ax| {
            let x = source(&op.mode, at[ax], shape[ax], op.pads[ax].0)?;
            Some(offset + x * natural[ax] as usize)
        });
        match from {
            None => out_row
                .chunks_exact_mut(size)
                .for_each(|e| e.copy_from_slice(&fill)),
            Some(base) => {
                let input_row = &src[base * size..(base + d_last) * size];
                let middle = before..before + d_last;
                out_row[middle.start * size..middle.end * size].copy_from_slice(input_row);
                let edges = (0..before).chain(middle.end..out_shape[rank - 1]);
                for o in edges {
                    let e = &mut out_row[o * size..(o + 1) * size];
                    match source(&op.mode, o, d_last, before) {
                        Some(x) => e.copy_from_slice(&input_row[x * size..(x + 1) * size]),
                        None => e.copy_from_slice(&fill),
                    }
                }
            }
        }
        // The next row: the last outer axis moves fastest.
        for ax in (0..rank - 1).rev() {
            at[ax] += 1;
            if at[ax] < out_shape[ax] {
                break;
            }
            at[ax] = 0;
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tensor of `dt` and `shape` with distinct values.
    fn tensor(dt: DatumType, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
        let t = Tensor::from_shape(shape, &values).unwrap();
        t.cast_to_dt(dt).unwrap().into_owned()
    }

    /// Before and after, per axis.
    type Pads = &'static [(usize, usize)];

    #[test]
    fn padding_gives_tracts_bytes() {
        let cases: &[(&[usize], Pads)] = &[
            (&[1, 512], &[(0, 0), (64, 64)]),
            (&[7], &[(3, 2)]),
            (&[7], &[(0, 6)]),
            (&[2, 3, 5], &[(1, 0), (2, 1), (3, 4)]),
            (&[2, 3, 5], &[(0, 0), (0, 0), (0, 0)]),
            (&[1, 4, 3, 3], &[(0, 0), (0, 0), (1, 1), (2, 2)]),
            (&[3, 1], &[(1, 2), (0, 0)]),
        ];
        let modes = [
            PadMode::Constant(Arc::new(0.0f32.into())),
            PadMode::Constant(Arc::new((-2.5f32).into())),
            PadMode::Edge,
            PadMode::Reflect,
        ];
        for dt in [
            DatumType::F32,
            DatumType::I64,
            DatumType::U8,
            DatumType::F16,
        ] {
            for (shape, pads) in cases {
                for mode in &modes {
                    let op = Pad::new(pads.to_vec(), mode.clone());
                    let input = tensor(dt, shape);
                    let reflects_too_far = *mode == PadMode::Reflect
                        && pads
                            .iter()
                            .zip(*shape)
                            .any(|(&(b, a), &d)| b >= d || a >= d);
                    let ours = pad(&op, &input).unwrap();
                    if reflects_too_far {
                        assert!(ours.is_none(), "{dt:?} {shape:?} {pads:?} {mode:?}");
                        continue;
                    }
                    let ours = ours.unwrap();
                    let tracts = op
                        .eval_out_of_plan(tvec!(input.into_tvalue()))
                        .unwrap()
                        .unwrap();
                    assert_eq!(ours.datum_type(), tracts[0].datum_type());
                    assert_eq!(
                        ours.shape(),
                        tracts[0].shape(),
                        "{dt:?} {shape:?} {pads:?} {mode:?}"
                    );
                    assert_eq!(
                        ours.as_bytes(),
                        tracts[0].as_bytes(),
                        "{dt:?} {shape:?} {pads:?} {mode:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn what_it_does_not_cover_goes_to_tract() {
        let op = Pad::new(vec![(1, 1)], PadMode::Constant(Arc::new(0.0f32.into())));
        let text: Tensor = tract_ndarray::arr1(&["a".to_string(), "b".to_string()]).into();
        assert!(pad(&op, &text).unwrap().is_none());
        let empty = Tensor::zero_dt(DatumType::F32, &[0]).unwrap();
        assert!(pad(&op, &empty).unwrap().is_none());
        let fast = FastPad {
            generic: op.clone(),
        };
        let out = fast
            .eval_out_of_plan(tvec!(empty.into_tvalue()))
            .unwrap()
            .unwrap();
        assert_eq!(out[0].shape(), [2]);
    }
}
