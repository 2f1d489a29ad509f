//! The sample models `vouch up` offers, imported from the cache that
//! `scripts/fetch-models.sh` fills, through the same push path as any
//! upload.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use vouch_types::Dim;

use crate::error::NodeError;
use crate::service::{PushOptions, Service};

/// Where `scripts/fetch-models.sh` caches the sample models:
/// `$VOUCH_MODELS`, or `~/.cache/vouch/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("VOUCH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
                .join(".cache/vouch/models")
        })
}

/// A sample model: file in the cache, hub name, and input shape overrides
/// (for models whose declared shapes tract cannot use).
pub struct Sample {
    /// File name in the models cache.
    pub file: &'static str,
    /// Hub name.
    pub name: &'static str,
    /// License of the upstream model.
    pub license: &'static str,
    /// `(input, dims)` overrides.
    pub input_shapes: &'static [(&'static str, &'static [SampleDim])],
    /// The model's `tokenizer.json` in the same directory, if it embeds text.
    pub tokenizer: Option<&'static str>,
}

/// A dim in a sample's override.
pub enum SampleDim {
    /// Fixed size.
    Fixed(u64),
    /// Symbol.
    Symbol(&'static str),
}

/// The samples, in `../shared/MODELS.md` order.
pub const SAMPLES: &[Sample] = &[
    // magika's one-hot BroadcastTo needs a concrete batch in tract 0.23.
    Sample {
        file: "magika.onnx",
        name: "magika",
        license: "Apache-2.0",
        input_shapes: &[("bytes", &[SampleDim::Fixed(1), SampleDim::Fixed(2048)])],
        tokenizer: None,
    },
    Sample {
        file: "minilm-int8.onnx",
        name: "minilm-int8",
        license: "Apache-2.0",
        input_shapes: &[],
        tokenizer: Some("minilm.tokenizer.json"),
    },
    Sample {
        file: "paraphrase-minilm-l3.onnx",
        name: "paraphrase-minilm-l3",
        license: "Apache-2.0",
        input_shapes: &[],
        tokenizer: None,
    },
    Sample {
        file: "silero-vad.onnx",
        name: "silero-vad",
        license: "MIT",
        input_shapes: &[],
        tokenizer: None,
    },
    // The file declares [3, 2]; its coefficients are 3x4.
    Sample {
        file: "iris.onnx",
        name: "iris",
        license: "MIT",
        input_shapes: &[(
            "float_input",
            &[SampleDim::Symbol("N"), SampleDim::Fixed(4)],
        )],
        tokenizer: None,
    },
    // SmolLM2-135M-Instruct (GGUF Q4_1): tokenizer and chat template
    // travel inside the file.
    Sample {
        file: "smollm2-135m-instruct.q4_1.gguf",
        name: "smollm2-135m",
        license: "Apache-2.0",
        input_shapes: &[],
        tokenizer: None,
    },
];

impl Sample {
    /// Push options for this sample.
    pub fn options(&self) -> PushOptions {
        let mut o = PushOptions {
            name: self.name.into(),
            version: Some("1".into()),
            license: self.license.into(),
            ..PushOptions::default()
        };
        for (input, dims) in self.input_shapes {
            let dims = dims
                .iter()
                .map(|d| match d {
                    SampleDim::Fixed(n) => Dim::Fixed(*n),
                    SampleDim::Symbol(s) => Dim::Symbol(s.to_string()),
                })
                .collect();
            o.input_shapes.insert(input.to_string(), dims);
        }
        o
    }
}

/// The provable sample: the MNIST MLP that `scripts/mnist-models` trains
/// (`scripts/up` runs it), pushed provable for pixels in [0, 1], so that
/// `vouch up` answers `verify: "proof"` out of the box. Kept apart from
/// [`SAMPLES`] (which the benchmarks time one by one): it is trained here,
/// not fetched.
pub const PROVABLE: (&str, &str, f64) = ("mnist-mlp.onnx", "mnist", 1.0);

/// Imports the provable sample from `dir` when it is there and the node
/// does not have it yet. Returns its name when imported.
pub async fn import_provable(node: &Service, dir: &Path) -> Option<String> {
    let (file, name, range) = PROVABLE;
    if node.find_model(name, None).is_ok() {
        return None;
    }
    let path = dir.join(file);
    if !path.exists() {
        tracing::info!(file = %path.display(), "no provable sample; scripts/mnist-models trains it");
        return None;
    }
    let options = PushOptions {
        name: name.into(),
        version: Some("1".into()),
        license: "CC-BY-SA-3.0".into(),
        provable: Some(vouch_proof::circuit::Options {
            input_range: range,
            ..Default::default()
        }),
        ..PushOptions::default()
    };
    match push_file(node, &path, options).await {
        Ok(_) => Some(name.to_string()),
        Err(e) => {
            tracing::error!(model = name, error = %e, "importing the provable sample failed");
            None
        }
    }
}

/// Pushes a model file through the node's upload path.
pub async fn push_file(
    node: &Service,
    path: &Path,
    options: PushOptions,
) -> Result<vouch_store::ModelRecord, NodeError> {
    let data = tokio::fs::read(path)
        .await
        .map_err(|e| NodeError::BadRequest(format!("reading {}: {e}", path.display())))?;
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(1 << 20)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    node.push_model(options, futures_util::stream::iter(chunks))
        .await
}

/// Imports every sample found in `dir` that the node does not have yet.
/// Returns the names imported; missing files are logged, not fatal.
pub async fn import(node: &Service, dir: &Path) -> Vec<String> {
    let mut imported = Vec::new();
    for sample in SAMPLES {
        if node.find_model(sample.name, None).is_ok() {
            continue;
        }
        let path = dir.join(sample.file);
        if !path.exists() {
            tracing::warn!(file = %path.display(), "sample model not found; run scripts/fetch-models.sh");
            continue;
        }
        let mut options = sample.options();
        if let Some(tok) = sample.tokenizer {
            let tok = dir.join(tok);
            match tokio::fs::read(&tok).await {
                Ok(bytes) => match node.put_blob(bytes).await {
                    Ok((digest, _)) => options.tokenizer = Some(digest),
                    Err(e) => tracing::error!(error = %e, "storing the tokenizer failed"),
                },
                Err(e) => {
                    tracing::warn!(file = %tok.display(), error = %e, "sample tokenizer not found")
                }
            }
        }
        match push_file(node, &path, options).await {
            Ok(_) => imported.push(sample.name.to_string()),
            Err(e) => tracing::error!(model = sample.name, error = %e, "importing sample failed"),
        }
    }
    imported
}
