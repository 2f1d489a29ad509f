//! Tensors in numpy's own files: `.npy` for one array, `.npz` (a zip of
//! `.npy` members, as `np.savez` writes it) for several, so a numpy user
//! sends and reads them in one line (`np.savez(f, **inputs)`,
//! `np.load(io.BytesIO(body))`) and no float travels as decimal text.
//!
//! The bytes of an array are exactly the tensor's little-endian data, so
//! the receipt's digests (over dtype, shape and data) bind them as they
//! bind the JSON form. An answer's `.npz` also holds `vouch.json`: the
//! response as JSON without its outputs (receipt, executor, route), which
//! `np.load` returns as bytes.

use std::io::{Cursor, Read, Write};

use vouch_types::{DType, Tensor, TensorMap};

/// The media type of a `.npz` body.
pub const NPZ: &str = "application/x-npz";
/// The member of an answer's `.npz` that holds the rest of the response.
pub const VOUCH_MEMBER: &str = "vouch.json";

fn descr(d: DType) -> &'static str {
    match d {
        DType::Bool => "|b1",
        DType::U8 => "|u1",
        DType::I8 => "|i1",
        DType::U16 => "<u2",
        DType::I16 => "<i2",
        DType::U32 => "<u4",
        DType::I32 => "<i4",
        DType::U64 => "<u8",
        DType::I64 => "<i8",
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    }
}

/// A `.npy` file holding `t` (format 1.0, C order).
pub fn write_npy(t: &Tensor) -> Vec<u8> {
    let mut out = npy_preamble(t);
    out.extend_from_slice(t.data());
    out
}

/// What a `.npy` file holds before the data: magic, version, header.
fn npy_preamble(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t.dtype())
    );
    // Magic, version and length take 10 bytes; the header ends with a
    // newline and pads the whole preamble to a multiple of 64.
    let total = (10 + header.len() + 1).div_ceil(64) * 64;
    header.extend(std::iter::repeat_n(' ', total - 10 - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// The value after `'key':` in a `.npy` header dict.
fn field<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
    let at = header
        .find(&format!("'{key}':"))
        .ok_or_else(|| format!("its header has no '{key}'"))?;
    Ok(header[at + key.len() + 3..].trim_start())
}

/// Reads a `.npy` file: any numpy version 1–3 header, C order, a dtype
/// Vouch has (big-endian data is swapped to little-endian).
pub fn read_npy(bytes: &[u8]) -> Result<Tensor, String> {
    read_npy_from(&mut &bytes[..])
}

/// [`read_npy`] from a reader: the header first, then the data straight
/// into the tensor's buffer (no copy of a whole member in between).
fn read_npy_from(r: &mut impl Read) -> Result<Tensor, String> {
    let short = |_| String::from("it is cut short: not a whole .npy array");
    let not_npy = || String::from("it is not a .npy array (no \\x93NUMPY magic)");
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| not_npy())?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(not_npy());
    }
    let len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(short)?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(short)?;
            u32::from_le_bytes(b) as usize
        }
        _ => return Err("its .npy version is not 1, 2 or 3".into()),
    };
    if len > 1 << 20 {
        return Err(format!(
            "its .npy header claims {len} bytes: not an array's"
        ));
    }
    let mut header = vec![0u8; len];
    r.read_exact(&mut header).map_err(short)?;
    let header = String::from_utf8(header).map_err(|_| "its .npy header is not text")?;
    let d = field(&header, "descr")?;
    let d = d
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("its 'descr' is not a simple dtype string (structured arrays are not tensors)")?;
    let (order, code) = d.split_at(1.min(d.len()));
    let dtype = DType::ALL
        .into_iter()
        .find(|t| &descr(*t)[1..] == code)
        .ok_or_else(|| {
            format!("its dtype '{d}' is not one Vouch has (bool, int8-64, uint8-64, float16/32/64)")
        })?;
    if field(&header, "fortran_order")?.starts_with("True") {
        return Err("it is in Fortran order: send C-ordered arrays (np.ascontiguousarray)".into());
    }
    let shape = field(&header, "shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("its 'shape' is not a tuple")?;
    let shape: Vec<u64> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("its shape ({shape}) is not a tuple of sizes"))?;
    let size = dtype.size();
    let want = vouch_types::tensor::element_count(&shape)
        .and_then(|n| n.checked_mul(size as u64))
        .ok_or_else(|| format!("its shape {shape:?} is too large"))?;
    // One byte past what the shape needs tells a longer member.
    let mut data = Vec::with_capacity(usize::try_from(want).unwrap_or(0).min(1 << 30));
    r.take(want + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("its data cannot be read: {e}"))?;
    if data.len() as u64 != want {
        return Err(format!(
            "it holds {} bytes of data, but shape {shape:?} of {} needs {want}",
            data.len(),
            dtype.name()
        ));
    }
    if order == ">" && size > 1 {
        for chunk in data.chunks_exact_mut(size) {
            chunk.reverse();
        }
    } else if !matches!(order, "<" | "|" | "=") {
        return Err(format!("its byte order '{order}' is not one numpy writes"));
    }
    Tensor::new(dtype, shape, data).map_err(|e| e.to_string())
}

