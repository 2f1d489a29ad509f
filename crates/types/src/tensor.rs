//! Tensors and their canonical encoding.
//!
//! A tensor encodes as: dtype tag (u8), rank (u32 LE), each dim (u64 LE),
//! then the elements row-major, each little-endian. A named map encodes as a
//! count (u32 LE) then, sorted by the names' UTF-8 bytes, each name
//! (u32 LE length + bytes) followed by its tensor. See `docs/receipts.md`.

use std::collections::BTreeMap;
use std::fmt;

use crate::digest::{Digest, Hasher, Kind};
use crate::encode::{DecodeError, Reader, Sink, len_u32};

/// Element types, named as numpy names them. Adding one changes the
/// canonical encoding, so the set is closed (not `non_exhaustive`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `bool`, one byte, 0 or 1.
    Bool,
    /// `uint8`
    U8,
    /// `int8`
    I8,
    /// `uint16`
    U16,
    /// `int16`
    I16,
    /// `uint32`
    U32,
    /// `int32`
    I32,
    /// `uint64`
    U64,
    /// `int64`
    I64,
    /// `float16` (IEEE half)
    F16,
    /// `float32`
    F32,
    /// `float64`
    F64,
}

impl DType {
    /// Every dtype, in tag order.
    pub const ALL: [DType; 12] = [
        DType::Bool,
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::U32,
        DType::I32,
        DType::U64,
        DType::I64,
        DType::F16,
        DType::F32,
        DType::F64,
    ];

    /// The tag byte in canonical encodings (1..=12; 0 is never a dtype).
    pub const fn tag(self) -> u8 {
        match self {
            DType::Bool => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::U32 => 6,
            DType::I32 => 7,
            DType::U64 => 8,
            DType::I64 => 9,
            DType::F16 => 10,
            DType::F32 => 11,
            DType::F64 => 12,
        }
    }

    /// The dtype for a tag byte.
    pub fn from_tag(tag: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.tag() == tag)
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The numpy name (`float32`, `int64`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Parses a numpy dtype name.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether elements are floating point.
    pub const fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a tensor could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorError {
    /// The data length does not match the shape.
    #[error(
        "shape {shape:?} of {dtype} needs {expected} elements ({expected_bytes} bytes), got {actual_bytes} bytes"
    )]
    Length {
        /// The element type.
        dtype: DType,
        /// The shape given.
        shape: Vec<u64>,
        /// Elements the shape implies.
        expected: u64,
        /// Bytes the shape implies.
        expected_bytes: u64,
        /// Bytes given.
        actual_bytes: usize,
    },
    /// The shape's element count overflows.
    #[error("shape {0:?} has more elements than can be addressed")]
    TooLarge(Vec<u64>),
    /// A bool tensor holds a byte other than 0 or 1.
    #[error("bool tensors hold only 0 or 1")]
    BadBool,
}

