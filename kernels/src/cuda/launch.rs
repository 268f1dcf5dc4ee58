//! Launch geometry of every CUDA kernel, as pure functions of the problem
//! shape, so that grid and block sizes, shared-memory bytes and argument
//! checks are unit-tested on machines without a GPU. The constants mirror the
//! `#define`s of the `.cu` sources; the tests below read those sources to keep
//! the two in step.

/// Query rows per flash-attention CTA with 4 warps (`FA_BM` in flash.cu);
/// each warp owns 16 rows, so the 8-warp `_w8` kernels take 128.
pub const FLASH_BLOCK_M: usize = 64;
/// Keys per flash-attention tile (`FA_BN` in flash.cu).
pub const FLASH_BLOCK_N: usize = 64;
/// Threads per flash-attention CTA of the 4-warp kernels.
pub const FLASH_THREADS: u32 = 128;
/// Keys per indexer block (`SP_BLOCK` in sparse.cu): the unit of sparse selection.
pub const SPARSE_BLOCK: usize = 64;
/// Threads per sparse-attention CTA (`SP_THREADS`).
pub const SPARSE_THREADS: u32 = 128;
/// Keys per per-warp staging tile in sparse attention (`SP_SUB`).
pub const SPARSE_SUB: usize = 32;
/// Rows (query x head pairs) per sparse-attention CTA: one m16 tile.
pub const SPARSE_ROWS: usize = 16;
/// Query and block tile of the indexer-score kernel (`IX_T`).
pub const INDEXER_TILE: usize = 64;
/// Threads of the row-wise kernels (RMSNorm, argmax).
pub const ROW_THREADS: u32 = 256;
/// Threads of the element-wise kernels.
pub const ELEM_THREADS: u32 = 256;
/// Dynamic shared memory the attention and top-k kernels may ask for
/// (opted in at load time; below sm_90's 227 KiB less static shared memory).
pub const MAX_DYNAMIC_SMEM: u32 = 200 * 1024;

/// 16-bit storage format of attention inputs and outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Half {
    /// bfloat16 (the models' native format).
    Bf16,
    /// IEEE half precision.
    F16,
}

impl Half {
    /// The suffix of kernel names for this format.
    pub fn tag(self) -> &'static str {
        match self {
            Half::Bf16 => "bf16",
            Half::F16 => "f16",
        }
    }
}

/// Shape of one attention call on the GPU; same layouts and causal rule as
/// the CPU kernels (`q`/`out` `[q_len, n_heads, head_dim]`, `k`/`v`
/// `[kv_len, n_kv_heads, head_dim]`, query row `i` attends keys
/// `0..=q_start + i`). Kept separate from `crate::AttentionShape` so the GPU
/// path does not depend on the CPU module's internals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuAttnShape {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`).
    pub n_kv_heads: usize,
    /// Head dimension: 64 or 128.
    pub head_dim: usize,
    /// Query rows in this call.
    pub q_len: usize,
    /// Keys in the cache, this call's included.
    pub kv_len: usize,
    /// Absolute position of query row 0.
    pub q_start: usize,
}

/// Grid, block and dynamic shared memory of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Grid dimensions (x, y, z).
    pub grid: (u32, u32, u32),
    /// Block dimensions (x, y, z).
    pub block: (u32, u32, u32),
    /// Dynamic shared memory bytes.
    pub smem: u32,
}

impl Launch {
    /// Converts to cudarc's launch configuration.
    pub fn config(self) -> cudarc::driver::LaunchConfig {
        cudarc::driver::LaunchConfig {
            grid_dim: self.grid,
            block_dim: self.block,
            shared_mem_bytes: self.smem,
        }
    }
}

fn to_u32(what: &str, n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("{what} {n} does not fit a launch dimension"))
}

fn check_i32(what: &str, n: usize) -> Result<(), String> {
    if n > i32::MAX as usize {
        return Err(format!("{what} {n} exceeds the kernels' 32-bit indices"));
    }
    Ok(())
}

