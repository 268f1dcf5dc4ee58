//! DSA-style content-aware sparse attention, without training.
//!
//! DeepSeek Sparse Attention lets a cheap "lightning indexer" score every key
//! for each query and runs exact softmax attention over the top-k keys only.
//! That indexer is a small network trained to imitate the model's attention,
//! and folio runs off-the-shelf checkpoints that have none. So the indexer
//! here is Quest's (Tang et al., 2024), which needs no training: for each
//! block of keys and KV head, [`KeySummaries`] keeps the per-channel min and
//! max of the keys, and a query's score for the block is
//! `Σ_c max(q_c·min_c, q_c·max_c)`, an upper bound of `q·k` over every key of
//! the block: the block holding the largest logit is never ranked below it
//! from underestimation, so strongly attended "needles" are found. With GQA
//! the bounds of the query heads sharing a KV head are summed, so each
//! (query row, KV head) selects one set of blocks and reads each key block
//! once for the whole group.
//!
//! Selected per query row (not per query block, which would blur needles): the
//! blocks holding the first `sinks` keys (attention sinks), the blocks holding
//! the last `window` causal keys (local context), and the `top_k / block`
//! highest-bound blocks of the rest; then the exact softmax over those blocks
//! is computed flash-style ([`tile`](super::tile)). When the three cover every
//! causal block, the result is dense attention.

use rayon::prelude::*;

use super::indexer::{select, KeySummaries, Selection};
use super::tile::{attend_block, KvBlock, SharedOut, Tile, BC};
use super::{causal_pairs, AttentionShape, AttentionStats};
use crate::dot::{dot, exp_neg, Isa};

/// What [`sparse`] attends to. All counts are keys; sinks, window and top-k
/// are rounded up to whole blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparseConfig {
    /// Keys chosen by the indexer besides sinks and window (DSA uses 2048).
    pub top_k: usize,
    /// Keys per indexed block (must match the [`KeySummaries`]).
    pub block: usize,
    /// Leading keys always attended (attention sinks, the system prompt).
    pub sinks: usize,
    /// Most recent causal keys always attended.
    pub window: usize,
}

/// `top_k` 2048: DSA's own budget, and where Quest reports near-dense
/// accuracy at 32K contexts (1/16 of the keys at 32K, all of them below
/// ~2.4K, so short prompts stay exact). `block` 64: one flash key block, and a
/// summary 1/32 the size of the keys; smaller blocks tighten the bound but
/// make the indexer cost more. `sinks` 64: one block, which holds the
/// attention-sink tokens and the chat template's head. `window` 256: four
/// blocks of local context, which every head uses heavily and the bound
/// would pick anyway.
impl Default for SparseConfig {
    fn default() -> Self {
        SparseConfig {
            top_k: 2048,
            block: 64,
            sinks: 64,
            window: 256,
        }
    }
}

/// Block-sparse causal GQA attention: per query row and KV head, the blocks
/// chosen by the Quest indexer over `summaries` (which must cover `kv_len`
/// keys with `cfg.block`-key blocks) enter an exact softmax; the stats count
/// the (query, head, key) triples that did. `head_dim` must be a multiple of
/// 16.
#[allow(clippy::too_many_arguments)]
pub fn sparse(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: AttentionShape,
    scale: f32,
    cfg: &SparseConfig,
    summaries: &KeySummaries,
) -> AttentionStats {
    shape.validate(q, k, v, out);
    check(&shape, cfg, summaries);
    let isa = Isa::detect();
    let dst = SharedOut::new(out);
    let attended = (0..shape.q_len * shape.n_kv_heads)
        .into_par_iter()
        .map_init(
            || {
                (
                    Tile::new(shape.group(), shape.head_dim),
                    Selection::default(),
                )
            },
            |(tile, sel), task| {
                let args = TaskArgs {
                    q,
                    k,
                    v,
                    shape,
                    scale,
                    cfg,
                    sums: summaries,
                    tile,
                    sel,
                    task,
                    dst,
                };
                match isa {
                    // SAFETY: `Isa::detect` saw AVX2 and FMA on this CPU.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { task_avx2(args) },
                    _ => sparse_task::<false>(args),
                }
            },
        )
        .sum();
    AttentionStats {
        causal_pairs: causal_pairs(&shape),
        attended_pairs: attended,
    }
}

fn check(shape: &AttentionShape, cfg: &SparseConfig, sums: &KeySummaries) {
    assert_eq!(
        cfg.block, sums.block,
        "config and summaries disagree on block"
    );
    assert!(
        sums.n_kv_heads == shape.n_kv_heads && sums.head_dim == shape.head_dim,
        "summaries of another shape"
    );
    assert!(sums.kv_len() >= shape.kv_len, "summaries behind the cache");
}

