//! FlashAttention's algorithm on the CPU: exact attention without a score
//! matrix.
//!
//! A task is a tile of query rows × the query heads that share one KV head
//! (about [`TILE_ROWS`] rows in all), which walks the causal key blocks once
//! with an online softmax ([`tile`](super::tile)). Tasks run in parallel with
//! rayon, the longest (last query block) first; each worker owns one
//! [`Tile`], so memory beyond the cache is O(tile), whatever the lengths.
//!
//! When there are too few tiles to keep the workers busy (decode: one query
//! row) the keys are split too, as in flash-decoding: each split returns its
//! `(max, sum, output)` per row and a final pass merges them exactly.

use rayon::prelude::*;

use super::tile::{attend_block, exp_neg, KvBlock, SharedOut, Tile, BC, PACK_ROWS};
use super::{AttentionShape, AttentionStats};
use crate::dot::Isa;

/// Query-head rows per tile: 128 rows of `head_dim` 64 are 32 KiB each of
/// queries, accumulators and block scores, next to 16 KiB key and value
/// blocks: L2-resident (1 MiB here), and each key block transposed into a
/// tile serves 128 rows (64 rows measured 15% slower: the transpose shows).
const TILE_ROWS: usize = 128;
/// Fewest keys per split-K part, so merging stays negligible.
const MIN_SPLIT_KEYS: usize = 512;
/// Tasks per worker wanted before keys are split (load balance).
const TASKS_PER_THREAD: usize = 4;

/// Exact causal GQA attention, FlashAttention style: same result as
/// [`dense`](super::dense) up to float rounding, with memory independent of
/// the sequence length and far fewer passes over the cache. `head_dim` must be
/// a multiple of 16.
pub fn flash(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: AttentionShape,
    scale: f32,
) -> AttentionStats {
    shape.validate(q, k, v, out);
    if shape.q_len == 0 {
        return AttentionStats::default();
    }
    let plan = Plan::new(shape);
    let d = shape.head_dim;
    let isa = Isa::detect();
    let tile_rows = plan.block_rows * shape.group();
    let n_tasks = plan.q_blocks * shape.n_kv_heads * plan.splits;
    if plan.splits == 1 {
        let dst = SharedOut::new(out);
        (0..n_tasks).into_par_iter().for_each_init(
            || Tile::new(tile_rows, d),
            |tile, t| {
                let args = TaskArgs::new(q, k, v, &plan, scale, tile, t, Dst::Out(dst));
                run(isa, args);
            },
        );
    } else {
        // Split-K: (max, sum, normalised output) of every row of every task.
        let stride = tile_rows * (d + 2);
        let mut parts = vec![0f32; n_tasks * stride];
        parts.par_chunks_mut(stride).enumerate().for_each_init(
            || Tile::new(tile_rows, d),
            |tile, (t, part)| {
                let args = TaskArgs::new(q, k, v, &plan, scale, tile, t, Dst::Part(part));
                run(isa, args);
            },
        );
        merge(&parts, out, &plan, stride);
    }
    AttentionStats::exact(&shape)
}

/// How one call is cut into tasks.
struct Plan {
    shape: AttentionShape,
    /// Query rows per tile.
    block_rows: usize,
    q_blocks: usize,
    /// Key splits per tile (1 unless there are few tiles).
    splits: usize,
    /// Keys per split, a multiple of [`BC`].
    split_keys: usize,
}

impl Plan {
    fn new(shape: AttentionShape) -> Plan {
        let block_rows = (TILE_ROWS / shape.group()).clamp(1, shape.q_len);
        let q_blocks = shape.q_len.div_ceil(block_rows);
        let tiles = q_blocks * shape.n_kv_heads;
        let want = TASKS_PER_THREAD * rayon::current_num_threads();
        let splits = if tiles >= want {
            1
        } else {
            want.div_ceil(tiles)
                .min(shape.kv_len / MIN_SPLIT_KEYS)
                .max(1)
        };
        let split_keys = shape.kv_len.div_ceil(splits).div_ceil(BC) * BC;
        Plan {
            shape,
            block_rows,
            q_blocks,
            splits,
            split_keys,
        }
    }

    /// Task `t` as (query block, kv head, split), last query block first.
    fn task(&self, t: usize) -> (usize, usize, usize) {
        let per_block = self.shape.n_kv_heads * self.splits;
        let qb = self.q_blocks - 1 - t / per_block;
        let rest = t % per_block;
        (qb, rest / self.splits, rest % self.splits)
    }
}