impl GpuAttnShape {
    /// Query heads per KV head.
    pub fn group(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// Elements of `q` and of the output.
    pub fn q_elems(&self) -> usize {
        self.q_len * self.n_heads * self.head_dim
    }

    /// Elements of `k` (and of `v`) the kernels read.
    pub fn kv_elems(&self) -> usize {
        self.kv_len * self.n_kv_heads * self.head_dim
    }

    /// Checks the shape against the kernels' limits and buffer lengths; a wrong
    /// layout would otherwise read out of bounds on the device.
    pub fn validate(&self, q: usize, k: usize, v: usize, out: usize) -> Result<(), String> {
        if self.n_kv_heads == 0
            || self.n_heads == 0
            || !self.n_heads.is_multiple_of(self.n_kv_heads)
        {
            return Err(format!("heads must be a multiple of kv heads: {self:?}"));
        }
        if self.head_dim != 64 && self.head_dim != 128 {
            return Err(format!(
                "head_dim {} unsupported (64 or 128)",
                self.head_dim
            ));
        }
        if self.q_len == 0 {
            return Err("empty query".into());
        }
        if self.q_start + self.q_len > self.kv_len {
            return Err(format!("queries beyond the cache: {self:?}"));
        }
        check_i32("q_len", self.q_len)?;
        check_i32("kv_len", self.kv_len)?;
        check_i32("n_heads", self.n_heads)?;
        if q != self.q_elems() || out != self.q_elems() {
            return Err(format!(
                "q/out hold {q}/{out} elements, shape needs {}",
                self.q_elems()
            ));
        }
        if k < self.kv_elems() || v < self.kv_elems() {
            return Err(format!(
                "k/v hold {k}/{v} elements, shape needs {}",
                self.kv_elems()
            ));
        }
        Ok(())
    }

    /// Key blocks of [`SPARSE_BLOCK`] keys covering the cache.
    pub fn n_blocks(&self) -> usize {
        self.kv_len.div_ceil(SPARSE_BLOCK)
    }

    /// Causal (query, key) pairs per head: `sum_i (q_start + i + 1)`.
    pub fn causal_pairs(&self) -> u64 {
        let (s, n) = (self.q_start as u64, self.q_len as u64);
        n * (s + 1) + n * (n - 1) / 2
    }

    /// Floating-point operations of exact causal attention: 4 * head_dim per
    /// attended (query, head, key) pair (2 for q.k, 2 for p*v; softmax not
    /// counted). For q_start = 0 this is FlashAttention's convention, half of
    /// 4 * L^2 * d * heads, up to the diagonal's L terms.
    pub fn causal_flops(&self) -> f64 {
        4.0 * self.head_dim as f64 * self.n_heads as f64 * self.causal_pairs() as f64
    }
}

/// Launch of `flash_fwd_*` with `warps` (4 or 8) warps of 16 query rows per
/// CTA: one CTA per `16 * warps` query rows and head; shared memory holds
/// the Q tile and two K and V tiles.
pub fn flash_launch(s: &GpuAttnShape, warps: usize) -> Result<Launch, String> {
    if warps != 4 && warps != 8 {
        return Err(format!(
            "flash attention has 4- and 8-warp kernels, not {warps}"
        ));
    }
    let m_blocks = s.q_len.div_ceil(16 * warps);
    Ok(Launch {
        grid: (
            to_u32("query tiles", m_blocks)?,
            to_u32("heads", s.n_heads)?,
            1,
        ),
        block: (32 * warps as u32, 1, 1),
        smem: flash_smem_bytes(s.head_dim, warps),
    })
}

/// Dynamic shared memory of flash attention: Q tile (16 rows per warp) +
/// 2 x (K + V) tiles of 16-bit values.
pub fn flash_smem_bytes(head_dim: usize, warps: usize) -> u32 {
    ((16 * warps + 4 * FLASH_BLOCK_N) * head_dim * 2) as u32
}

/// Settings of the sparse path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparseConfig {
    /// Blocks of [`SPARSE_BLOCK`] keys each query keeps (sinks and window included).
    pub top_k_blocks: usize,
    /// Blocks at the start always kept (attention sinks).
    pub n_sink: usize,
    /// Blocks ending at the query's own block always kept (local window).
    pub n_local: usize,
}

impl SparseConfig {
    /// The config for a budget of `keys` attended keys per query (rounded up
    /// to whole blocks), with one sink block and a two-block local window.
    pub fn for_keys(keys: usize) -> Self {
        SparseConfig {
            top_k_blocks: keys.div_ceil(SPARSE_BLOCK).max(3),
            n_sink: 1,
            n_local: 2,
        }
    }

