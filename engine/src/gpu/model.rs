//! A model's weights on the GPU and the device operations its forward pass
//! is made of: bf16 matrices multiplied by cuBLAS (bf16 inputs, f32
//! accumulation and output), f32 norms and biases, and the glue kernels of
//! `model.cu`.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cudarc::cublas::{result as blas, sys as blas_sys, CudaBlas};
use cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg,
};
use folio_kernels::cuda::{compile_ptx, CudaRuntime, KernelSource};

use super::host::{blocks_for, to_bf16_bits, to_i32, Dims, GemmDims, GLUE_THREADS};
use crate::llm::weights::Linear;
use crate::llm::{Arch, Model, ModelConfig, RopeLayout};

/// The glue kernels of the GPU forward pass (`model.cu`), compiled at run
/// time by the kernels crate's NVRTC helper; CI compiles it without a GPU
/// (`engine/tests/gpu_compile.rs`).
pub const MODEL_SOURCE: KernelSource = KernelSource {
    name: "model.cu",
    source: include_str!("model.cu"),
    entry_points: &[
        "rope_table",
        "qkv_split_rope",
        "swiglu_f32_bf16",
        "add_bias_f32",
        "fill_random_bf16",
    ],
};

/// The loaded entry points of [`MODEL_SOURCE`].
pub(crate) struct GlueKernels {
    pub rope_table: CudaFunction,
    pub qkv_split_rope: CudaFunction,
    pub swiglu: CudaFunction,
    pub add_bias: CudaFunction,
    pub fill_random: CudaFunction,
}

impl GlueKernels {
    fn load(rt: &CudaRuntime) -> Result<Self> {
        let ptx = compile_ptx(&MODEL_SOURCE)?;
        let module = rt
            .context()
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .context("loading model.cu")?;
        let f = |name: &str| {
            module
                .load_function(name)
                .with_context(|| format!("loading kernel {name}"))
        };
        Ok(Self {
            rope_table: f("rope_table")?,
            qkv_split_rope: f("qkv_split_rope")?,
            swiglu: f("swiglu_f32_bf16")?,
            add_bias: f("add_bias_f32")?,
            fill_random: f("fill_random_bf16")?,
        })
    }
}

/// One linear layer on the device: `y = x·Wᵀ + b` with `W` `[out, in]` bf16.
pub struct GpuLinear {
    /// bf16 bits of `W`, row-major `[out, in]` as on the CPU.
    pub weight: CudaSlice<u16>,
    /// f32 bias of `out` values, if the layer has one.
    pub bias: Option<CudaSlice<f32>>,
    /// Output features.
    pub out: usize,
    /// Input features.
    pub inp: usize,
}

/// One transformer block's weights on the device.
pub struct GpuLayer {
    /// RMSNorm weight before attention (f32).
    pub attn_norm: CudaSlice<f32>,
    /// Q, K and V stacked (`[q_dim + 2 kv_dim, hidden]`), with qwen2's biases.
    pub qkv: GpuLinear,
    /// Attention output projection.
    pub attn_out: GpuLinear,
    /// RMSNorm weight before the feed-forward block (f32).
    pub ffn_norm: CudaSlice<f32>,
    /// Gate and up projections stacked (`[2 ffn, hidden]`).
    pub gate_up: GpuLinear,
    /// Down projection.
    pub down: GpuLinear,
}

/// A model whose weights live on the GPU: what [`super::GpuSession`]s run.
/// Matrices are bf16 (dequantized from the GGUF's blocks via the CPU
/// model's f32 copies, then rounded), norms and biases f32.
pub struct GpuModel {
    rt: Arc<CudaRuntime>,
    pub(crate) blas: CudaBlas,
    pub(crate) glue: GlueKernels,
    /// The model's hyper-parameters (as on the CPU).
    pub config: ModelConfig,
    /// Shapes derived from the config, checked against the kernels' limits.
    pub dims: Dims,
    /// Rotary layout of the architecture (interleaved for llama, halves for qwen2).
    pub rope_layout: RopeLayout,
    /// Token embeddings `[vocab, hidden]` (bf16).
    pub embeddings: CudaSlice<u16>,
    /// The transformer blocks.
    pub layers: Vec<GpuLayer>,
    /// Final RMSNorm weight (f32).
    pub output_norm: CudaSlice<f32>,
    /// The output projection, `None` when tied to the embeddings.
    pub output: Option<GpuLinear>,
}

