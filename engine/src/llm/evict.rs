//! KV cache eviction: keep at most a budget of positions per layer and KV
//! head, so the cache stops growing with the document.
//!
//! Three policies, as the literature has them:
//! - **StreamingLLM** (Xiao et al. 2023): the first `sinks` positions (the
//!   "attention sinks" every head leans on) and the most recent ones.
//! - **H2O** (Zhang et al. 2023): the "heavy hitters", the positions that
//!   received the most attention so far (summed over the queries read and the
//!   query heads of the KV head), plus a recent window. Evicts during
//!   prefill, chunk by chunk, so the cache never holds much more than the
//!   budget.
//! - **SnapKV** (Li et al. 2024): after the whole prompt is read, the
//!   positions the prompt's last `window` queries (the question) attend to
//!   most, pooled over neighbouring positions, plus that window. The prompt
//!   is read with the full cache; the answer is generated from the kept one.
//!
//! Each KV head keeps its own positions. Heads keep equally many, so the
//! kept cache has the layout `[kept, n_kv_heads, head_dim]` the kernels
//! read, row `i` of head `h` being head `h`'s `i`-th kept position. Keys
//! carry their rotation, so positions need not be contiguous; everything
//! kept precedes every later query, so the causal mask still holds.

use std::fmt;

use folio_kernels::attention::AttentionShape;
use serde::{Deserialize, Serialize};

/// Which positions an eviction keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum EvictionPolicy {
    /// Attention sinks and the most recent positions.
    Streaming {
        /// Leading positions always kept.
        sinks: usize,
    },
    /// Heavy hitters by accumulated attention, plus a recent window.
    H2o {
        /// Most recent positions always kept.
        recent: usize,
    },
    /// Positions the question's attention selects, after the prompt.
    SnapKv {
        /// Last prompt positions whose queries vote (and are kept).
        window: usize,
        /// Width of the max-pooling over neighbouring positions' votes.
        pool: usize,
    },
}

/// A policy and how many positions each layer and KV head keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eviction {
    /// Which positions are kept.
    #[serde(flatten)]
    pub policy: EvictionPolicy,
    /// Positions kept per layer and KV head.
    pub budget: usize,
}

impl EvictionPolicy {
    /// The policy named on the command line, with the papers' defaults.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "streaming" | "streamingllm" => EvictionPolicy::Streaming { sinks: 4 },
            "h2o" => EvictionPolicy::H2o { recent: 0 },
            "snapkv" => EvictionPolicy::SnapKv {
                window: 32,
                pool: 7,
            },
            _ => return None,
        })
    }

    /// The short name.
    pub fn name(&self) -> &'static str {
        match self {
            EvictionPolicy::Streaming { .. } => "streaming",
            EvictionPolicy::H2o { .. } => "h2o",
            EvictionPolicy::SnapKv { .. } => "snapkv",
        }
    }
}

impl Eviction {
    /// Whether the policy ranks positions by the attention they received.
    pub fn needs_scores(&self) -> bool {
        !matches!(self.policy, EvictionPolicy::Streaming { .. })
    }

    /// Whether it evicts during prefill (after each chunk) rather than once
    /// the prompt is read.
    pub fn during_prefill(&self) -> bool {
        !matches!(self.policy, EvictionPolicy::SnapKv { .. })
    }

    /// Rows (cache indices, ascending) each KV head keeps of `len`, from
    /// the attention `scores[head][row]` each row received (policies that
    /// rank). Every head keeps exactly `min(budget, len)`.
    pub fn keep(
        &self,
        len: usize,
        n_kv_heads: usize,
        scores: Option<&[Vec<f32>]>,
    ) -> Vec<Vec<usize>> {
        let budget = self.budget.min(len);
        let by_position = |fixed: usize| -> Vec<usize> {
            let fixed = fixed.min(budget);
            (0..fixed).chain(len - (budget - fixed)..len).collect()
        };
        (0..n_kv_heads)
            .map(|h| match (self.policy, scores) {
                (EvictionPolicy::Streaming { sinks }, _) => by_position(sinks),
                (EvictionPolicy::H2o { recent }, Some(s)) => {
                    ranked(&s[h], budget, recent.min(budget), 1)
                }
                (EvictionPolicy::SnapKv { window, pool }, Some(s)) => {
                    ranked(&s[h], budget, window.min(budget), pool)
                }
                // No scores recorded: the most recent positions.
                (_, None) => by_position(0),
            })
            .collect()
    }
}