    /// Checks the config: the forced blocks must fit in the budget, and the
    /// local window must include the query's own block.
    pub fn validate(&self, s: &GpuAttnShape) -> Result<(), String> {
        if self.n_local == 0 {
            return Err("the local window must hold the query's own block".into());
        }
        if self.n_sink + self.n_local > self.top_k_blocks {
            return Err(format!("forced blocks exceed the budget: {self:?}"));
        }
        if !SPARSE_ROWS.is_multiple_of(s.group()) {
            return Err(format!(
                "sparse attention needs the GQA group ({}) to divide {SPARSE_ROWS}",
                s.group()
            ));
        }
        Ok(())
    }
}

/// Launch of `block_minmax_*`: one CTA per (block, kv head), one thread per channel.
pub fn minmax_launch(s: &GpuAttnShape) -> Result<Launch, String> {
    Ok(Launch {
        grid: (
            to_u32("blocks", s.n_blocks())?,
            to_u32("kv heads", s.n_kv_heads)?,
            1,
        ),
        block: (s.head_dim as u32, 1, 1),
        smem: 0,
    })
}

/// Launch of `indexer_scores_*`: CTA tiles of 64 queries x 64 blocks per kv head.
pub fn indexer_launch(s: &GpuAttnShape) -> Result<Launch, String> {
    Ok(Launch {
        grid: (
            to_u32("block tiles", s.n_blocks().div_ceil(INDEXER_TILE))?,
            to_u32("query tiles", s.q_len.div_ceil(INDEXER_TILE))?,
            to_u32("kv heads", s.n_kv_heads)?,
        ),
        block: (256, 1, 1),
        smem: 0,
    })
}

/// Launch of `topk_blocks`: one warp per (query, kv head), 4 per CTA, each
/// with `n_blocks` 32-bit keys in shared memory.
pub fn topk_launch(s: &GpuAttnShape) -> Result<Launch, String> {
    let rows = s.q_len * s.n_kv_heads;
    let smem = 4 * 4 * s.n_blocks();
    if smem > MAX_DYNAMIC_SMEM as usize {
        return Err(format!(
            "{} blocks exceed top-k shared memory",
            s.n_blocks()
        ));
    }
    Ok(Launch {
        grid: (to_u32("top-k CTAs", rows.div_ceil(4))?, 1, 1),
        block: (128, 1, 1),
        smem: smem as u32,
    })
}

/// Launch of `sparse_attn_*`: one CTA per 16 / group queries and kv head.
pub fn sparse_launch(s: &GpuAttnShape) -> Result<Launch, String> {
    let qpc = SPARSE_ROWS / s.group();
    let smem = sparse_smem_bytes(s.head_dim, s.n_blocks());
    if smem > MAX_DYNAMIC_SMEM {
        return Err(format!(
            "{} blocks exceed sparse-attention shared memory",
            s.n_blocks()
        ));
    }
    Ok(Launch {
        grid: (
            to_u32("query groups", s.q_len.div_ceil(qpc))?,
            to_u32("kv heads", s.n_kv_heads)?,
            1,
        ),
        block: (SPARSE_THREADS, 1, 1),
        smem,
    })
}

/// Dynamic shared memory of sparse attention: the Q tile, 4 warps' K and V
/// staging tiles, and the block mask and union list (`n_blocks` words each).
pub fn sparse_smem_bytes(head_dim: usize, n_blocks: usize) -> u32 {
    (SPARSE_ROWS * head_dim * 2 + 4 * 2 * SPARSE_SUB * head_dim * 2 + 8 * n_blocks) as u32
}

/// Launch of a kernel with one thread per element (or per RoPE pair).
pub fn elementwise_launch(n: usize) -> Result<Launch, String> {
    Ok(Launch {
        grid: (
            to_u32("element CTAs", n.div_ceil(ELEM_THREADS as usize).max(1))?,
            1,
            1,
        ),
        block: (ELEM_THREADS, 1, 1),
        smem: 0,
    })
}

