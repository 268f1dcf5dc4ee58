//! The key/value cache of a session, in f32, f16 or 8 bits.
//!
//! Layout per layer: `[position, kv_head, head_dim]`, appended one chunk at a
//! time, as `folio_kernels::attention` expects. Kernels read f32, so an f16
//! or int8 cache is expanded into one layer-sized scratch buffer per
//! attention call ([`LayerKv::view`]): the cache for all layers stays small
//! and only one layer exists in f32 at a time. That trades time (a pass over
//! the layer's cache per call) for memory; the benchmark reports both.

mod io;

use folio_kernels::attention::KeySummaries;
use half::f16;
use half::slice::HalfFloatSliceExt;
use serde::{Deserialize, Serialize};

use super::kv_int8::Int8Kv;

/// Element type of cached keys and values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvDtype {
    /// Exact: what the forward pass computed.
    #[default]
    F32,
    /// Half the bytes; rounding error ~1e-3 relative.
    F16,
    /// KIVI-style 8 bits (keys per channel, values per token): ~0.3× f32.
    Int8,
}

impl KvDtype {
    /// Name for flags and reports.
    pub fn name(&self) -> &'static str {
        match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::Int8 => "int8",
        }
    }

    /// Approximate bytes per cached value, for planning before a cache
    /// exists (int8: code plus its share of the scale/min parameters).
    pub fn bytes_per_value(&self, head_dim: usize) -> f64 {
        match self {
            KvDtype::F32 => 4.0,
            KvDtype::F16 => 2.0,
            // Keys: 8 bytes of params per channel per 32 tokens; values: 8
            // bytes per head per token. Averaged over keys and values.
            KvDtype::Int8 => 1.0 + (8.0 / 32.0 + 8.0 / head_dim as f64) / 2.0,
        }
    }
}

#[derive(Debug, Clone)]
enum Store {
    F32 { keys: Vec<f32>, values: Vec<f32> },
    F16 { keys: Vec<f16>, values: Vec<f16> },
    Int8(Int8Kv),
}

/// Keys and values of one layer, plus the key summaries sparse attention
/// reads (kept beside the keys so decode updates them incrementally).
#[derive(Debug, Clone)]
pub struct LayerKv {
    store: Store,
    summaries: Option<KeySummaries>,
}

/// f32 buffers a compressed layer is expanded into for one attention call.
#[derive(Debug, Default)]
pub struct KvScratch {
    keys: Vec<f32>,
    values: Vec<f32>,
}

impl KvScratch {
    /// Bytes of the expanded layer (part of a session's peak memory).
    pub fn bytes(&self) -> usize {
        (self.keys.capacity() + self.values.capacity()) * 4
    }
}

/// One layer's cache as the attention kernels read it.
pub struct KvView<'a> {
    /// Rotated keys `[len, n_kv_heads, head_dim]` as f32 (expanded when stored smaller).
    pub keys: &'a [f32],
    /// Values, in the layout of `keys`.
    pub values: &'a [f32],
    /// Present when the session's attention asked for key summaries.
    pub summaries: Option<&'a KeySummaries>,
}

impl LayerKv {
    fn new(dtype: KvDtype, row: usize, head_dim: usize) -> Self {
        let store = match dtype {
            KvDtype::F32 => Store::F32 {
                keys: Vec::new(),
                values: Vec::new(),
            },
            KvDtype::F16 => Store::F16 {
                keys: Vec::new(),
                values: Vec::new(),
            },
            KvDtype::Int8 => Store::Int8(Int8Kv::new(row, head_dim)),
        };
        Self {
            store,
            summaries: None,
        }
    }

    /// Appends one chunk's rotated keys and its values, `[tokens, row]`.
    pub fn append(&mut self, keys: &[f32], values: &[f32]) {
        match &mut self.store {
            Store::F32 { keys: k, values: v } => {
                k.extend_from_slice(keys);
                v.extend_from_slice(values);
            }
            Store::F16 { keys: k, values: v } => {
                let (k0, v0) = (k.len(), v.len());
                k.resize(k0 + keys.len(), f16::ZERO);
                v.resize(v0 + values.len(), f16::ZERO);
                k[k0..].convert_from_f32_slice(keys);
                v[v0..].convert_from_f32_slice(values);
            }
            Store::Int8(q) => q.append(keys, values),
        }
    }

