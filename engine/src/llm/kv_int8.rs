//! KIVI-style 8-bit KV cache storage (Liu et al. 2024, "KIVI").
//!
//! Keys have outlier *channels* (a few dims are large for every token), so
//! they are quantized per channel over groups of [`KEY_GROUP`] tokens; values
//! have no such structure and are quantized per token (per KV head). The
//! newest keys that do not yet fill a group stay in f32 (KIVI's residual), so
//! a group's range is known before it is quantized.
//!
//! Quantization is asymmetric, `code = round((x - min) / scale)` with
//! `scale = (max - min) / 255`, so each element is off by at most `scale / 2`
//! (the bound the tests check).

/// Tokens per key quantization group. Divides the sparse kernel's key block
/// (64), so a block's summary is recomputed whenever one of its groups is
/// requantized.
pub const KEY_GROUP: usize = 32;

/// The stored arrays of an [`Int8Kv`], borrowed: what the prefix cache
/// writes to disk and reads back.
#[derive(Debug, PartialEq)]
pub(crate) struct Parts<'a> {
    pub key_codes: &'a [u8],
    pub key_params: &'a [(f32, f32)],
    pub key_tail: &'a [f32],
    pub value_codes: &'a [u8],
    pub value_params: &'a [(f32, f32)],
}

/// Keys and values of one layer in 8 bits, plus the f32 residual.
#[derive(Debug, Clone)]
pub struct Int8Kv {
    row: usize,
    head_dim: usize,
    key_codes: Vec<u8>,
    /// `(scale, min)` per key group and channel.
    key_params: Vec<(f32, f32)>,
    key_tail: Vec<f32>,
    value_codes: Vec<u8>,
    /// `(scale, min)` per token and KV head.
    value_params: Vec<(f32, f32)>,
}

impl Int8Kv {
    /// Empty storage for rows of `row` values, `head_dim` per KV head.
    pub fn new(row: usize, head_dim: usize) -> Self {
        Self {
            row,
            head_dim,
            key_codes: Vec::new(),
            key_params: Vec::new(),
            key_tail: Vec::new(),
            value_codes: Vec::new(),
            value_params: Vec::new(),
        }
    }

    /// The stored arrays, for writing the cache out.
    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            key_codes: &self.key_codes,
            key_params: &self.key_params,
            key_tail: &self.key_tail,
            value_codes: &self.value_codes,
            value_params: &self.value_params,
        }
    }

    /// Storage holding the arrays [`Int8Kv::parts`] lists, in its order
    /// (their lengths checked by the reader).
    pub(crate) fn from_parts(
        (row, head_dim): (usize, usize),
        key_codes: Vec<u8>,
        key_params: Vec<(f32, f32)>,
        key_tail: Vec<f32>,
        value_codes: Vec<u8>,
        value_params: Vec<(f32, f32)>,
    ) -> Self {
        Self {
            row,
            head_dim,
            key_codes,
            key_params,
            key_tail,
            value_codes,
            value_params,
        }
    }

    /// Tokens stored.
    pub fn len(&self) -> usize {
        self.value_params.len() / (self.row / self.head_dim)
    }

    /// Whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.value_params.is_empty()
    }

    /// Appends rotated keys and values of whole tokens (`[tokens, row]`).
    pub fn append(&mut self, keys: &[f32], values: &[f32]) {
        for token in values.chunks_exact(self.row) {
            for head in token.chunks_exact(self.head_dim) {
                let (scale, min) = range_params(head.iter().copied());
                self.value_params.push((scale, min));
                self.value_codes
                    .extend(head.iter().map(|&x| quantize(x, scale, min)));
            }
        }
        self.key_tail.extend_from_slice(keys);
        let group = KEY_GROUP * self.row;
        let full = self.key_tail.len() / group * group;
        for block in self.key_tail[..full].chunks_exact(group) {
            let first = self.key_params.len();
            for c in 0..self.row {
                let column = block.iter().skip(c).step_by(self.row).copied();
                self.key_params.push(range_params(column));
            }
            let params = &self.key_params[first..];
            self.key_codes.extend(
                block
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| quantize(x, params[i % self.row].0, params[i % self.row].1)),
            );
        }
        self.key_tail.drain(..full);
    }

    /// Writes every stored key and value as f32 into `keys`/`values`
    /// (resized to `[len, row]`).
    pub fn dequantize_into(&self, keys: &mut Vec<f32>, values: &mut Vec<f32>) {
        let group = KEY_GROUP * self.row;
        keys.clear();
        for (g, codes) in self.key_codes.chunks_exact(group).enumerate() {
            let params = &self.key_params[g * self.row..(g + 1) * self.row];
            keys.extend(
                codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| dequantize(c, params[i % self.row])),
            );
        }
        keys.extend_from_slice(&self.key_tail);
        values.clear();
        for (head, &params) in self
            .value_codes
            .chunks_exact(self.head_dim)
            .zip(&self.value_params)
        {
            values.extend(head.iter().map(|&c| dequantize(c, params)));
        }
    }

    /// Bytes held: codes, parameters and the f32 residual.
    pub fn bytes(&self) -> usize {
        let params = (self.key_params.len() + self.value_params.len()) * 8;
        self.key_codes.len() + self.value_codes.len() + params + self.key_tail.len() * 4
    }

    /// Forgets every token (allocations are kept).
    pub fn clear(&mut self) {
        self.key_codes.clear();
        self.key_params.clear();
        self.key_tail.clear();
        self.value_codes.clear();
        self.value_params.clear();
    }
}