/// Launch of a row-wise kernel (RMSNorm, argmax): one CTA per row.
pub fn row_launch(rows: usize) -> Result<Launch, String> {
    Ok(Launch {
        grid: (to_u32("rows", rows)?, 1, 1),
        block: (ROW_THREADS, 1, 1),
        smem: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(q_len: usize, kv_len: usize, group: usize, d: usize) -> GpuAttnShape {
        GpuAttnShape {
            n_heads: 8 * group,
            n_kv_heads: 8,
            head_dim: d,
            q_len,
            kv_len,
            q_start: kv_len - q_len,
        }
    }

    #[test]
    fn flash_geometry() {
        let s = shape(4096, 4096, 4, 128);
        let l = flash_launch(&s, 4).unwrap();
        assert_eq!(l.grid, (64, 32, 1));
        assert_eq!(l.block, (128, 1, 1));
        assert_eq!(l.smem, 320 * 128 * 2);
        assert_eq!(
            flash_launch(&shape(65, 100, 1, 64), 4).unwrap().grid,
            (2, 8, 1)
        );
        let l8 = flash_launch(&s, 8).unwrap();
        assert_eq!(
            (l8.grid, l8.block, l8.smem),
            ((32, 32, 1), (256, 1, 1), 384 * 128 * 2)
        );
        assert!(flash_launch(&s, 6).is_err());
        assert!(flash_smem_bytes(128, 8) <= MAX_DYNAMIC_SMEM);
    }

    #[test]
    fn validation_rejects_bad_shapes() {
        let s = shape(10, 20, 4, 128);
        let (q, kv) = (s.q_elems(), s.kv_elems());
        assert!(s.validate(q, kv, kv, q).is_ok());
        assert!(s.validate(q - 1, kv, kv, q).is_err());
        assert!(s.validate(q, kv - 1, kv, q).is_err());
        let mut bad = s;
        bad.head_dim = 96;
        assert!(bad.validate(q, kv, kv, q).is_err());
        let mut bad = s;
        bad.n_kv_heads = 3;
        assert!(bad.validate(q, kv, kv, q).is_err());
        let mut bad = s;
        bad.q_start = 11;
        assert!(bad.validate(q, kv, kv, q).is_err());
    }

    #[test]
    fn causal_flops_match_flash_convention() {
        let s = shape(1024, 1024, 1, 128);
        let l = 1024f64;
        let fa = 4.0 * l * l * 128.0 * 8.0 / 2.0;
        // Differs from the paper's L^2/2 by the diagonal (L/2 pairs per head).
        let diag = 4.0 * 128.0 * 8.0 * l / 2.0;
        assert_eq!(s.causal_flops(), fa + diag);
        assert_eq!(shape(1, 10, 1, 64).causal_pairs(), 10);
    }

    #[test]
    fn sparse_geometry() {
        let s = shape(32768, 32768, 4, 128);
        assert_eq!(s.n_blocks(), 512);
        let c = SparseConfig::for_keys(2048);
        assert_eq!(c.top_k_blocks, 32);
        assert!(c.validate(&s).is_ok());
        let l = sparse_launch(&s).unwrap();
        assert_eq!(l.grid, (32768 / 4, 8, 1));
        assert_eq!(l.smem, (16 * 128 * 2 + 8 * 32 * 128 * 2 + 8 * 512) as u32);
        assert_eq!(topk_launch(&s).unwrap().grid, (32768 * 8 / 4, 1, 1));
        assert_eq!(topk_launch(&s).unwrap().smem, 16 * 512);
        assert_eq!(indexer_launch(&s).unwrap().grid, (8, 512, 8));
        assert_eq!(minmax_launch(&s).unwrap().grid, (512, 8, 1));
        let mut g3 = s;
        g3.n_heads = 24;
        assert!(c.validate(&g3).is_err());
        let bad = SparseConfig {
            top_k_blocks: 2,
            n_sink: 1,
            n_local: 2,
        };
        assert!(bad.validate(&s).is_err());
        // 128K keys still fit shared memory.
        assert!(sparse_launch(&shape(1, 131072, 4, 128)).is_ok());
    }

    #[test]
    fn small_launches() {
        assert_eq!(elementwise_launch(0).unwrap().grid.0, 1);
        assert_eq!(elementwise_launch(257).unwrap().grid.0, 2);
        assert_eq!(row_launch(7).unwrap().grid, (7, 1, 1));
    }

    #[test]
    fn constants_match_sources() {
        let flash = include_str!("flash.cu");
        assert!(flash.contains(&format!("#define FA_BM {FLASH_BLOCK_M}")));
        assert!(flash.contains(&format!("#define FA_BN {FLASH_BLOCK_N}")));
        assert!(flash.contains(&format!("#define FA_THREADS {FLASH_THREADS}")));
        let sparse = include_str!("sparse.cu");
        assert!(sparse.contains(&format!("#define SP_BLOCK {SPARSE_BLOCK}")));
        assert!(sparse.contains(&format!("#define SP_SUB {SPARSE_SUB}")));
        assert!(sparse.contains(&format!("#define SP_THREADS {SPARSE_THREADS}")));
        assert!(sparse.contains(&format!("#define IX_T {INDEXER_TILE}")));
    }
}
