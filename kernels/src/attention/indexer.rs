//! Quest's training-free indexer: per block of keys and KV head, the
//! per-channel min and max of the keys, from which an upper bound of any
//! query's logit over the block follows (see [`sparse`](super::sparse)).

use super::sparse::SparseConfig;

/// Per-channel key minima and maxima of every block of one layer's cache, for
/// all KV heads: what the sparse kernel's indexer reads instead of the keys
/// (`2 · head_dim` floats per block and KV head, 1/32 of the keys at the
/// default block of 64). The caller keeps one per layer and calls
/// [`KeySummaries::update`] after appending keys.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySummaries {
    pub(super) block: usize,
    pub(super) n_kv_heads: usize,
    pub(super) head_dim: usize,
    kv_len: usize,
    /// `[n_blocks, n_kv_heads, head_dim]`.
    min: Vec<f32>,
    /// `[n_blocks, n_kv_heads, head_dim]`.
    max: Vec<f32>,
}

impl KeySummaries {
    /// Empty summaries for blocks of `block` keys.
    pub fn new(block: usize, n_kv_heads: usize, head_dim: usize) -> KeySummaries {
        assert!(block > 0 && n_kv_heads > 0 && head_dim > 0, "empty shape");
        KeySummaries {
            block,
            n_kv_heads,
            head_dim,
            kv_len: 0,
            min: Vec::new(),
            max: Vec::new(),
        }
    }

    /// Brings the summaries to the first `kv_len` positions of the key cache
    /// `k` (`[.., n_kv_heads, head_dim]`): recomputes only the block that was
    /// partial and appends new ones, so a decode step costs one block. A
    /// shorter `kv_len` (cache truncated) drops the blocks past it.
    pub fn update(&mut self, k: &[f32], kv_len: usize) {
        let row = self.n_kv_heads * self.head_dim;
        assert!(k.len() >= kv_len * row, "key cache shorter than kv_len");
        let first = self.kv_len.min(kv_len) / self.block;
        self.min.truncate(first * row);
        self.max.truncate(first * row);
        for b in first..kv_len.div_ceil(self.block) {
            let rows = b * self.block..((b + 1) * self.block).min(kv_len);
            let mut lo = k[rows.start * row..][..row].to_vec();
            let mut hi = lo.clone();
            for j in rows.start + 1..rows.end {
                for ((l, h), x) in lo.iter_mut().zip(&mut hi).zip(&k[j * row..][..row]) {
                    *l = l.min(*x);
                    *h = h.max(*x);
                }
            }
            self.min.extend_from_slice(&lo);
            self.max.extend_from_slice(&hi);
        }
        self.kv_len = kv_len;
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        (self.min.len() + self.max.len()) * std::mem::size_of::<f32>()
    }

    /// Keys per block.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Positions summarised so far.
    pub fn kv_len(&self) -> usize {
        self.kv_len
    }

    /// Channel minima and maxima of block `b`, KV head `kvh`.
    fn bounds(&self, b: usize, kvh: usize) -> (&[f32], &[f32]) {
        let at = (b * self.n_kv_heads + kvh) * self.head_dim;
        (
            &self.min[at..at + self.head_dim],
            &self.max[at..at + self.head_dim],
        )
    }
}

/// Per-worker buffers of [`select`].
#[derive(Default)]
pub(super) struct Selection {
    scored: Vec<(f32, u32)>,
    /// The chosen blocks, ascending, after [`select`].
    pub blocks: Vec<u32>,
}

/// Chooses the blocks one query row of one KV-head group attends to: the
/// blocks holding the first `sinks` keys and the last `window` causal keys,
/// plus the `ceil(top_k / block)` others with the highest Quest bound summed
/// over the group's query heads `q_group` (`[group, d]`). `n_keys` is the
/// row's causal length. Fills `sel.blocks`, ascending.
#[inline(always)]
pub(super) fn select(
    q_group: &[f32],
    sums: &KeySummaries,
    kvh: usize,
    n_keys: usize,
    cfg: &SparseConfig,
    sel: &mut Selection,
) {
    let b = sums.block;
    let d = sums.head_dim;
    let n_blocks = n_keys.div_ceil(b);
    let sink_end = cfg.sinks.div_ceil(b).min(n_blocks);
    let window_start = if cfg.window == 0 {
        n_blocks
    } else {
        n_keys.saturating_sub(cfg.window) / b
    }
    .max(sink_end);
    let budget = cfg.top_k.div_ceil(b);
    sel.blocks.clear();
    sel.blocks.extend(0..sink_end as u32);
    let middle = window_start - sink_end;
    if middle <= budget {
        sel.blocks.extend(sink_end as u32..window_start as u32);
    } else if budget > 0 {
        sel.scored.clear();
        for blk in sink_end..window_start {
            let (lo, hi) = sums.bounds(blk, kvh);
            let mut bound = 0f32;
            for qh in q_group.chunks_exact(d) {
                bound += quest_bound(qh, lo, hi);
            }
            sel.scored.push((bound, blk as u32));
        }
        sel.scored
            .select_nth_unstable_by(budget - 1, |a, b| b.0.total_cmp(&a.0));
        let start = sel.blocks.len();
        for &(_, blk) in &sel.scored[..budget] {
            sel.blocks.push(blk);
        }
        sel.blocks[start..].sort_unstable();
    }
    sel.blocks.extend(window_start as u32..n_blocks as u32);
}

/// `Σ_c max(q_c·min_c, q_c·max_c)`: no key of the block can score higher.
#[inline(always)]
fn quest_bound(q: &[f32], lo: &[f32], hi: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = q
        .chunks_exact(8)
        .zip(lo.chunks_exact(8).zip(hi.chunks_exact(8)));
    for (qc, (l, h)) in &mut chunks {
        for x in 0..8 {
            lanes[x] += (qc[x] * l[x]).max(qc[x] * h[x]);
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    let tail = q.len() / 8 * 8;
    for c in tail..q.len() {
        sum += (q[c] * lo[c]).max(q[c] * hi[c]);
    }
    sum
}