struct TaskArgs<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    shape: AttentionShape,
    scale: f32,
    cfg: &'a SparseConfig,
    sums: &'a KeySummaries,
    tile: &'a mut Tile,
    sel: &'a mut Selection,
    /// Query row × KV head.
    task: usize,
    dst: SharedOut,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn task_avx2(args: TaskArgs) -> u64 {
    sparse_task::<true>(args)
}

/// One query row and KV head; returns the (query, head, key) triples attended.
// No closures here: they would not inherit the AVX2 instance's features.
#[inline(always)]
fn sparse_task<const FMA: bool>(a: TaskArgs) -> u64 {
    let s = a.shape;
    let (d, group) = (s.head_dim, s.group());
    let (i, kvh) = (a.task / s.n_kv_heads, a.task % s.n_kv_heads);
    let at = i * s.n_heads * d + kvh * group * d;
    let q_group = &a.q[at..at + group * d];
    let n_keys = s.q_start + i + 1;
    select(q_group, a.sums, kvh, n_keys, a.cfg, a.sel);
    let t = a.tile;
    t.reset(group);
    for (x, y) in t.q[..group * d].iter_mut().zip(q_group) {
        *x = y * a.scale;
    }
    t.limit[..group].fill(n_keys);
    let mut keys = 0;
    for &blk in &a.sel.blocks {
        let start = blk as usize * a.cfg.block;
        let end = (start + a.cfg.block).min(n_keys);
        keys += end - start;
        let mut j0 = start;
        while j0 < end {
            let n = BC.min(end - j0);
            let block = KvBlock {
                k: a.k,
                v: a.v,
                kv_row: s.n_kv_heads * d,
                off: kvh * d,
                j0,
                n,
            };
            attend_block::<FMA>(t, &block, false);
            j0 += n;
        }
    }
    for r in 0..group {
        // SAFETY: each (query row, KV head) task owns its group's heads.
        t.write_row(r, unsafe { a.dst.slice(at + r * d, d) });
    }
    (keys * group) as u64
}

/// Mean over (query row, head) of the exact softmax probability that falls
/// on the keys [`sparse`] would attend to: 1.0 when nothing is dropped. Costs
/// a dense pass; meant for reports on real activations.
pub fn sparse_recall(
    q: &[f32],
    k: &[f32],
    shape: AttentionShape,
    scale: f32,
    cfg: &SparseConfig,
    summaries: &KeySummaries,
) -> f64 {
    shape.validate(q, k, k, q);
    check(&shape, cfg, summaries);
    if shape.q_len == 0 {
        return 1.0;
    }
    let isa = Isa::detect();
    let total: f64 = (0..shape.q_len * shape.n_kv_heads)
        .into_par_iter()
        .map_init(
            || (Vec::new(), Selection::default()),
            |(logits, sel), task| {
                let args = RecallArgs {
                    q,
                    k,
                    shape,
                    scale,
                    cfg,
                    sums: summaries,
                    logits,
                    sel,
                    task,
                };
                match isa {
                    // SAFETY: `Isa::detect` saw AVX2 and FMA on this CPU.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { recall_avx2(args) },
                    _ => recall::<false>(args),
                }
            },
        )
        .sum();
    total / (shape.q_len * shape.n_heads) as f64
}

struct RecallArgs<'a> {
    q: &'a [f32],
    k: &'a [f32],
    shape: AttentionShape,
    scale: f32,
    cfg: &'a SparseConfig,
    sums: &'a KeySummaries,
    logits: &'a mut Vec<f32>,
    sel: &'a mut Selection,
    task: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn recall_avx2(args: RecallArgs) -> f64 {
    recall::<true>(args)
}

/// Selected probability mass of one query row, summed over the KV head's group.
#[inline(always)]
fn recall<const FMA: bool>(a: RecallArgs) -> f64 {
    let s = a.shape;
    let (d, group) = (s.head_dim, s.group());
    let (i, kvh) = (a.task / s.n_kv_heads, a.task % s.n_kv_heads);
    let at = i * s.n_heads * d + kvh * group * d;
    let q_group = &a.q[at..at + group * d];
    let n_keys = s.q_start + i + 1;
    select(q_group, a.sums, kvh, n_keys, a.cfg, a.sel);
    let kv_row = s.n_kv_heads * d;
    let mut mass = 0f64;
    for qh in q_group.chunks_exact(d) {
        a.logits.clear();
        let mut max = f32::NEG_INFINITY;
        for j in 0..n_keys {
            let l = dot::<FMA>(qh, &a.k[j * kv_row + kvh * d..][..d]) * a.scale;
            max = max.max(l);
            a.logits.push(l);
        }
        let mut z = 0f64;
        for l in a.logits.iter_mut() {
            *l = exp_neg::<FMA>(*l - max);
            z += *l as f64;
        }
        let mut picked = 0f64;
        for &blk in &a.sel.blocks {
            let start = blk as usize * a.cfg.block;
            let end = (start + a.cfg.block).min(n_keys);
            for p in &a.logits[start..end] {
                picked += *p as f64;
            }
        }
        mass += (picked / z).min(1.0);
    }
    mass
}
