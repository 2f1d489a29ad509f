//! Sentence embeddings from an ONNX encoder (e.g. MiniLM) and its
//! tokenizer: tokenize with the model's own `tokenizer.json`, run the
//! encoder, mean-pool the token states under the attention mask, and
//! L2-normalise, as sentence-transformers does.

use tokenizers::Tokenizer;
use vouch_types::{DType, Tensor, TensorMap};

use crate::EngineError;

/// Longest input, in tokens, after which text is refused (BERT-style
/// encoders have 512 positions).
pub const MAX_TOKENS: usize = 512;

/// A tokenizer for an embedding model.
pub struct TextEncoder {
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextEncoder")
    }
}

/// Tokenized texts as the encoder's inputs.
#[derive(Debug)]
pub struct Encoded {
    /// `input_ids`, `attention_mask`, `token_type_ids`: int64 [batch, seq].
    pub inputs: TensorMap,
    /// The attention mask, row by row.
    pub mask: Vec<Vec<i64>>,
    /// Real (unpadded) tokens over all texts.
    pub tokens: usize,
}

impl TextEncoder {
    /// Parses a Hugging Face `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<TextEncoder, EngineError> {
        let mut tokenizer = Tokenizer::from_bytes(bytes).map_err(|e| EngineError::Malformed {
            format: "tokenizer.json",
            detail: e.to_string(),
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EngineError::Load(e.to_string()))?;
        Ok(TextEncoder { tokenizer })
    }

    /// Tokenizes texts into a padded batch. Text longer than
    /// [`MAX_TOKENS`] is refused, never truncated.
    pub fn encode(&self, texts: &[String]) -> Result<Encoded, EngineError> {
        let mut rows = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let enc = self
                .tokenizer
                .encode(text.as_str(), true)
                .map_err(|e| EngineError::Run(format!("tokenizing input {i}: {e}")))?;
            if enc.get_ids().len() > MAX_TOKENS {
                return Err(EngineError::Input(crate::InputError::ContextLength {
                    prompt: enc.get_ids().len(),
                    max_tokens: 0,
                    context: MAX_TOKENS,
                }));
            }
            rows.push(enc);
        }
        let seq = rows.iter().map(|r| r.get_ids().len()).max().unwrap_or(0);
        let n = rows.len();
        let (mut ids, mut mask, mut types) = (
            vec![0i64; n * seq],
            vec![0i64; n * seq],
            vec![0i64; n * seq],
        );
        let mut tokens = 0;
        for (r, enc) in rows.iter().enumerate() {
            for (j, ((&id, &m), &t)) in enc
                .get_ids()
                .iter()
                .zip(enc.get_attention_mask())
                .zip(enc.get_type_ids())
                .enumerate()
            {
                ids[r * seq + j] = i64::from(id);
                mask[r * seq + j] = i64::from(m);
                types[r * seq + j] = i64::from(t);
            }
            tokens += enc.get_ids().len();
        }
        let shape = vec![n as u64, seq as u64];
        let t = |v: &[i64]| {
            Tensor::from_i64(shape.clone(), v).map_err(|e| EngineError::Run(e.to_string()))
        };
        let mut inputs = TensorMap::new();
        inputs.insert("input_ids", t(&ids)?);
        inputs.insert("attention_mask", t(&mask)?);
        inputs.insert("token_type_ids", t(&types)?);
        Ok(Encoded {
            inputs,
            mask: mask.chunks(seq.max(1)).map(<[i64]>::to_vec).collect(),
            tokens,
        })
    }
}

/// Mean-pools an encoder output under the mask (rank 3: [batch, seq,
/// dim]; a rank-2 output is already pooled) and L2-normalises each row.
pub fn pool(output: &Tensor, mask: &[Vec<i64>]) -> Result<Vec<Vec<f32>>, EngineError> {
    if output.dtype() != DType::F32 {
        return Err(EngineError::Run(format!(
            "the encoder's output is {}; embeddings need float32",
            output.dtype()
        )));
    }
    let v: Vec<f32> = output
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let shape = output.shape();
    let rows: Vec<Vec<f32>> = match *shape {
        [b, s, d] => {
            let (b, s, d) = (b as usize, s as usize, d as usize);
            (0..b)
                .map(|r| {
                    let mut acc = vec![0f32; d];
                    let mut count = 0f32;
                    for j in 0..s {
                        let m = mask.get(r).and_then(|m| m.get(j)).copied().unwrap_or(0);
                        if m != 0 {
                            count += 1.0;
                            let row = &v[(r * s + j) * d..(r * s + j + 1) * d];
                            for (a, x) in acc.iter_mut().zip(row) {
                                *a += x;
                            }
                        }
                    }
                    acc.iter_mut().for_each(|a| *a /= count.max(1e-9));
                    acc
                })
                .collect()
        }
        [b, d] => v
            .chunks(d as usize)
            .take(b as usize)
            .map(<[f32]>::to_vec)
            .collect(),
        _ => {
            return Err(EngineError::Run(format!(
                "the encoder's output has shape {shape:?}; embeddings need [batch, seq, dim] or [batch, dim]"
            )));
        }
    };
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            r.iter_mut().for_each(|x| *x /= norm);
            r
        })
        .collect())
}