/// A dense tensor: dtype, shape, and row-major little-endian element bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// Elements implied by `shape`, or `None` on overflow.
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// Builds a tensor from little-endian element bytes, checking the length.
    pub fn new(dtype: DType, shape: Vec<u64>, data: Vec<u8>) -> Result<Tensor, TensorError> {
        let expected = element_count(&shape).ok_or_else(|| TensorError::TooLarge(shape.clone()))?;
        let expected_bytes = expected
            .checked_mul(dtype.size() as u64)
            .ok_or_else(|| TensorError::TooLarge(shape.clone()))?;
        if expected_bytes != data.len() as u64 {
            return Err(TensorError::Length {
                dtype,
                shape,
                expected,
                expected_bytes,
                actual_bytes: data.len(),
            });
        }
        if dtype == DType::Bool && data.iter().any(|&b| b > 1) {
            return Err(TensorError::BadBool);
        }
        Ok(Tensor { dtype, shape, data })
    }

    /// A float32 tensor from values.
    pub fn from_f32(shape: Vec<u64>, values: &[f32]) -> Result<Tensor, TensorError> {
        Tensor::new(
            DType::F32,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// An int64 tensor from values.
    pub fn from_i64(shape: Vec<u64>, values: &[i64]) -> Result<Tensor, TensorError> {
        Tensor::new(
            DType::I64,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The dims.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Row-major little-endian element bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Consumes the tensor, returning its element bytes.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Every element widened to f64 (exact for all but 64-bit integers
    /// beyond 2^53), for tolerance comparisons and display.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        let d = &self.data;
        let n = self.dtype.size();
        d.chunks_exact(n)
            .map(|c| match self.dtype {
                DType::Bool | DType::U8 => c[0] as f64,
                DType::I8 => c[0] as i8 as f64,
                DType::U16 => u16::from_le_bytes([c[0], c[1]]) as f64,
                DType::I16 => i16::from_le_bytes([c[0], c[1]]) as f64,
                DType::F16 => half::f16::from_le_bytes([c[0], c[1]]).to_f64(),
                DType::U32 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                DType::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                DType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                DType::U64 => u64::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                DType::I64 => i64::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                DType::F64 => f64::from_le_bytes(c.try_into().unwrap_or_default()),
            })
            .collect()
    }

    /// Replaces every NaN by the canonical quiet NaN (`0x7e00` f16,
    /// `0x7fc00000` f32, `0x7ff8000000000000` f64), so a NaN's payload never
    /// decides a digest and JSON's `"NaN"` round-trips exactly.
    pub fn canonical_nans(mut self) -> Tensor {
        match self.dtype {
            DType::F16 => self.data.chunks_exact_mut(2).for_each(|c| {
                if half::f16::from_le_bytes([c[0], c[1]]).is_nan() {
                    c.copy_from_slice(&half::f16::NAN.to_le_bytes());
                }
            }),
            DType::F32 => self.data.chunks_exact_mut(4).for_each(|c| {
                if f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_nan() {
                    c.copy_from_slice(&0x7fc0_0000u32.to_le_bytes());
                }
            }),
            DType::F64 => self.data.chunks_exact_mut(8).for_each(|c| {
                if f64::from_le_bytes(c.try_into().unwrap_or_default()).is_nan() {
                    c.copy_from_slice(&0x7ff8_0000_0000_0000u64.to_le_bytes());
                }
            }),
            _ => {}
        }
        self
    }

    /// Writes the canonical encoding.
    pub fn encode_to(&self, sink: &mut impl Sink) {
        encode_header(sink, self.dtype, &self.shape);
        sink.put(&self.data);
    }

    /// The canonical encoding as bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + 8 * self.shape.len() + self.data.len());
        self.encode_to(&mut out);
        out
    }

    /// Reads one canonical tensor, allocating no more than the input holds.
    pub fn decode_from(r: &mut Reader<'_>) -> Result<Tensor, DecodeError> {
        let at = r.offset();
        let tag = r.u8()?;
        let dtype = DType::from_tag(tag).ok_or(DecodeError::BadTag {
            what: "dtype",
            tag,
            offset: at,
        })?;
        let rank = r.u32()? as usize;
        // Each dim takes 8 bytes: a rank the input cannot hold is truncated.
        if rank > r.remaining() / 8 {
            return Err(DecodeError::Truncated {
                offset: r.offset(),
                needed: rank * 8,
            });
        }
        let shape = (0..rank).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
        let bytes = element_count(&shape)
            .and_then(|n| n.checked_mul(dtype.size() as u64))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| DecodeError::Invalid(format!("shape {shape:?} is too large")))?;
        let data = r.take(bytes)?.to_vec();
        Tensor::new(dtype, shape, data).map_err(|e| DecodeError::Invalid(e.to_string()))
    }

    /// Decodes exactly one canonical tensor.
    pub fn decode(bytes: &[u8]) -> Result<Tensor, DecodeError> {
        let mut r = Reader::new(bytes);
        let t = Tensor::decode_from(&mut r)?;
        r.finish()?;
        Ok(t)
    }
}

/// Writes a tensor's header (dtype tag, rank, dims): the element bytes follow.
/// Engines use it to hash tensors they hold without copying them.
pub fn encode_header(sink: &mut impl Sink, dtype: DType, shape: &[u64]) {
    sink.put_u8(dtype.tag());
    sink.put_u32(len_u32(shape.len()));
    for &d in shape {
        sink.put_u64(d);
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({} {:?}, {} bytes)",
            self.dtype,
            self.shape,
            self.data.len()
        )
    }
}

/// Named tensors, kept sorted by name (bytewise UTF-8 order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TensorMap(BTreeMap<String, Tensor>);

