//! Causal grouped-query attention over a KV cache.
//!
//! Layouts (all row-major `f32`):
//! - queries `q`: `[q_len, n_heads, head_dim]`, the rows of one forward chunk;
//! - keys and values: `[kv_len, n_kv_heads, head_dim]`, the cache as it grows,
//!   one position appended after another (the slices may be longer; only the
//!   first `kv_len` rows count);
//! - output: `[q_len, n_heads, head_dim]`.
//!
//! Query row `i` sits at absolute position `q_start + i` and may attend to keys
//! `0..=q_start + i` (causal). Query head `h` reads KV head `h / group` where
//! `group = n_heads / n_kv_heads` (grouped-query attention).
//!
//! Three kernels share these layouts:
//! - [`dense`]: the plain reference, which materialises the whole
//!   `q_len × kv_len` score matrix of one head (quadratic memory, on purpose);
//! - [`flash`]: FlashAttention's tiled online softmax, exact, memory per
//!   worker independent of the lengths, split-K for single-row decode;
//! - [`capped`]: exact, with Gemma 2's logit soft-cap and sliding window;
//! - [`sparse`]: content-aware block-sparse attention with a training-free
//!   (Quest) indexer over [`KeySummaries`].

mod capped;
mod dense;
mod flash;
mod indexer;
mod sparse;
mod tile;

pub use capped::{capped, Capping};
pub use dense::dense;
pub use flash::flash;
pub use indexer::KeySummaries;
pub use sparse::{sparse, sparse_recall, SparseConfig};

/// Shape of one attention call; checked by [`AttentionShape::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Query heads; a multiple of `n_kv_heads`.
    pub n_heads: usize,
    /// Key/value heads; query head `h` reads KV head `h / (n_heads / n_kv_heads)`.
    pub n_kv_heads: usize,
    /// Values per head, the same for queries, keys and values.
    pub head_dim: usize,
    /// Rows of queries in this call.
    pub q_len: usize,
    /// Keys/values available in the cache (including this call's).
    pub kv_len: usize,
    /// Absolute position of the first query row.
    pub q_start: usize,
}

impl AttentionShape {
    /// Panics with a precise message when buffers and shape disagree: a wrong
    /// layout here would silently produce garbage logits.
    pub fn validate(&self, q: &[f32], k: &[f32], v: &[f32], out: &[f32]) {
        assert!(
            self.n_kv_heads > 0 && self.n_heads.is_multiple_of(self.n_kv_heads),
            "heads {self:?}"
        );
        assert!(
            self.q_start + self.q_len <= self.kv_len,
            "queries beyond the cache: {self:?}"
        );
        let q_elems = self.q_len * self.n_heads * self.head_dim;
        let kv_elems = self.kv_len * self.n_kv_heads * self.head_dim;
        assert_eq!(q.len(), q_elems, "q buffer");
        assert_eq!(out.len(), q_elems, "out buffer");
        assert!(
            k.len() >= kv_elems && v.len() >= kv_elems,
            "kv buffers shorter than kv_len"
        );
    }

    /// Query heads that share one KV head.
    pub fn group(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }
}

/// What an attention call did, so callers can report it (sparse kernels attend
/// to fewer keys than the causal mask allows).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionStats {
    /// (query, head, key) triples allowed by the causal mask.
    pub causal_pairs: u64,
    /// (query, head, key) triples that entered the softmax.
    pub attended_pairs: u64,
}

impl AttentionStats {
    /// Fraction of causal keys attended, 1.0 for exact attention.
    pub fn attended_fraction(&self) -> f64 {
        if self.causal_pairs == 0 {
            1.0
        } else {
            self.attended_pairs as f64 / self.causal_pairs as f64
        }
    }

    /// Sums the stats of several calls (layers, chunks).
    pub fn merge(&mut self, other: AttentionStats) {
        self.causal_pairs += other.causal_pairs;
        self.attended_pairs += other.attended_pairs;
    }

    /// Stats of an exact kernel: every causal pair attended.
    fn exact(shape: &AttentionShape) -> AttentionStats {
        let pairs = causal_pairs(shape);
        AttentionStats {
            causal_pairs: pairs,
            attended_pairs: pairs,
        }
    }
}

/// (query, head, key) triples the causal mask allows in one call.
pub fn causal_pairs(shape: &AttentionShape) -> u64 {
    let (a, n) = (shape.q_start as u64, shape.q_len as u64);
    // Σ_{i<n} (a + i + 1) = n·(a + 1) + n·(n − 1)/2.
    (n * (a + 1) + n * n.saturating_sub(1) / 2) * shape.n_heads as u64
}