/// `(scale, min)` covering the values' range; a constant range gets scale 1
/// so every code decodes to `min` exactly.
fn range_params(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in values {
        min = min.min(v);
        max = max.max(v);
    }
    let scale = (max - min) / 255.0;
    if scale > 0.0 {
        (scale, min)
    } else {
        (1.0, min)
    }
}

#[inline]
fn quantize(x: f32, scale: f32, min: f32) -> u8 {
    ((x - min) / scale).round().clamp(0.0, 255.0) as u8
}

#[inline]
fn dequantize(code: u8, (scale, min): (f32, f32)) -> f32 {
    code as f32 * scale + min
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Random rows with outlier channels, as real keys have.
    fn rows(tokens: usize, row: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..tokens * row)
            .map(|i| {
                let outlier = if i % row == 3 { 20.0 } else { 1.0 };
                outlier * rng.random_range(-2.0f32..2.0)
            })
            .collect()
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        let (row, d) = (2 * 64, 64);
        let mut kv = Int8Kv::new(row, d);
        let (keys, values) = (rows(100, row, 1), rows(100, row, 2));
        // Appended in uneven pieces, as prefill chunks and decode steps do.
        for (a, b) in [(0, 7), (7, 40), (40, 41), (41, 100)] {
            kv.append(&keys[a * row..b * row], &values[a * row..b * row]);
        }
        assert_eq!(kv.len(), 100);
        let (mut k, mut v) = (Vec::new(), Vec::new());
        kv.dequantize_into(&mut k, &mut v);
        assert_eq!((k.len(), v.len()), (keys.len(), values.len()));
        // Tokens 96..100 are the f32 residual: exact.
        assert_eq!(&k[96 * row..], &keys[96 * row..]);
        for t in 0..96 {
            for c in 0..row {
                let group = t / KEY_GROUP * KEY_GROUP;
                let column: Vec<f32> = (group..group + KEY_GROUP)
                    .map(|s| keys[s * row + c])
                    .collect();
                let (scale, _) = range_params(column.into_iter());
                let err = (k[t * row + c] - keys[t * row + c]).abs();
                assert!(
                    err <= scale * 0.5 + 1e-5,
                    "key t{t} c{c}: {err} > {scale}/2"
                );
            }
        }
        for (t, (got, want)) in v.chunks(d).zip(values.chunks(d)).enumerate() {
            let (scale, _) = range_params(want.iter().copied());
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= scale * 0.5 + 1e-5, "value head-row {t}");
            }
        }
        // 8-bit codes plus parameters and residual: about a third of f32.
        let f32_bytes = 2 * 100 * row * 4;
        assert!(kv.bytes() * 100 < f32_bytes * 35, "{} bytes", kv.bytes());
    }
}
