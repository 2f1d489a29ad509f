//! Model manifests, their schemas, and model ids.
//!
//! The model id is the digest of the canonical manifest bytes; the
//! publisher signs the id. Layout in `docs/receipts.md`.

use std::fmt;

use ed25519_dalek::Signature;

use crate::digest::{Digest, Kind};
use crate::encode::{DecodeError, Reader, Sink, len_u32};
use crate::keys::{PublicKey, SecretKey};
use crate::tensor::DType;

/// Manifest format version written by this code.
pub const MANIFEST_VERSION: u8 = 1;

/// How a model is stored and which engine runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModelFormat {
    /// An ONNX graph.
    Onnx,
    /// A GGUF language model.
    Gguf,
}

impl ModelFormat {
    /// The tag byte.
    pub const fn tag(self) -> u8 {
        match self {
            ModelFormat::Onnx => 1,
            ModelFormat::Gguf => 2,
        }
    }
    /// The lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            ModelFormat::Onnx => "onnx",
            ModelFormat::Gguf => "gguf",
        }
    }
    /// The format for a tag.
    pub fn from_tag(tag: u8) -> Option<ModelFormat> {
        [ModelFormat::Onnx, ModelFormat::Gguf]
            .into_iter()
            .find(|f| f.tag() == tag)
    }
    /// The format for a name.
    pub fn from_name(name: &str) -> Option<ModelFormat> {
        [ModelFormat::Onnx, ModelFormat::Gguf]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// A symbolic size (`batch`, `seq`, `N`), bound per request.
    Symbol(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbol(s) => f.write_str(s),
        }
    }
}

/// A declared input or output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    /// The tensor's name in the model.
    pub name: String,
    /// The element type, when the model declares it.
    pub dtype: Option<DType>,
    /// The dims, when the model declares the rank.
    pub shape: Option<Vec<Dim>>,
}

impl TensorSpec {
    /// The shape as `[batch, 384]`, or `[?]` when the rank is unknown.
    pub fn shape_string(&self) -> String {
        match &self.shape {
            None => "[?]".into(),
            Some(dims) => {
                let parts: Vec<String> = dims.iter().map(Dim::to_string).collect();
                format!("[{}]", parts.join(", "))
            }
        }
    }
}

/// The inputs and outputs of a model, as read from the model itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Schema {
    /// Inputs in model order.
    pub inputs: Vec<TensorSpec>,
    /// Outputs in model order.
    pub outputs: Vec<TensorSpec>,
}

/// One file of a model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileEntry {
    /// What the file is (`model`, `tokenizer`, ...).
    pub role: String,
    /// The blob digest of its bytes.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What is known about a model: enough to fetch, check and run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The model's name in the hub.
    pub name: String,
    /// Its version string.
    pub version: String,
    /// Storage format.
    pub format: ModelFormat,
    /// Its files.
    pub files: Vec<FileEntry>,
    /// Input and output schema.
    pub schema: Schema,
    /// License identifier or text (may be empty).
    pub license: String,
    /// Who publishes it.
    pub publisher: PublicKey,
}

fn put_spec(s: &mut impl Sink, spec: &TensorSpec) {
    s.put_str(&spec.name);
    s.put_u8(spec.dtype.map_or(0, DType::tag));
    match &spec.shape {
        None => s.put_u8(0),
        Some(dims) => {
            s.put_u8(1);
            s.put_u32(len_u32(dims.len()));
            for d in dims {
                match d {
                    Dim::Fixed(n) => {
                        s.put_u8(0);
                        s.put_u64(*n);
                    }
                    Dim::Symbol(name) => {
                        s.put_u8(1);
                        s.put_str(name);
                    }
                }
            }
        }
    }
}

fn read_spec(r: &mut Reader<'_>) -> Result<TensorSpec, DecodeError> {
    let name = r.str()?;
    let at = r.offset();
    let tag = r.u8()?;
    let dtype = match tag {
        0 => None,
        t => Some(DType::from_tag(t).ok_or(DecodeError::BadTag {
            what: "dtype",
            tag,
            offset: at,
        })?),
    };
    let at = r.offset();
    let shape = match r.u8()? {
        0 => None,
        1 => {
            let rank = r.u32()? as usize;
            if rank > r.remaining() {
                return Err(DecodeError::Truncated {
                    offset: r.offset(),
                    needed: rank,
                });
            }
            let mut dims = Vec::with_capacity(rank);
            for _ in 0..rank {
                let at = r.offset();
                dims.push(match r.u8()? {
                    0 => Dim::Fixed(r.u64()?),
                    1 => Dim::Symbol(r.str()?),
                    tag => {
                        return Err(DecodeError::BadTag {
                            what: "dim",
                            tag,
                            offset: at,
                        });
                    }
                });
            }
            Some(dims)
        }
        tag => {
            return Err(DecodeError::BadTag {
                what: "shape",
                tag,
                offset: at,
            });
        }
    };
    Ok(TensorSpec { name, dtype, shape })
}