    /// The layer in f32 (expanded into `scratch` unless stored as f32), with
    /// its key summaries brought up to date for `len` tokens.
    pub fn view<'a>(&'a mut self, scratch: &'a mut KvScratch, len: usize) -> KvView<'a> {
        let (keys, values): (&[f32], &[f32]) = match &self.store {
            Store::F32 { keys, values } => (keys, values),
            Store::F16 { keys, values } => {
                scratch.keys.resize(keys.len(), 0.0);
                scratch.values.resize(values.len(), 0.0);
                keys.convert_to_f32_slice(&mut scratch.keys);
                values.convert_to_f32_slice(&mut scratch.values);
                (&scratch.keys, &scratch.values)
            }
            Store::Int8(q) => {
                q.dequantize_into(&mut scratch.keys, &mut scratch.values);
                (&scratch.keys, &scratch.values)
            }
        };
        if let Some(s) = &mut self.summaries {
            s.update(keys, len);
        }
        KvView {
            keys,
            values,
            summaries: self.summaries.as_ref(),
        }
    }

    /// Keeps, for each KV head `h`, the rows `keep[h]` (equally many per
    /// head, ascending) in that order; key summaries are rebuilt on the
    /// next view. An int8 layer is expanded, gathered and quantized again.
    fn gather(&mut self, keep: &[Vec<usize>], row: usize, head_dim: usize) {
        fn pick<T: Copy>(src: &[T], keep: &[Vec<usize>], row: usize, d: usize) -> Vec<T> {
            let kept = keep.first().map_or(0, Vec::len);
            let mut out = Vec::with_capacity(kept * row);
            for i in 0..kept {
                for (h, rows) in keep.iter().enumerate() {
                    out.extend_from_slice(&src[rows[i] * row + h * d..][..d]);
                }
            }
            out
        }
        self.store = match &self.store {
            Store::F32 { keys, values } => Store::F32 {
                keys: pick(keys, keep, row, head_dim),
                values: pick(values, keep, row, head_dim),
            },
            Store::F16 { keys, values } => Store::F16 {
                keys: pick(keys, keep, row, head_dim),
                values: pick(values, keep, row, head_dim),
            },
            Store::Int8(q) => {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                q.dequantize_into(&mut k, &mut v);
                let mut fresh = Int8Kv::new(row, head_dim);
                fresh.append(
                    &pick(&k, keep, row, head_dim),
                    &pick(&v, keep, row, head_dim),
                );
                Store::Int8(fresh)
            }
        };
        if let Some(s) = &self.summaries {
            self.summaries = Some(KeySummaries::new(s.block(), row / head_dim, head_dim));
        }
    }

    fn bytes(&self) -> usize {
        let data = match &self.store {
            Store::F32 { keys, values } => (keys.len() + values.len()) * 4,
            Store::F16 { keys, values } => (keys.len() + values.len()) * 2,
            Store::Int8(q) => q.bytes(),
        };
        data + self.summaries.as_ref().map_or(0, |s| s.bytes())
    }

    fn reserve(&mut self, values: usize) {
        match &mut self.store {
            Store::F32 { keys, values: v } => {
                keys.reserve(values);
                v.reserve(values);
            }
            Store::F16 { keys, values: v } => {
                keys.reserve(values);
                v.reserve(values);
            }
            Store::Int8(_) => {}
        }
    }

    fn clear(&mut self) {
        match &mut self.store {
            Store::F32 { keys, values } => {
                keys.clear();
                values.clear();
            }
            Store::F16 { keys, values } => {
                keys.clear();
                values.clear();
            }
            Store::Int8(q) => q.clear(),
        }
    }
}