/// An `.npz` of `tensors` (`NAME.npy` each, stored uncompressed) followed
/// by the `extra` members as they are.
pub fn write_npz(tensors: &TensorMap, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let room = tensors.byte_len() + extra.iter().map(|(_, b)| b.len()).sum::<usize>();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(room + 4096)));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(tensors.byte_len() >= u32::MAX as usize / 2);
    // A member is written in parts: a tensor's data is copied once, into
    // the archive.
    let mut put = |name: &str, parts: &[&[u8]]| {
        zip.start_file(name, options)
            .and_then(|()| {
                parts
                    .iter()
                    .try_for_each(|p| zip.write_all(p))
                    .map_err(Into::into)
            })
            .expect("writing to memory does not fail");
    };
    for (name, t) in tensors.iter() {
        put(&format!("{name}.npy"), &[&npy_preamble(t), t.data()]);
    }
    for (name, bytes) in extra {
        put(name, &[bytes]);
    }
    zip.finish()
        .expect("writing to memory does not fail")
        .into_inner()
}

/// Members of an `.npz` that are not arrays: `(name, bytes)`.
pub type Members = Vec<(String, Vec<u8>)>;

/// Reads an `.npz` (stored or deflated, as `np.savez` and
/// `np.savez_compressed` write): each `NAME.npy` member is the tensor
/// `NAME`; members of other names are returned apart. At most `limit`
/// bytes are unpacked in all, whatever the members claim: a small
/// deflated body cannot make the reader allocate without end.
pub fn read_npz(bytes: &[u8], limit: usize) -> Result<(TensorMap, Members), String> {
    let mut left = limit;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("the body is not an .npz (zip) archive: {e}"))?;
    let (mut tensors, mut other) = (TensorMap::new(), Vec::new());
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| format!("member {i} of the .npz cannot be read: {e}"))?;
        let name = member
            .name()
            .map_err(|e| format!("member {i} of the .npz has no readable name: {e}"))?
            .to_string();
        let too_big = || {
            format!(
                "the .npz unpacks to more than {limit} bytes (at `{name}`): send smaller inputs"
            )
        };
        if member.size() > left as u64 {
            return Err(too_big());
        }
        // Whatever the member claims, at most one byte more than what is
        // left is read, and reading that byte means too much.
        let budget = (left as u64).saturating_add(1);
        let mut bounded = (&mut member).take(budget);
        let read = match name.strip_suffix(".npy") {
            Some(tensor) => read_npy_from(&mut bounded)
                .map(|t| (Some((tensor.to_string(), t)), None))
                .map_err(|e| format!("array `{tensor}`: {e}")),
            None => {
                let mut data = Vec::new();
                bounded
                    .read_to_end(&mut data)
                    .map(|_| (None, Some(data)))
                    .map_err(|e| format!("member `{name}` of the .npz cannot be read: {e}"))
            }
        };
        let consumed = budget - bounded.limit();
        if consumed > left as u64 {
            return Err(too_big());
        }
        left -= consumed as usize;
        match read? {
            (Some((tensor, t)), _) => {
                if tensors.insert(tensor.as_str(), t).is_some() {
                    return Err(format!("the .npz holds array `{tensor}` twice"));
                }
            }
            (None, data) => other.push((name, data.unwrap_or_default())),
        }
    }
    Ok((tensors, other))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TensorMap {
        let mut m = TensorMap::new();
        m.insert(
            "x",
            Tensor::from_f32(vec![2, 3], &[1.0, -2.5, 3.0, f32::NAN, 0.0, 1e-9]).unwrap(),
        );
        m.insert(
            "ids",
            Tensor::from_i64(vec![4], &[1, -1, i64::MAX, 0]).unwrap(),
        );
        m.insert("scalar", Tensor::new(DType::U8, vec![], vec![7]).unwrap());
        m.insert(
            "empty",
            Tensor::new(DType::F16, vec![0, 5], vec![]).unwrap(),
        );
        m
    }

    #[test]
    fn arrays_round_trip_bit_for_bit() {
        let m = sample();
        let npz = write_npz(&m, &[(VOUCH_MEMBER, b"{}")]);
        let (back, other) = read_npz(&npz, 1 << 20).unwrap();
        assert_eq!(back.encode(), m.encode(), "same dtype, shape and bytes");
        assert_eq!(other, vec![(VOUCH_MEMBER.to_string(), b"{}".to_vec())]);
        let (unbounded, _) = read_npz(&npz, usize::MAX).unwrap();
        assert_eq!(unbounded.encode(), m.encode(), "no limit at all");
        let npy = write_npy(m.get("x").unwrap());
        assert_eq!(npy.len() % 64, 24, "preamble padded to 64, then 6 floats");
        assert!(String::from_utf8_lossy(&npy[10..128]).contains("'shape': (2, 3)"));
    }

    #[test]
    fn what_numpy_writes_otherwise_is_read_or_refused_clearly() {
        // Big-endian, a version 2 header, a 1-d shape written with a
        // trailing comma.
        let header = "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }";
        let mut npy = b"\x93NUMPY\x02\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u32).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        npy.extend_from_slice(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]);
        let t = read_npy(&npy).unwrap();
        assert_eq!(t.dtype(), DType::I32);
        assert_eq!(t.data(), &[1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
        let refuse = |header: &str, data: &[u8], why: &str| {
            let mut npy = b"\x93NUMPY\x01\x00".to_vec();
            npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
            npy.extend_from_slice(header.as_bytes());
            npy.extend_from_slice(data);
            let e = read_npy(&npy).unwrap_err();
            assert!(e.contains(why), "{e}");
        };
        refuse(
            "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
            "not one Vouch has",
        );
        refuse(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
            &[0; 4],
            "Fortran",
        );
        refuse(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
            &[0; 4],
            "",
        );
        refuse(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
            "structured",
        );
        refuse(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
            "needs 4",
        );
        assert!(read_npy(b"PK\x03\x04").unwrap_err().contains("magic"));
        assert!(
            read_npz(b"not a zip", 1 << 20)
                .unwrap_err()
                .contains("not an .npz")
        );
    }

    #[test]
    fn a_small_deflated_body_cannot_unpack_without_end() {
        // 8 MB of zeros deflate to a few kB.
        let zeros = Tensor::new(DType::U8, vec![8 << 20], vec![0; 8 << 20]).unwrap();
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("x.npy", deflated).unwrap();
        zip.write_all(&write_npy(&zeros)).unwrap();
        let bomb = zip.finish().unwrap().into_inner();
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let e = read_npz(&bomb, 1 << 20).unwrap_err();
        assert!(e.contains("unpacks to more than 1048576 bytes"), "{e}");
        let (m, _) = read_npz(&bomb, 16 << 20).unwrap();
        assert_eq!(m.get("x").unwrap().len(), 8 << 20);
    }
}