fn read_list<T>(
    r: &mut Reader<'_>,
    min_bytes: usize,
    f: impl Fn(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let n = r.u32()? as usize;
    if n > r.remaining() / min_bytes.max(1) {
        return Err(DecodeError::Truncated {
            offset: r.offset(),
            needed: n * min_bytes,
        });
    }
    (0..n).map(|_| f(r)).collect()
}

impl Manifest {
    /// The canonical bytes the model id commits to.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = Vec::new();
        s.put_u8(MANIFEST_VERSION);
        s.put_str(&self.name);
        s.put_str(&self.version);
        s.put_u8(self.format.tag());
        s.put_u32(len_u32(self.files.len()));
        for f in &self.files {
            s.put_str(&f.role);
            s.put(f.digest.as_bytes());
            s.put_u64(f.size);
        }
        for list in [&self.schema.inputs, &self.schema.outputs] {
            s.put_u32(len_u32(list.len()));
            for spec in list {
                put_spec(&mut s, spec);
            }
        }
        s.put_str(&self.license);
        s.put(self.publisher.as_bytes());
        s
    }

    /// Decodes canonical manifest bytes.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != MANIFEST_VERSION {
            return Err(DecodeError::Invalid(format!(
                "unknown manifest version {version}"
            )));
        }
        let name = r.str()?;
        let model_version = r.str()?;
        let at = r.offset();
        let tag = r.u8()?;
        let format = ModelFormat::from_tag(tag).ok_or(DecodeError::BadTag {
            what: "format",
            tag,
            offset: at,
        })?;
        let files = read_list(&mut r, 44, |r| {
            Ok(FileEntry {
                role: r.str()?,
                digest: Digest::from_bytes(Kind::Blob, r.array()?),
                size: r.u64()?,
            })
        })?;
        let inputs = read_list(&mut r, 6, read_spec)?;
        let outputs = read_list(&mut r, 6, read_spec)?;
        let license = r.str()?;
        let publisher =
            PublicKey::from_bytes(&r.array()?).map_err(|e| DecodeError::Invalid(e.to_string()))?;
        r.finish()?;
        Ok(Manifest {
            name,
            version: model_version,
            format,
            files,
            schema: Schema { inputs, outputs },
            license,
            publisher,
        })
    }

    /// The model id.
    pub fn id(&self) -> Digest {
        Digest::of(Kind::Model, &self.encode())
    }

    /// The file with `role`.
    pub fn file(&self, role: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == role)
    }

    /// Signs the model id with the publisher's key.
    pub fn sign(self, key: &SecretKey) -> SignedManifest {
        let signature = key.sign(self.id().as_bytes());
        SignedManifest {
            manifest: self,
            signature,
        }
    }
}

/// A manifest with the publisher's signature over its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedManifest {
    /// The manifest.
    pub manifest: Manifest,
    /// ed25519 signature by `manifest.publisher` over the model id bytes.
    pub signature: Signature,
}

impl SignedManifest {
    /// Checks the publisher's signature.
    pub fn verify(&self) -> bool {
        self.manifest
            .publisher
            .verify(self.manifest.id().as_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_spec() -> impl Strategy<Value = TensorSpec> {
        (
            "[a-z]{1,6}",
            proptest::option::of(0usize..12),
            proptest::option::of(proptest::collection::vec(
                prop_oneof![
                    any::<u64>().prop_map(Dim::Fixed),
                    "[a-z]{1,4}".prop_map(Dim::Symbol)
                ],
                0..4,
            )),
        )
            .prop_map(|(name, d, shape)| TensorSpec {
                name,
                dtype: d.map(|i| DType::ALL[i]),
                shape,
            })
    }

    proptest! {
        #[test]
        fn manifest_round_trips(
            name in "[a-z-]{1,10}", version in "[0-9.]{1,5}", license in ".{0,10}",
            sizes in proptest::collection::vec(any::<u64>(), 0..3),
            inputs in proptest::collection::vec(arb_spec(), 0..3),
            outputs in proptest::collection::vec(arb_spec(), 0..3),
            seed in any::<[u8; 32]>(),
        ) {
            let key = SecretKey::from_bytes(&seed);
            let files = sizes.iter().enumerate().map(|(i, &size)| FileEntry {
                role: format!("f{i}"), digest: Digest::of(Kind::Blob, &size.to_le_bytes()), size,
            }).collect();
            let m = Manifest {
                name, version, format: ModelFormat::Onnx, files,
                schema: Schema { inputs, outputs }, license, publisher: key.public(),
            };
            prop_assert_eq!(Manifest::decode(&m.encode()).unwrap(), m.clone());
            let signed = m.sign(&key);
            prop_assert!(signed.verify());
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Manifest::decode(&bytes);
        }
    }
}