impl TensorMap {
    /// An empty map.
    pub fn new() -> TensorMap {
        TensorMap::default()
    }

    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) -> Option<Tensor> {
        self.0.insert(name.into(), t)
    }

    /// Looks up a tensor.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.0.get(name)
    }

    /// Takes a tensor out.
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        self.0.remove(name)
    }

    /// Iterates in canonical (sorted) order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Total element bytes.
    pub fn byte_len(&self) -> usize {
        self.0.values().map(|t| t.data.len()).sum()
    }

    /// Writes the canonical encoding.
    pub fn encode_to(&self, sink: &mut impl Sink) {
        sink.put_u32(len_u32(self.0.len()));
        for (name, t) in &self.0 {
            sink.put_str(name);
            t.encode_to(sink);
        }
    }

    /// The canonical encoding as bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }

    /// Decodes a canonical map; names must be strictly increasing.
    pub fn decode(bytes: &[u8]) -> Result<TensorMap, DecodeError> {
        let mut r = Reader::new(bytes);
        let n = r.u32()?;
        let mut map = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..n {
            let name = r.str()?;
            if last.as_deref().is_some_and(|l| l >= name.as_str()) {
                return Err(DecodeError::Invalid(format!(
                    "tensor names must be sorted and unique; `{name}` is out of order"
                )));
            }
            let t = Tensor::decode_from(&mut r)?;
            last = Some(name.clone());
            map.insert(name, t);
        }
        r.finish()?;
        Ok(TensorMap(map))
    }

    /// The digest of the canonical encoding under `kind` (input or output).
    pub fn digest(&self, kind: Kind) -> Digest {
        let mut h = Hasher::new(kind);
        self.encode_to(&mut h);
        h.finalize()
    }
}

impl FromIterator<(String, Tensor)> for TensorMap {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> TensorMap {
        TensorMap(iter.into_iter().collect())
    }
}

impl IntoIterator for TensorMap {
    type Item = (String, Tensor);
    type IntoIter = std::collections::btree_map::IntoIter<String, Tensor>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_tensor() -> impl Strategy<Value = Tensor> {
        (0usize..12, proptest::collection::vec(0u64..4, 0..4)).prop_flat_map(|(d, shape)| {
            let dtype = DType::ALL[d];
            let n = element_count(&shape).unwrap() as usize * dtype.size();
            proptest::collection::vec(any::<u8>(), n).prop_map(move |mut data| {
                if dtype == DType::Bool {
                    data.iter_mut().for_each(|b| *b &= 1);
                }
                Tensor::new(dtype, shape.clone(), data).unwrap()
            })
        })
    }

    proptest! {
        #[test]
        fn tensor_round_trips(t in arb_tensor()) {
            prop_assert_eq!(Tensor::decode(&t.encode()).unwrap(), t);
        }

        #[test]
        fn map_round_trips(entries in proptest::collection::btree_map("[a-z_]{1,8}", arb_tensor(), 0..5)) {
            let m: TensorMap = entries.into_iter().collect();
            prop_assert_eq!(TensorMap::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Tensor::decode(&bytes);
            let _ = TensorMap::decode(&bytes);
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let t = Tensor::from_f32(vec![2], &[1.0, -2.0]).unwrap();
        let mut want = vec![11u8, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&1.0f32.to_le_bytes());
        want.extend_from_slice(&(-2.0f32).to_le_bytes());
        assert_eq!(t.encode(), want);
    }

    #[test]
    fn rejects_wrong_lengths_and_huge_ranks() {
        assert!(matches!(
            Tensor::new(DType::F32, vec![2, 2], vec![0; 12]),
            Err(TensorError::Length { expected: 4, .. })
        ));
        // rank 2^32-1 with no dims behind it must not allocate
        let bytes = [11u8, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Tensor::decode(&bytes),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(Tensor::new(DType::Bool, vec![1], vec![2]).is_err());
    }

    #[test]
    fn unsorted_maps_are_rejected() {
        let t = Tensor::from_f32(vec![], &[1.0]).unwrap();
        let mut bytes = Vec::new();
        bytes.put_u32(2);
        bytes.put_str("b");
        t.encode_to(&mut bytes);
        bytes.put_str("a");
        t.encode_to(&mut bytes);
        assert!(matches!(
            TensorMap::decode(&bytes),
            Err(DecodeError::Invalid(_))
        ));
    }
}
