//! Sentence embeddings from an ONNX encoder (e.g. MiniLM) and its
//! tokenizer: tokenize with the model's own `tokenizer.json`, run the
//! encoder, mean-pool the token states under the attention mask, and
//! L2-normalise, as sentence-transformers does.
//!
//! A batch pads every text to its longest, so texts of mixed lengths waste
//! most of the encoder's work on padding. [`TextEncoder::encode`] sorts
//! them by length and splits them into runs ([`runs`]) that minimise
//! padded tokens plus a fixed cost per run. On MiniLM (one core), eight
//! texts of 9–41 tokens take 74 ms as one batch of 8 × 41 tokens and 43 ms
//! as runs of 3 × 14, 3 × 27 and 2 × 41.

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

/// What one run of the encoder costs beyond its padded tokens, in tokens
/// (MiniLM on one core: about 2 ms a run against 0.18 ms a token).
pub const RUN_COST_TOKENS: usize = 16;

/// Some of the texts, tokenized as one run of the encoder.
#[derive(Debug)]
pub struct Encoded {
    /// Which texts (indices into the request) the batch's rows hold, in
    /// row order.
    pub rows: Vec<usize>,
    /// `input_ids`, `attention_mask`, `token_type_ids`: int64 [batch, seq].
    pub inputs: TensorMap,
    /// The attention mask, row by row.
    pub mask: Vec<Vec<i64>>,
    /// Real (unpadded) tokens over the run's texts.
    pub tokens: usize,
}

/// Splits texts of token lengths `lengths` into runs, each padded to its
/// longest text, minimising the padded tokens plus [`RUN_COST_TOKENS`] per
/// run. Each run lists text indices, shortest first; runs go from the
/// shortest texts to the longest, and every text is in exactly one.
pub fn runs(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    let len = |k: usize| lengths[order[k]];
    // best[j]: the cheapest split of the j shortest texts; cut[j]: where
    // its last run starts. A run of sorted texts k..j costs the fixed cost
    // plus (j - k) rows of the longest one, len(j - 1).
    let n = order.len();
    let (mut best, mut cut) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for j in 1..=n {
        (best[j], cut[j]) = (0..j)
            .map(|k| (best[k] + RUN_COST_TOKENS + (j - k) * len(j - 1), k))
            .min()
            .expect("j >= 1");
    }
    let mut runs = Vec::new();
    let mut j = n;
    while j > 0 {
        runs.push(order[cut[j]..j].to_vec());
        j = cut[j];
    }
    runs.reverse();
    runs
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

    /// Tokenizes texts into padded batches, one per run of the encoder
    /// ([`runs`]). Text longer than [`MAX_TOKENS`] is refused, never
    /// truncated.
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Encoded>, EngineError> {
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
        let lengths: Vec<usize> = rows.iter().map(|r| r.get_ids().len()).collect();
        runs(&lengths)
            .into_iter()
            .map(|run| batch(&rows, run))
            .collect()
    }
}

/// Pads the texts `run` of `rows` into one batch.
fn batch(rows: &[tokenizers::Encoding], run: Vec<usize>) -> Result<Encoded, EngineError> {
    let seq = run
        .iter()
        .map(|&i| rows[i].get_ids().len())
        .max()
        .unwrap_or(0);
    let n = run.len();
    let (mut ids, mut mask, mut types) = (
        vec![0i64; n * seq],
        vec![0i64; n * seq],
        vec![0i64; n * seq],
    );
    let mut tokens = 0;
    for (r, enc) in run.iter().map(|&i| &rows[i]).enumerate() {
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
    let t =
        |v: &[i64]| Tensor::from_i64(shape.clone(), v).map_err(|e| EngineError::Run(e.to_string()));
    let mut inputs = TensorMap::new();
    inputs.insert("input_ids", t(&ids)?);
    inputs.insert("attention_mask", t(&mask)?);
    inputs.insert("token_type_ids", t(&types)?);
    Ok(Encoded {
        rows: run,
        inputs,
        mask: mask.chunks(seq.max(1)).map(<[i64]>::to_vec).collect(),
        tokens,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn covers_each_once(runs: &[Vec<usize>], n: usize) {
        let mut seen: Vec<usize> = runs.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn texts_of_one_length_run_together() {
        assert_eq!(runs(&[12, 12, 12, 12]), vec![vec![0, 1, 2, 3]]);
        assert_eq!(runs(&[7]), vec![vec![0]]);
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn mixed_lengths_split_where_padding_costs_more_than_a_run() {
        // The shape of the embeddings benchmark: short, medium and long.
        let lengths = [13, 26, 38, 14, 27, 39, 13, 26];
        let split = runs(&lengths);
        assert_eq!(split, vec![vec![0, 6, 3], vec![1, 7, 4], vec![2, 5]]);
        covers_each_once(&split, lengths.len());
        let cost = |runs: &[Vec<usize>]| -> usize {
            runs.iter()
                .map(|r| RUN_COST_TOKENS + r.len() * r.iter().map(|&i| lengths[i]).max().unwrap())
                .sum()
        };
        assert!(cost(&split) < cost(&[(0..8).collect()]));
        // A length close to its neighbours does not earn a run of its own.
        assert_eq!(runs(&[20, 21, 22]), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn many_texts_are_split_into_few_runs() {
        let lengths: Vec<usize> = (0..2048).map(|i| 5 + (i * 7919) % 500).collect();
        let split = runs(&lengths);
        covers_each_once(&split, lengths.len());
        assert!(split.len() > 1 && split.len() < 200, "{}", split.len());
        for pair in split.windows(2) {
            let longest = pair[0].iter().map(|&i| lengths[i]).max().unwrap();
            assert!(pair[1].iter().all(|&i| lengths[i] >= longest));
        }
    }
}