fn upload_linear(stream: &Arc<CudaStream>, lin: &Linear) -> Result<GpuLinear> {
    let (out, inp) = (lin.out_features(), lin.in_features());
    let host = lin.dequantize_all();
    Ok(GpuLinear {
        weight: stream.clone_htod(&to_bf16_bits(&host))?,
        bias: match &lin.bias {
            Some(b) => Some(stream.clone_htod(b)?),
            None => None,
        },
        out,
        inp,
    })
}

impl GpuModel {
    /// Uploads `model`'s weights to the GPU of `runtime` (matrices rounded
    /// to bf16) and loads the glue kernels. Takes the runtime owned or as an
    /// `Arc` (models can share one).
    pub fn upload(model: &Model, runtime: impl Into<Arc<CudaRuntime>>) -> Result<Self> {
        let c = &model.config;
        let plain = matches!(c.arch, Arch::Llama | Arch::Qwen2)
            && model.weights.rope_factors.fixed.is_none()
            && model.weights.rope_factors.short.is_none();
        if !plain {
            anyhow::bail!(
                "the GPU decoder runs llama and qwen2 models without RoPE factors; {} ({:?}) \
                 runs on the CPU (leave out --gpu)",
                c.name,
                c.arch
            );
        }
        let rt: Arc<CudaRuntime> = runtime.into();
        let dims = Dims::new(&model.config)?;
        let stream = rt.stream().clone();
        let w = &model.weights;
        let mut layers = Vec::with_capacity(w.layers.len());
        for l in &w.layers {
            layers.push(GpuLayer {
                attn_norm: stream.clone_htod(&l.attn_norm)?,
                qkv: upload_linear(&stream, &l.qkv)?,
                attn_out: upload_linear(&stream, &l.attn_out)?,
                ffn_norm: stream.clone_htod(&l.ffn_norm)?,
                gate_up: upload_linear(&stream, &l.gate_up)?,
                down: upload_linear(&stream, &l.down)?,
            });
        }
        let output = if w.tied_output {
            None
        } else {
            Some(upload_linear(&stream, &w.output)?)
        };
        let this = Self {
            blas: CudaBlas::new(stream.clone()).context("creating the cuBLAS handle")?,
            glue: GlueKernels::load(&rt)?,
            config: model.config.clone(),
            dims,
            rope_layout: model.rope_layout(),
            embeddings: stream.clone_htod(&to_bf16_bits(&w.embeddings.dequantize_all()))?,
            layers,
            output_norm: stream.clone_htod(&w.output_norm)?,
            output,
            rt,
        };
        this.check_shapes()?;
        Ok(this)
    }

    /// A model of `config`'s shape with pseudo-random bf16 weights (uniform,
    /// scaled by `1/sqrt(in)`), unit norms and zero qwen2 biases, made on
    /// the device: for timing shapes whose weights are not at hand (speed
    /// does not depend on the values). Untied output.
    pub fn random(
        config: ModelConfig,
        runtime: impl Into<Arc<CudaRuntime>>,
        seed: u32,
    ) -> Result<Self> {
        let rt: Arc<CudaRuntime> = runtime.into();
        let dims = Dims::new(&config)?;
        let glue = GlueKernels::load(&rt)?;
        let stream = rt.stream().clone();
        let mut counter = seed;
        let mut matrix = |n: usize, scale: f32| -> Result<CudaSlice<u16>> {
            let mut m = stream.alloc_zeros::<u16>(n)?;
            counter = counter.wrapping_add(0x9E37_79B9);
            fill_random(&stream, &glue.fill_random, &mut m, counter, scale)?;
            Ok(m)
        };
        let h = dims.hidden;
        let mut linear = |out: usize, inp: usize, bias: bool| -> Result<GpuLinear> {
            Ok(GpuLinear {
                weight: matrix(out * inp, (3.0 / inp as f32).sqrt())?,
                bias: if bias {
                    Some(stream.alloc_zeros::<f32>(out)?)
                } else {
                    None
                },
                out,
                inp,
            })
        };
        let qwen = config.arch == Arch::Qwen2;
        let ones = vec![1f32; h];
        let mut layers = Vec::with_capacity(dims.n_layers);
        for _ in 0..dims.n_layers {
            layers.push(GpuLayer {
                attn_norm: stream.clone_htod(&ones)?,
                qkv: linear(dims.qkv_dim(), h, qwen)?,
                attn_out: linear(h, dims.q_dim(), false)?,
                ffn_norm: stream.clone_htod(&ones)?,
                gate_up: linear(2 * dims.ffn, h, false)?,
                down: linear(h, dims.ffn, false)?,
            });
        }
        let output = Some(linear(dims.vocab, h, false)?);
        let embeddings = matrix(dims.vocab * h, 1.0)?;
        let this = Self {
            blas: CudaBlas::new(stream.clone()).context("creating the cuBLAS handle")?,
            output_norm: stream.clone_htod(&ones)?,
            rope_layout: config.arch.rope_layout(),
            rt,
            glue,
            config,
            dims,
            embeddings,
            layers,
            output,
        };
        this.check_shapes()?;
        Ok(this)
    }