/// Keys and values of every layer for the tokens seen so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// One cache per transformer block.
    pub layers: Vec<LayerKv>,
    /// Rows cached (positions kept).
    pub len: usize,
    /// Positions evicted ([`KvCache::evict`]): the next token's position is
    /// `len + evicted`.
    pub evicted: usize,
    /// How keys and values are stored (and so their bytes and rounding).
    pub dtype: KvDtype,
    row: usize,
    head_dim: usize,
}

impl KvCache {
    /// An empty cache for `n_layers` layers of `n_kv_heads × head_dim` rows.
    pub fn new(n_layers: usize, n_kv_heads: usize, head_dim: usize, dtype: KvDtype) -> Self {
        let row = n_kv_heads * head_dim;
        Self {
            layers: (0..n_layers)
                .map(|_| LayerKv::new(dtype, row, head_dim))
                .collect(),
            len: 0,
            evicted: 0,
            dtype,
            row,
            head_dim,
        }
    }

    /// The position of the next token (rows cached plus rows evicted).
    pub fn position(&self) -> usize {
        self.len + self.evicted
    }

    /// Keeps, in layer `l` and KV head `h`, only the rows `keep[l][h]`
    /// (ascending; the same count for every head and layer).
    pub fn evict(&mut self, keep: &[Vec<Vec<usize>>]) {
        let kept = keep.first().and_then(|k| k.first()).map_or(0, Vec::len);
        for (layer, rows) in self.layers.iter_mut().zip(keep) {
            layer.gather(rows, self.row, self.head_dim);
        }
        self.evicted += self.len - kept;
        self.len = kept;
    }

    /// Keeps per-layer key summaries of `block`-token blocks from now on
    /// (sparse attention's indexer reads them).
    pub fn keep_key_summaries(&mut self, block: usize) {
        let n_kv_heads = self.row / self.head_dim;
        for l in &mut self.layers {
            if l.summaries.as_ref().map(|s| s.block()) != Some(block) {
                l.summaries = Some(KeySummaries::new(block, n_kv_heads, self.head_dim));
            }
        }
    }

    /// Reserves room for `tokens` more positions so a long prefill does not
    /// reallocate layer by layer.
    pub fn reserve(&mut self, tokens: usize) {
        for l in &mut self.layers {
            l.reserve(tokens * self.row);
        }
    }

    /// Layers, KV heads and head size: what a saved cache must match.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.layers.len(), self.row / self.head_dim, self.head_dim)
    }

    /// Whether [`KvCache::truncate`] can cut this cache (f32 or f16 keys,
    /// no key summaries).
    pub fn cuttable(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l.summaries.is_none() && !matches!(l.store, Store::Int8(_)))
    }

    /// Values per cached position: `n_kv_heads × head_dim`.
    pub fn row(&self) -> usize {
        self.row
    }

    /// Bytes held by cached keys and values (and key summaries).
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(LayerKv::bytes).sum()
    }

    /// Forgets the tokens from position `len` on; `false` (nothing
    /// changed) for an int8 cache or one with key summaries, which cannot
    /// be cut, or a cut into evicted positions.
    pub fn truncate(&mut self, len: usize) -> bool {
        if !self.cuttable() || len > self.position() || len < self.evicted {
            return false;
        }
        let len = len - self.evicted;
        let keep = len * self.row;
        for l in &mut self.layers {
            match &mut l.store {
                Store::F32 { keys, values } => {
                    keys.truncate(keep);
                    values.truncate(keep);
                }
                Store::F16 { keys, values } => {
                    keys.truncate(keep);
                    values.truncate(keep);
                }
                Store::Int8(_) => {}
            }
        }
        self.len = len;
        true
    }

    /// Forgets everything (the allocation is kept for the next prompt).
    pub fn clear(&mut self) {
        let block = self.layers[0].summaries.as_ref().map(|s| s.block());
        for l in &mut self.layers {
            l.clear();
            l.summaries = None;
        }
        if let Some(block) = block {
            self.keep_key_summaries(block);
        }
        self.len = 0;
        self.evicted = 0;
    }
}