/// The `recent` last rows plus the best-scored others up to `budget`
/// (scores max-pooled over `pool` neighbours), ascending.
fn ranked(scores: &[f32], budget: usize, recent: usize, pool: usize) -> Vec<usize> {
    let len = scores.len();
    let old = len - recent;
    let half = pool / 2;
    let pooled: Vec<f32> = (0..old)
        .map(|i| {
            scores[i.saturating_sub(half)..(i + half + 1).min(old)]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .collect();
    let mut order: Vec<usize> = (0..old).collect();
    // Highest first; ties to the earlier row, so the choice is deterministic.
    order.sort_by(|&a, &b| pooled[b].total_cmp(&pooled[a]).then(a.cmp(&b)));
    let mut keep: Vec<usize> = order.into_iter().take(budget - recent).collect();
    keep.extend(old..len);
    keep.sort_unstable();
    keep
}

impl fmt::Display for Eviction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.policy {
            EvictionPolicy::Streaming { sinks } => write!(
                f,
                "streaming: {sinks} sink positions and the most recent, {} per head",
                self.budget
            ),
            EvictionPolicy::H2o { recent } => write!(
                f,
                "h2o: the {} positions per head that received the most attention{}",
                self.budget,
                if recent > 0 {
                    format!(" ({recent} most recent always)")
                } else {
                    String::new()
                }
            ),
            EvictionPolicy::SnapKv { window, .. } => write!(
                f,
                "snapkv: the {} positions per head the question's last {window} tokens attend to most",
                self.budget
            ),
        }
    }
}