    /// Bytes of device memory the weights take (bf16 matrices, f32 norms
    /// and biases).
    pub fn weight_bytes(&self) -> usize {
        let lin =
            |l: &GpuLinear| l.weight.num_bytes() + l.bias.as_ref().map_or(0, |b| b.num_bytes());
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.attn_norm.num_bytes()
                    + l.ffn_norm.num_bytes()
                    + lin(&l.qkv)
                    + lin(&l.attn_out)
                    + lin(&l.gate_up)
                    + lin(&l.down)
            })
            .sum();
        layers
            + self.embeddings.num_bytes()
            + self.output_norm.num_bytes()
            + self.output.as_ref().map_or(0, lin)
    }

    /// Checks every matrix against the config's shapes, so that a mismatch
    /// is an error here rather than an out-of-bounds read on the device.
    fn check_shapes(&self) -> Result<()> {
        let d = &self.dims;
        let h = d.hidden;
        let want = |lin: &GpuLinear, out: usize, inp: usize, what: &str| -> Result<()> {
            if lin.out != out || lin.inp != inp || lin.weight.len() != out * inp {
                bail!(
                    "{what}: [{}, {}] on the device, the config needs [{out}, {inp}]",
                    lin.out,
                    lin.inp
                );
            }
            if lin.bias.as_ref().is_some_and(|b| b.len() != out) {
                bail!("{what}: bias length differs from {out}");
            }
            Ok(())
        };
        if self.layers.len() != d.n_layers {
            bail!(
                "{} layers uploaded, config has {}",
                self.layers.len(),
                d.n_layers
            );
        }
        for (i, l) in self.layers.iter().enumerate() {
            want(&l.qkv, d.qkv_dim(), h, &format!("layer {i} qkv"))?;
            want(&l.attn_out, h, d.q_dim(), &format!("layer {i} attn_out"))?;
            want(&l.gate_up, 2 * d.ffn, h, &format!("layer {i} gate_up"))?;
            want(&l.down, h, d.ffn, &format!("layer {i} down"))?;
            if l.attn_norm.len() != h || l.ffn_norm.len() != h {
                bail!("layer {i}: norm length differs from hidden {h}");
            }
        }
        if let Some(o) = &self.output {
            want(o, d.vocab, h, "output")?;
        }
        if self.embeddings.len() != d.vocab * h || self.output_norm.len() != h {
            bail!("embedding or output norm shape differs from the config");
        }
        Ok(())
    }

    /// The runtime (context, stream, kernels) the model lives on.
    pub fn runtime(&self) -> &CudaRuntime {
        &self.rt
    }

    /// The stream every operation of this model runs on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        self.rt.stream()
    }

    /// `y[rows, out] (+)= x[rows, in] · Wᵀ` on cuBLAS for a bf16 weight `w`
    /// `[out, in]`: bf16 inputs, f32 accumulation and output; `accumulate`
    /// adds to `y` (beta = 1, the residual connection) instead of
    /// overwriting it. No bias.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm<X: DevicePtr<u16>, Y: DevicePtrMut<f32>>(
        &self,
        w: &CudaSlice<u16>,
        out: usize,
        inp: usize,
        x: &X,
        rows: usize,
        y: &mut Y,
        accumulate: bool,
    ) -> Result<()> {
        if w.len() < out * inp || x.len() < rows * inp || y.len() < rows * out {
            bail!(
                "matrix product of {rows} rows through [{out}, {inp}]: weight holds {}, input {}, output {}",
                w.len(),
                x.len(),
                y.len()
            );
        }
        let g = GemmDims::linear(rows, inp, out)?;
        let (alpha, beta) = (1f32, if accumulate { 1f32 } else { 0f32 });
        let stream = self.stream();
        let (a, _ra) = w.device_ptr(stream);
        let (b, _rb) = x.device_ptr(stream);
        let (c, _rc) = y.device_ptr_mut(stream);
        // SAFETY: the lengths were checked above against the elements cuBLAS
        // reads and writes (A: out·in, B: rows·in, C: rows·out); the
        // pointers stay valid for the call (their records drop after it).
        unsafe {
            blas::gemm_ex(
                *self.blas.handle(),
                blas_sys::cublasOperation_t::CUBLAS_OP_T,
                blas_sys::cublasOperation_t::CUBLAS_OP_N,
                g.m,
                g.n,
                g.k,
                (&alpha) as *const f32 as *const _,
                a as *const _,
                blas_sys::cudaDataType_t::CUDA_R_16BF,
                g.lda,
                b as *const _,
                blas_sys::cudaDataType_t::CUDA_R_16BF,
                g.ldb,
                (&beta) as *const f32 as *const _,
                c as *mut _,
                blas_sys::cudaDataType_t::CUDA_R_32F,
                g.ldc,
                blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| anyhow::anyhow!("cuBLAS GemmEx ({rows} x {inp} -> {out}): {e:?}"))?;
        Ok(())
    }

    /// A linear layer: [`Self::gemm`] then its bias, if any, on every row.
    pub(crate) fn linear(
        &self,
        w: &GpuLinear,
        x: &CudaSlice<u16>,
        rows: usize,
        y: &mut CudaSlice<f32>,
        accumulate: bool,
    ) -> Result<()> {
        self.gemm(&w.weight, w.out, w.inp, x, rows, y, accumulate)?;
        if let Some(b) = &w.bias {
            self.add_bias(y, b, rows)?;
        }
        Ok(())
    }

    fn add_bias(&self, y: &mut CudaSlice<f32>, bias: &CudaSlice<f32>, rows: usize) -> Result<()> {
        let n = bias.len();
        if y.len() < rows * n {
            bail!("bias of {n} on {} values", y.len());
        }
        let (r, ni) = (to_i32(rows, "rows")?, to_i32(n, "bias")?);
        let mut b = self.stream().launch_builder(&self.glue.add_bias);
        b.arg(y).arg(bias).arg(&r).arg(&ni);
        // SAFETY: the kernel touches rows·n values of y (checked) and n of bias.
        unsafe { b.launch(glue_config(rows * n)?) }?;
        Ok(())
    }

    /// Logits `[rows, vocab]` of bf16 normed rows through the output layer
    /// (the embedding matrix when tied).
    pub(crate) fn logits(
        &self,
        normed: &CudaSlice<u16>,
        rows: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<()> {
        match &self.output {
            Some(o) => self.linear(o, normed, rows, out, false),
            None => {
                let (v, h) = (self.dims.vocab, self.dims.hidden);
                self.gemm(&self.embeddings, v, h, normed, rows, out, false)
            }
        }
    }
}

/// Launch configuration of a glue kernel with one thread per element.
pub(crate) fn glue_config(threads: usize) -> Result<LaunchConfig> {
    Ok(LaunchConfig {
        grid_dim: (blocks_for(threads)?, 1, 1),
        block_dim: (GLUE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    })
}

fn fill_random(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    x: &mut CudaSlice<u16>,
    seed: u32,
    scale: f32,
) -> Result<()> {
    let n = x.len() as i64;
    let cfg = glue_config(x.len())?;
    let mut b = stream.launch_builder(f);
    b.arg(x).arg(&n).arg(&seed).arg(&scale);
    // SAFETY: the kernel writes the n values of x.
    unsafe { b.launch(cfg) }?;
    Ok(())
}
