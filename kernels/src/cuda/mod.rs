//! The GPU path: CUDA C kernels compiled at run time with NVRTC and launched
//! through the CUDA driver, both loaded dynamically by `cudarc`, so folio
//! builds and runs on machines with no CUDA at all (it stays on the CPU).
//!
//! - [`SOURCES`]: every kernel source (the `.cu` files beside this module,
//!   each prefixed with `common.cuh`) and the entry points it must define.
//! - [`compile_ptx`]: NVRTC compile of one source to PTX for [`ARCH`]
//!   (sm_90, Hopper); CI runs it for every source without a GPU.
//! - [`CudaRuntime`]: a context, a stream and every kernel loaded, with one
//!   method per kernel that checks shapes and computes its launch with the
//!   pure functions of [`launch`].
//!
//! Kernels take 16-bit tensors as raw bits in `CudaSlice<u16>` (bf16 or f16,
//! see [`Half`]); convert on the host with the `half` crate.

pub mod launch;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, PushKernelArg};
use cudarc::nvrtc::CompileOptions;

pub use launch::{GpuAttnShape, Half, Launch, SparseConfig};

/// Virtual architecture NVRTC compiles for: PTX for sm_90 (H100/H200). The
/// program names it, so CI compiles the kernels without a GPU.
pub const ARCH: &str = "compute_90";

/// Warps per flash-attention CTA unless [`CudaRuntime::set_flash_warps`]
/// says otherwise: the 8-warp (128-row) kernels ran 1.2-1.3x faster than the
/// 4-warp ones on an H200 (BENCHMARKS.md, "GPU (H200)").
pub const DEFAULT_FLASH_WARPS: usize = 8;

/// The message when no CUDA driver can be loaded.
pub const NO_DRIVER: &str = "no CUDA driver found (libcuda.so): folio runs on the CPU";

/// One CUDA C translation unit and the `extern "C"` kernels it defines.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// File name, also NVRTC's program name in error messages.
    pub name: &'static str,
    /// Full source text (common helpers included).
    pub source: &'static str,
    /// Kernels the compiled PTX must define.
    pub entry_points: &'static [&'static str],
}

/// Every kernel source of the GPU path.
pub const SOURCES: &[KernelSource] = &[
    KernelSource {
        name: "flash.cu",
        source: concat!(include_str!("common.cuh"), include_str!("flash.cu")),
        entry_points: &[
            "flash_fwd_bf16_d64",
            "flash_fwd_bf16_d128",
            "flash_fwd_f16_d64",
            "flash_fwd_f16_d128",
            "flash_fwd_bf16_d64_w8",
            "flash_fwd_bf16_d128_w8",
            "flash_fwd_f16_d64_w8",
            "flash_fwd_f16_d128_w8",
        ],
    },
    KernelSource {
        name: "sparse.cu",
        source: concat!(include_str!("common.cuh"), include_str!("sparse.cu")),
        entry_points: &[
            "block_minmax_bf16",
            "block_minmax_f16",
            "indexer_scores_bf16",
            "indexer_scores_f16",
            "topk_blocks",
            "sparse_attn_bf16_d64",
            "sparse_attn_bf16_d128",
            "sparse_attn_f16_d64",
            "sparse_attn_f16_d128",
        ],
    },
    KernelSource {
        name: "elementwise.cu",
        source: concat!(include_str!("common.cuh"), include_str!("elementwise.cu")),
        entry_points: &[
            "rope_f32",
            "rope_bf16",
            "rms_norm_f32",
            "rms_norm_f32_bf16",
            "swiglu_f32",
            "swiglu_bf16",
            "embed_f32",
            "embed_bf16",
            "argmax_f32",
        ],
    },
];

/// Why the GPU path is unavailable or a call failed.
#[derive(Debug)]
pub enum CudaError {
    /// `libcuda.so` could not be loaded: no GPU driver on this machine.
    NoDriver,
    /// `libnvrtc.so` could not be loaded (see [`nvrtc_available`]).
    NoNvrtc,
    /// NVRTC rejected a source; carries its log.
    Compile {
        /// The source's file name.
        name: &'static str,
        /// NVRTC's message and log.
        log: String,
    },
    /// A driver call failed (no device, out of memory, launch error...).
    Driver(cudarc::driver::DriverError),
    /// Buffers or shapes do not fit the kernel.
    Shape(String),
}