/// Where a task's rows go.
enum Dst<'a> {
    /// Final output, written at the rows' places.
    Out(SharedOut),
    /// This task's split-K partial: per row `[max, sum, out[d]]`.
    Part(&'a mut [f32]),
}

struct TaskArgs<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    plan: &'a Plan,
    scale: f32,
    tile: &'a mut Tile,
    task: usize,
    dst: Dst<'a>,
}

impl<'a> TaskArgs<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        q: &'a [f32],
        k: &'a [f32],
        v: &'a [f32],
        plan: &'a Plan,
        scale: f32,
        tile: &'a mut Tile,
        task: usize,
        dst: Dst<'a>,
    ) -> Self {
        TaskArgs {
            q,
            k,
            v,
            plan,
            scale,
            tile,
            task,
            dst,
        }
    }
}

fn run(isa: Isa, args: TaskArgs) {
    match isa {
        // SAFETY: `Isa::detect` saw AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => unsafe { task_avx2(args) },
        _ => task::<false>(args),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn task_avx2(args: TaskArgs) {
    task::<true>(args)
}

// No closures here: they would not inherit the AVX2 instance's features.
#[inline(always)]
fn task<const FMA: bool>(a: TaskArgs) {
    let s = a.plan.shape;
    let (d, group) = (s.head_dim, s.group());
    let row = s.n_heads * d;
    let (qb, kvh, split) = a.plan.task(a.task);
    let i0 = qb * a.plan.block_rows;
    let q_rows = a.plan.block_rows.min(s.q_len - i0);
    let t = a.tile;
    t.reset(q_rows * group);
    for il in 0..q_rows {
        for g in 0..group {
            let r = il * group + g;
            let src = &a.q[(i0 + il) * row + (kvh * group + g) * d..][..d];
            for (x, y) in t.q[r * d..(r + 1) * d].iter_mut().zip(src) {
                *x = y * a.scale;
            }
            t.limit[r] = s.q_start + i0 + il + 1;
        }
    }
    let end = s.q_start + i0 + q_rows;
    let first = split * a.plan.split_keys;
    let last = ((split + 1) * a.plan.split_keys).min(end);
    let packed = t.rows >= PACK_ROWS;
    let mut j0 = first;
    while j0 < last {
        let n = BC.min(last - j0);
        let block = KvBlock {
            k: a.k,
            v: a.v,
            kv_row: s.n_kv_heads * d,
            off: kvh * d,
            j0,
            n,
        };
        attend_block::<FMA>(t, &block, packed);
        j0 += n;
    }
    match a.dst {
        Dst::Out(out) => {
            for r in 0..t.rows {
                let (il, g) = (r / group, r % group);
                let at = (i0 + il) * row + (kvh * group + g) * d;
                // SAFETY: each (query row, head) belongs to exactly one task.
                t.write_row(r, unsafe { out.slice(at, d) });
            }
        }
        Dst::Part(part) => {
            for r in 0..t.rows {
                let p = &mut part[r * (d + 2)..(r + 1) * (d + 2)];
                p[0] = t.m[r];
                p[1] = t.l[r];
                t.write_row(r, &mut p[2..]);
            }
        }
    }
}

/// Combines the splits of every row: weights `l_s · e^(m_s − max)`.
fn merge(parts: &[f32], out: &mut [f32], plan: &Plan, stride: usize) {
    let s = plan.shape;
    let (d, group) = (s.head_dim, s.group());
    out.par_chunks_mut(s.n_heads * d)
        .enumerate()
        .for_each(|(i, out_row)| {
            let (qb, il) = (i / plan.block_rows, i % plan.block_rows);
            for (h, o) in out_row.chunks_exact_mut(d).enumerate() {
                let (kvh, g) = (h / group, h % group);
                let r = il * group + g;
                let first = ((plan.q_blocks - 1 - qb) * s.n_kv_heads + kvh) * plan.splits;
                let part = |sp: usize| &parts[(first + sp) * stride + r * (d + 2)..][..d + 2];
                let mut max = f32::NEG_INFINITY;
                for sp in 0..plan.splits {
                    if part(sp)[1] > 0.0 {
                        max = max.max(part(sp)[0]);
                    }
                }
                o.fill(0.0);
                let mut total = 0f32;
                for sp in 0..plan.splits {
                    let p = part(sp);
                    if p[1] > 0.0 {
                        let w = p[1] * exp_neg::<false>(p[0] - max);
                        total += w;
                        for (x, y) in o.iter_mut().zip(&p[2..]) {
                            *x += w * y;
                        }
                    }
                }
                let inv = 1.0 / total;
                for x in o.iter_mut() {
                    *x *= inv;
                }
            }
        });
}