/// Adds to `scores[kv_head][key]` the softmax attention that the query rows
/// `rows` of `q` (`[q_len, n_heads, head_dim]`) give each cached key of
/// `keys` (`[kv_len, n_kv_heads, head_dim]`, causal at `shape.q_start`),
/// summed over the query heads reading that KV head. Dense: it costs what
/// a dense attention of those rows does.
pub fn accumulate_attention(
    scores: &mut [Vec<f32>],
    q: &[f32],
    keys: &[f32],
    shape: AttentionShape,
    scale: f32,
    rows: std::ops::Range<usize>,
) {
    use folio_kernels::dot::{dot, exp_neg};
    use rayon::prelude::*;
    let (d, group) = (shape.head_dim, shape.n_heads / shape.n_kv_heads);
    let kv_row = shape.n_kv_heads * d;
    // Each KV head's scores are its own: one task per head.
    scores
        .par_iter_mut()
        .enumerate()
        .for_each(|(kvh, received)| {
            let mut p = Vec::with_capacity(shape.kv_len);
            for r in rows.clone() {
                let visible = (shape.q_start + r + 1).min(shape.kv_len);
                for hq in kvh * group..(kvh + 1) * group {
                    let qv = &q[(r * shape.n_heads + hq) * d..][..d];
                    p.clear();
                    p.extend(
                        (0..visible)
                            .map(|j| scale * dot::<false>(qv, &keys[j * kv_row + kvh * d..][..d])),
                    );
                    let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for x in p.iter_mut() {
                        *x = exp_neg::<false>(*x - max);
                        sum += *x;
                    }
                    let inv = 1.0 / sum;
                    for (s, x) in received.iter_mut().zip(&p) {
                        *s += x * inv;
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::llm::attention::{Attention, FlashAttention};
    use crate::llm::kv_cache::{KvCache, KvDtype, KvScratch};

    const HEADS: usize = 4;
    const KV_HEADS: usize = 2;
    const D: usize = 16;

    fn random(n: usize, rng: &mut impl Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.5f32..1.5)).collect()
    }

    /// Softmax attention of one query row over the keys each KV head kept,
    /// in f64 from the original (uncompressed) keys and values.
    fn reference(
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        kept: &[Vec<usize>],
        scale: f32,
    ) -> Vec<f32> {
        let group = HEADS / KV_HEADS;
        let row = KV_HEADS * D;
        let mut out = vec![0f32; HEADS * D];
        for hq in 0..HEADS {
            let kvh = hq / group;
            let qv = &q[hq * D..][..D];
            let logits: Vec<f64> = kept[kvh]
                .iter()
                .map(|&j| {
                    let k = &keys[j * row + kvh * D..][..D];
                    scale as f64
                        * qv.iter()
                            .zip(k)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                })
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let sum: f64 = weights.iter().sum();
            for (w, &j) in weights.iter().zip(&kept[kvh]) {
                let v = &values[j * row + kvh * D..][..D];
                for (o, x) in out[hq * D..][..D].iter_mut().zip(v) {
                    *o += (w / sum * *x as f64) as f32;
                }
            }
        }
        out
    }

    /// Each policy keeps exactly its budget per head (its sinks or window
    /// among them), and attention over the evicted cache is attention over
    /// exactly the kept positions of the original: on random keys, values
    /// and queries, f32 and int8 caches (int8 within its rounding).
    #[test]
    fn every_policy_keeps_its_budget_and_attends_what_it_kept() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (len, budget, scale) = (150, 40, 1.0 / (D as f32).sqrt());
        let keys = random(len * KV_HEADS * D, &mut rng);
        let values = random(len * KV_HEADS * D, &mut rng);
        let prompt_q = random(len * HEADS * D, &mut rng);
        let shape = AttentionShape {
            n_heads: HEADS,
            n_kv_heads: KV_HEADS,
            head_dim: D,
            q_len: len,
            kv_len: len,
            q_start: 0,
        };
        for policy in ["streaming", "h2o", "snapkv"] {
            let e = Eviction {
                policy: EvictionPolicy::parse(policy).unwrap(),
                budget,
            };
            let mut scores = vec![vec![0f32; len]; KV_HEADS];
            let rows = match e.policy {
                EvictionPolicy::SnapKv { window, .. } => len - window..len,
                _ => 0..len,
            };
            accumulate_attention(&mut scores, &prompt_q, &keys, shape, scale, rows);
            let kept = e.keep(len, KV_HEADS, e.needs_scores().then_some(&scores[..]));
            assert_eq!(kept.len(), KV_HEADS);
            for rows in &kept {
                assert_eq!(rows.len(), budget, "{policy}");
                assert!(rows.windows(2).all(|w| w[0] < w[1]), "{policy}: {rows:?}");
                match e.policy {
                    EvictionPolicy::Streaming { sinks } => {
                        assert!((0..sinks).all(|j| rows.contains(&j)), "{policy}");
                        assert!(rows.contains(&(len - 1)), "{policy}");
                    }
                    EvictionPolicy::SnapKv { window, .. } => {
                        assert!((len - window..len).all(|j| rows.contains(&j)), "{policy}")
                    }
                    EvictionPolicy::H2o { .. } => {
                        // The best-scored row is always kept.
                        let best = (0..len).max_by(|&a, &b| scores[0][a].total_cmp(&scores[0][b]));
                        assert!(kept[0].contains(&best.unwrap()), "{policy}");
                    }
                }
            }
            if policy != "streaming" {
                // Ranked heads choose by their own scores, not in lockstep.
                assert_ne!(kept[0], kept[1], "{policy}");
            }
            for dtype in [KvDtype::F32, KvDtype::Int8] {
                let mut cache = KvCache::new(1, KV_HEADS, D, dtype);
                cache.layers[0].append(&keys, &values);
                cache.len = len;
                cache.evict(std::slice::from_ref(&kept));
                assert_eq!(
                    (cache.len, cache.evicted, cache.position()),
                    (budget, len - budget, len)
                );
                // A new query after everything kept.
                let q = random(HEADS * D, &mut rng);
                let mut scratch = KvScratch::default();
                let view = cache.layers[0].view(&mut scratch, budget);
                let mut out = vec![0f32; HEADS * D];
                let one = AttentionShape {
                    q_len: 1,
                    kv_len: budget,
                    q_start: budget - 1,
                    ..shape
                };
                FlashAttention.attend(&q, &view, &mut out, one, scale);
                let want = reference(&q, &keys, &values, &kept, scale);
                let worst = out
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                // f32: summation order only. int8: keys and values off by
                // half a quantization step (range 3 / 255 / 2).
                let tolerance = if dtype == KvDtype::F32 { 1e-5 } else { 0.03 };
                assert!(worst < tolerance, "{policy} {dtype:?}: off by {worst}");
            }
        }
    }
}
