//! Attention launches: flash attention, and the sparse path's selection
//! (block statistics, indexer scores, top-k blocks) and attention.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::error::CudaError;
use super::kernel::{HeadDim, Kernel};
use super::launch::{self, GpuAttnShape, Half, SparseConfig};
use super::runtime::{i, CudaRuntime};

/// Scratch buffers of the sparse path, sized for one shape; reuse across calls.
pub struct SparseScratch {
    /// Per-block channel minima `[n_kv_heads, n_blocks, d]`.
    pub kmin: CudaSlice<f32>,
    /// Per-block channel maxima `[n_kv_heads, n_blocks, d]`.
    pub kmax: CudaSlice<f32>,
    /// Indexer scores `[n_kv_heads, q_len, n_blocks]`.
    pub scores: CudaSlice<f32>,
    /// Selected blocks `[n_kv_heads, q_len, top_k_blocks]`, ascending, -1 padded.
    pub selected: CudaSlice<i32>,
}

impl CudaRuntime {
    /// Causal GQA flash attention forward; `scale` multiplies q.k (usually
    /// `attention_factor / sqrt(head_dim)`). Output in the input format.
    #[allow(clippy::too_many_arguments)]
    pub fn flash_attention(
        &self,
        dtype: Half,
        s: &GpuAttnShape,
        scale: f32,
        q: &CudaSlice<u16>,
        k: &CudaSlice<u16>,
        v: &CudaSlice<u16>,
        out: &mut CudaSlice<u16>,
    ) -> Result<(), CudaError> {
        s.validate(q.len(), k.len(), v.len(), out.len())?;
        let l = launch::flash_launch(s, self.flash_warps)?;
        let f = self.func(Kernel::Flash {
            dtype,
            head_dim: HeadDim::of(s.head_dim)?,
            eight_warps: self.flash_warps == 8,
        })?;
        let scale_log2 = scale * std::f32::consts::LOG2_E;
        let (ql, kl, qs, nh, nk) = (
            i(s.q_len),
            i(s.kv_len),
            i(s.q_start),
            i(s.n_heads),
            i(s.n_kv_heads),
        );
        let mut b = self.stream.launch_builder(f);
        b.arg(q).arg(k).arg(v).arg(out);
        b.arg(&ql)
            .arg(&kl)
            .arg(&qs)
            .arg(&nh)
            .arg(&nk)
            .arg(&scale_log2);
        // SAFETY: shapes and buffer lengths were validated against the kernel's indexing.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }

    /// Allocates the sparse path's scratch for shape `s`.
    pub fn sparse_scratch(
        &self,
        s: &GpuAttnShape,
        c: &SparseConfig,
    ) -> Result<SparseScratch, CudaError> {
        let stats = s.n_kv_heads * s.n_blocks() * s.head_dim;
        Ok(SparseScratch {
            kmin: self.stream.alloc_zeros(stats)?,
            kmax: self.stream.alloc_zeros(stats)?,
            scores: self
                .stream
                .alloc_zeros(s.n_kv_heads * s.q_len * s.n_blocks())?,
            selected: self
                .stream
                .alloc_zeros(s.n_kv_heads * s.q_len * c.top_k_blocks)?,
        })
    }

    /// Indexer and selection: block statistics of `k`, Quest scores of every
    /// query against every causal block, and per-query top-k blocks into
    /// `scratch.selected`.
    pub fn sparse_select(
        &self,
        dtype: Half,
        s: &GpuAttnShape,
        c: &SparseConfig,
        q: &CudaSlice<u16>,
        k: &CudaSlice<u16>,
        scratch: &mut SparseScratch,
    ) -> Result<(), CudaError> {
        s.validate(q.len(), k.len(), k.len(), q.len())?;
        c.validate(s)?;
        let nb = s.n_blocks();
        if scratch.scores.len() < s.n_kv_heads * s.q_len * nb
            || scratch.selected.len() < s.n_kv_heads * s.q_len * c.top_k_blocks
            || scratch.kmin.len() < s.n_kv_heads * nb * s.head_dim
        {
            return Err(CudaError::Shape(
                "sparse scratch too small for this shape".into(),
            ));
        }
        let (ql, kl, qs, nh, nk, d, nbi) = (
            i(s.q_len),
            i(s.kv_len),
            i(s.q_start),
            i(s.n_heads),
            i(s.n_kv_heads),
            i(s.head_dim),
            i(nb),
        );
        let f = self.func(Kernel::BlockMinmax(dtype))?;
        let mut b = self.stream.launch_builder(f);
        b.arg(k).arg(&mut scratch.kmin).arg(&mut scratch.kmax);
        b.arg(&kl).arg(&nk).arg(&d).arg(&nbi);
        // SAFETY: validated shapes; the kernel stays inside kv_len and n_blocks.
        unsafe { b.launch(launch::minmax_launch(s)?.config()) }?;

        let f = self.func(Kernel::IndexerScores(dtype))?;
        let mut b = self.stream.launch_builder(f);
        b.arg(q)
            .arg(&scratch.kmin)
            .arg(&scratch.kmax)
            .arg(&mut scratch.scores);
        b.arg(&ql).arg(&qs).arg(&nh).arg(&nk).arg(&d).arg(&nbi);
        // SAFETY: as above.
        unsafe { b.launch(launch::indexer_launch(s)?.config()) }?;

        let (kb, ns, nl) = (i(c.top_k_blocks), i(c.n_sink), i(c.n_local));
        let f = self.func(Kernel::TopkBlocks)?;
        let mut b = self.stream.launch_builder(f);
        b.arg(&scratch.scores).arg(&mut scratch.selected);
        b.arg(&ql)
            .arg(&qs)
            .arg(&nk)
            .arg(&nbi)
            .arg(&kb)
            .arg(&ns)
            .arg(&nl);
        // SAFETY: as above.
        unsafe { b.launch(launch::topk_launch(s)?.config()) }?;
        Ok(())
    }

    /// Exact attention over the blocks in `selected` (from [`Self::sparse_select`]).
    #[allow(clippy::too_many_arguments)]
    pub fn sparse_attention(
        &self,
        dtype: Half,
        s: &GpuAttnShape,
        c: &SparseConfig,
        scale: f32,
        q: &CudaSlice<u16>,
        k: &CudaSlice<u16>,
        v: &CudaSlice<u16>,
        selected: &CudaSlice<i32>,
        out: &mut CudaSlice<u16>,
    ) -> Result<(), CudaError> {
        s.validate(q.len(), k.len(), v.len(), out.len())?;
        c.validate(s)?;
        if selected.len() < s.n_kv_heads * s.q_len * c.top_k_blocks {
            return Err(CudaError::Shape("selection buffer too small".into()));
        }
        let l = launch::sparse_launch(s)?;
        let f = self.func(Kernel::SparseAttention {
            dtype,
            head_dim: HeadDim::of(s.head_dim)?,
        })?;
        let scale_log2 = scale * std::f32::consts::LOG2_E;
        let (ql, kl, qs, nh, nk, nb, kb) = (
            i(s.q_len),
            i(s.kv_len),
            i(s.q_start),
            i(s.n_heads),
            i(s.n_kv_heads),
            i(s.n_blocks()),
            i(c.top_k_blocks),
        );
        let mut b = self.stream.launch_builder(f);
        b.arg(q).arg(k).arg(v).arg(selected).arg(out);
        b.arg(&ql)
            .arg(&kl)
            .arg(&qs)
            .arg(&nh)
            .arg(&nk)
            .arg(&nb)
            .arg(&kb)
            .arg(&scale_log2);
        // SAFETY: validated shapes and selection length.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }
}