impl fmt::Display for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CudaError::NoDriver => f.write_str(NO_DRIVER),
            CudaError::NoNvrtc => f.write_str(
                "no NVRTC library found (libnvrtc.so.13): install nvidia-cuda-nvrtc and put its lib folder on LD_LIBRARY_PATH",
            ),
            CudaError::Compile { name, log } => write!(f, "NVRTC failed on {name}: {log}"),
            CudaError::Driver(e) => write!(f, "CUDA driver error: {e}"),
            CudaError::Shape(s) => write!(f, "bad GPU kernel arguments: {s}"),
        }
    }
}

impl std::error::Error for CudaError {}

impl From<cudarc::driver::DriverError> for CudaError {
    fn from(e: cudarc::driver::DriverError) -> Self {
        CudaError::Driver(e)
    }
}

impl From<String> for CudaError {
    fn from(s: String) -> Self {
        CudaError::Shape(s)
    }
}

/// Whether `libcuda.so` can be loaded; cudarc panics on first use otherwise.
pub fn driver_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether `libnvrtc.so` can be loaded (found by the dynamic loader by name:
/// `libnvrtc.so`, `libnvrtc.so.13`, ... so its folder must be on
/// `LD_LIBRARY_PATH` or in the loader's cache).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles one kernel source to PTX text for [`ARCH`] with NVRTC.
pub fn compile_ptx(src: &KernelSource) -> Result<String, CudaError> {
    compile(src).map(|p| p.to_src())
}

fn compile(src: &KernelSource) -> Result<cudarc::nvrtc::Ptx, CudaError> {
    if !nvrtc_available() {
        return Err(CudaError::NoNvrtc);
    }
    let opts = CompileOptions {
        arch: Some(ARCH),
        name: Some(src.name.to_string()),
        options: vec!["--std=c++17".into(), "-lineinfo".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(src.source, opts).map_err(|e| CudaError::Compile {
        name: src.name,
        log: format!("{e:?}"),
    })
}

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

/// A CUDA context with folio's kernels loaded: the handle the GPU forward
/// pass launches everything through.
pub struct CudaRuntime {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    funcs: HashMap<&'static str, CudaFunction>,
    flash_warps: usize,
}

fn i(n: usize) -> i32 {
    n as i32
}

impl CudaRuntime {
    /// Opens GPU `ordinal`, compiles every kernel with NVRTC and loads it.
    /// Returns [`CudaError::NoDriver`] instead of panicking when the driver
    /// library is missing.
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        if !driver_available() {
            return Err(CudaError::NoDriver);
        }
        let ctx = CudaContext::new(ordinal)?;
        let stream = ctx.default_stream();
        let mut funcs = HashMap::new();
        for src in SOURCES {
            let module = ctx.load_module(compile(src)?)?;
            for &name in src.entry_points {
                let f = module.load_function(name)?;
                if name.starts_with("flash_")
                    || name.starts_with("sparse_")
                    || name == "topk_blocks"
                {
                    f.set_attribute(
                        cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        launch::MAX_DYNAMIC_SMEM as i32,
                    )?;
                }
                funcs.insert(name, f);
            }
        }
        Ok(CudaRuntime {
            ctx,
            stream,
            funcs,
            flash_warps: DEFAULT_FLASH_WARPS,
        })
    }

    /// Chooses the flash-attention kernel family: 4 or 8 warps (64 or 128
    /// query rows) per CTA; the check program times both.
    pub fn set_flash_warps(&mut self, warps: usize) -> Result<(), CudaError> {
        if warps != 4 && warps != 8 {
            return Err(CudaError::Shape(format!("flash warps {warps} (4 or 8)")));
        }
        self.flash_warps = warps;
        Ok(())
    }

    /// Warps per flash-attention CTA in use (4 or 8).
    pub fn flash_warps(&self) -> usize {
        self.flash_warps
    }

    /// The CUDA context (allocations, events).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream every kernel is launched on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The device's name, for logs.
    pub fn device_name(&self) -> Result<String, CudaError> {
        Ok(self.ctx.name()?)
    }

    fn func(&self, name: &str) -> Result<&CudaFunction, CudaError> {
        self.funcs
            .get(name)
            .ok_or_else(|| CudaError::Shape(format!("kernel {name} not loaded")))
    }

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
        let suffix = if self.flash_warps == 8 { "_w8" } else { "" };
        let f = self.func(&format!(
            "flash_fwd_{}_d{}{suffix}",
            dtype.tag(),
            s.head_dim
        ))?;
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
        let f = self.func(&format!("block_minmax_{}", dtype.tag()))?;
        let mut b = self.stream.launch_builder(f);
        b.arg(k).arg(&mut scratch.kmin).arg(&mut scratch.kmax);
        b.arg(&kl).arg(&nk).arg(&d).arg(&nbi);
        // SAFETY: validated shapes; the kernel stays inside kv_len and n_blocks.
        unsafe { b.launch(launch::minmax_launch(s)?.config()) }?;

        let f = self.func(&format!("indexer_scores_{}", dtype.tag()))?;
        let mut b = self.stream.launch_builder(f);
        b.arg(q)
            .arg(&scratch.kmin)
            .arg(&scratch.kmax)
            .arg(&mut scratch.scores);
        b.arg(&ql).arg(&qs).arg(&nh).arg(&nk).arg(&d).arg(&nbi);
        // SAFETY: as above.
        unsafe { b.launch(launch::indexer_launch(s)?.config()) }?;

        let (kb, ns, nl) = (i(c.top_k_blocks), i(c.n_sink), i(c.n_local));
        let f = self.func("topk_blocks")?;
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
        let f = self.func(&format!("sparse_attn_{}_d{}", dtype.tag(), s.head_dim))?;
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

    /// RoPE in place on `x` `[rows, n_heads, head_dim]` (bf16 bits), rows at
    /// positions `first_pos..`; `inv_freq` holds one inverse frequency per
    /// rotated pair (any scaling mode, computed as on the CPU); `halves`
    /// selects qwen2's (i, i + pairs) layout over llama's (2i, 2i + 1).
    #[allow(clippy::too_many_arguments)]
    pub fn rope_bf16(
        &self,
        x: &mut CudaSlice<u16>,
        inv_freq: &CudaSlice<f32>,
        rows: usize,
        n_heads: usize,
        head_dim: usize,
        first_pos: usize,
        halves: bool,
    ) -> Result<(), CudaError> {
        self.rope(
            "rope_bf16",
            x,
            inv_freq,
            rows,
            n_heads,
            head_dim,
            first_pos,
            halves,
        )
    }

    /// [`Self::rope_bf16`] on f32 values.
    #[allow(clippy::too_many_arguments)]
    pub fn rope_f32(
        &self,
        x: &mut CudaSlice<f32>,
        inv_freq: &CudaSlice<f32>,
        rows: usize,
        n_heads: usize,
        head_dim: usize,
        first_pos: usize,
        halves: bool,
    ) -> Result<(), CudaError> {
        self.rope(
            "rope_f32", x, inv_freq, rows, n_heads, head_dim, first_pos, halves,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn rope<T>(
        &self,
        name: &str,
        x: &mut CudaSlice<T>,
        inv_freq: &CudaSlice<f32>,
        rows: usize,
        n_heads: usize,
        head_dim: usize,
        first_pos: usize,
        halves: bool,
    ) -> Result<(), CudaError> {
        let pairs = inv_freq.len();
        if 2 * pairs > head_dim || x.len() != rows * n_heads * head_dim {
            return Err(CudaError::Shape(format!(
                "rope: {pairs} pairs, head_dim {head_dim}, {} elements for {rows} rows x {n_heads} heads",
                x.len()
            )));
        }
        if first_pos + rows > i32::MAX as usize {
            return Err(CudaError::Shape("rope positions exceed i32".into()));
        }
        let l = launch::elementwise_launch(rows * pairs)?;
        let (r, h, d, p, fp, hv) = (
            i(rows),
            i(n_heads),
            i(head_dim),
            i(pairs),
            i(first_pos),
            halves as i32,
        );
        let mut b = self.stream.launch_builder(self.func(name)?);
        b.arg(x)
            .arg(inv_freq)
            .arg(&r)
            .arg(&h)
            .arg(&d)
            .arg(&p)
            .arg(&fp)
            .arg(&hv);
        // SAFETY: lengths checked above.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }

    /// RMSNorm of f32 rows `x` `[rows, h]` into f32 `out`.
    pub fn rms_norm_f32(
        &self,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        eps: f32,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        self.rms_norm("rms_norm_f32", x, w, eps, out)
    }

    /// RMSNorm of f32 rows into bf16 bits (the input of a bf16 matrix product).
    pub fn rms_norm_bf16_out(
        &self,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        eps: f32,
        out: &mut CudaSlice<u16>,
    ) -> Result<(), CudaError> {
        self.rms_norm("rms_norm_f32_bf16", x, w, eps, out)
    }

    fn rms_norm<T>(
        &self,
        name: &str,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        eps: f32,
        out: &mut CudaSlice<T>,
    ) -> Result<(), CudaError> {
        let h = w.len();
        if h == 0 || !x.len().is_multiple_of(h) || out.len() != x.len() {
            return Err(CudaError::Shape(format!(
                "rms_norm: x {} out {} h {h}",
                x.len(),
                out.len()
            )));
        }
        let l = launch::row_launch(x.len() / h)?;
        let hi = i(h);
        let mut b = self.stream.launch_builder(self.func(name)?);
        b.arg(x).arg(w).arg(out).arg(&hi).arg(&eps);
        // SAFETY: lengths checked above.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }

    /// SwiGLU on f32 rows `[gate | up]` (`[rows, 2 * ffn]`) into `[rows, ffn]`.
    pub fn swiglu_f32(
        &self,
        gate_up: &CudaSlice<f32>,
        ffn: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        self.swiglu("swiglu_f32", gate_up, ffn, out)
    }

    /// [`Self::swiglu_f32`] on bf16 bits.
    pub fn swiglu_bf16(
        &self,
        gate_up: &CudaSlice<u16>,
        ffn: usize,
        out: &mut CudaSlice<u16>,
    ) -> Result<(), CudaError> {
        self.swiglu("swiglu_bf16", gate_up, ffn, out)
    }

    fn swiglu<T>(
        &self,
        name: &str,
        gu: &CudaSlice<T>,
        ffn: usize,
        out: &mut CudaSlice<T>,
    ) -> Result<(), CudaError> {
        if ffn == 0 || gu.len() != 2 * out.len() || !out.len().is_multiple_of(ffn) {
            return Err(CudaError::Shape(format!(
                "swiglu: in {} out {} ffn {ffn}",
                gu.len(),
                out.len()
            )));
        }
        let rows = out.len() / ffn;
        let l = launch::elementwise_launch(out.len())?;
        let (r, f) = (i(rows), i(ffn));
        let mut b = self.stream.launch_builder(self.func(name)?);
        b.arg(gu).arg(out).arg(&r).arg(&f);
        // SAFETY: lengths checked above.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }

    /// Embedding lookup from an f32 table `[vocab, h]`; `tokens` are checked
    /// against `vocab` on the host (`host_tokens` is their host copy).
    pub fn embed_f32(
        &self,
        tokens: &CudaSlice<u32>,
        host_tokens: &[u32],
        table: &CudaSlice<f32>,
        h: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        self.embed("embed_f32", tokens, host_tokens, table, h, out)
    }

    /// Embedding lookup from a bf16 table, into f32 rows.
    pub fn embed_bf16(
        &self,
        tokens: &CudaSlice<u32>,
        host_tokens: &[u32],
        table: &CudaSlice<u16>,
        h: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        self.embed("embed_bf16", tokens, host_tokens, table, h, out)
    }

    fn embed<T>(
        &self,
        name: &str,
        tokens: &CudaSlice<u32>,
        host_tokens: &[u32],
        table: &CudaSlice<T>,
        h: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        let n = tokens.len();
        if h == 0 || host_tokens.len() != n || out.len() != n * h || !table.len().is_multiple_of(h)
        {
            return Err(CudaError::Shape(format!(
                "embed: {n} tokens, h {h}, out {}",
                out.len()
            )));
        }
        let vocab = table.len() / h;
        if let Some(t) = host_tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(CudaError::Shape(format!(
                "token id {t} is outside the vocabulary ({vocab})"
            )));
        }
        let l = launch::elementwise_launch(n * h)?;
        let (ni, hi) = (i(n), i(h));
        let mut b = self.stream.launch_builder(self.func(name)?);
        b.arg(tokens).arg(table).arg(out).arg(&ni).arg(&hi);
        // SAFETY: token ids and lengths checked above.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }

    /// Index of the largest logit of each row of `[rows, vocab]` (lowest on ties).
    pub fn argmax_f32(
        &self,
        logits: &CudaSlice<f32>,
        vocab: usize,
        out: &mut CudaSlice<u32>,
    ) -> Result<(), CudaError> {
        if vocab == 0 || logits.len() != out.len() * vocab {
            return Err(CudaError::Shape(format!(
                "argmax: {} logits, vocab {vocab}",
                logits.len()
            )));
        }
        let l = launch::row_launch(out.len())?;
        let v = i(vocab);
        let mut b = self.stream.launch_builder(self.func("argmax_f32")?);
        b.arg(logits).arg(out).arg(&v);
        // SAFETY: lengths checked above.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_their_entry_points() {
        for src in SOURCES {
            for e in src.entry_points {
                assert!(src.source.contains(e), "{} lacks {e}", src.name);
            }
        }
    }

    #[test]
    fn runtime_without_driver_is_an_error_not_a_panic() {
        if driver_available() {
            return;
        }
        let err = CudaRuntime::new(0).err().expect("no driver here");
        assert_eq!(err.to_string(), NO_DRIVER);
    }
}
