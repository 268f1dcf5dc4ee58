//! A conversation on the GPU: the device KV cache (bf16) and the forward
//! pass, step for step the CPU's `Session::forward_chunk` with device
//! operations:
//!
//! | step | CPU (`llm::model`) | GPU |
//! | --- | --- | --- |
//! | embedding | f32 rows | `embed_bf16` (bf16 table) into f32 rows |
//! | norm before a projection | `rms_norm` f32 | `rms_norm_f32_bf16` (f32 in, bf16 out) |
//! | QKV, output, gate/up, down | candle f32 / quantized matvec | cuBLAS GemmEx, bf16 in, f32 out |
//! | q/k bias, RoPE, KV append | f32, cache f32 | `qkv_split_rope`: f32 math, bf16 q and cache |
//! | attention | flash (f32) | flash bf16 tensor cores, causal, GQA, `q_start` |
//! | residual add | `add_in_place` | cuBLAS beta = 1 into the f32 residual |
//! | SwiGLU | f32 | `swiglu_f32_bf16` |
//! | logits | f32 | final norm of the wanted rows, GemmEx, copied to the host |
//!
//! The residual stream stays f32, so the differences from the CPU are the
//! bf16 roundings of weights, normed activations, q, k, v and attention
//! outputs: about 1e-2 relative on the logits.

use std::ops::Range;

use anyhow::{bail, Result};
use cudarc::driver::{CudaSlice, PushKernelArg};
use folio_kernels::cuda::{GpuAttnShape, Half};

use super::host::{grow_capacity, to_i32, Dims};
use super::model::{glue_config, GpuModel};
use crate::llm::{Logits, Model, RopeLayout, RopeScaling, SessionOptions};

/// Prompt tokens per forward chunk on the GPU unless told otherwise: large
/// enough that the matrix products run near the tensor cores' rate, small
/// enough that activations stay a few hundred MB for the largest models.
pub const DEFAULT_GPU_PREFILL_CHUNK: usize = 2048;

/// How a GPU session runs: the parts of the CPU's `SessionOptions` that
/// apply on the GPU (attention is always exact flash attention, the KV
/// cache always bf16).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuSessionOptions {
    /// RoPE frequencies; `Dynamic` is resolved at the first prefill.
    pub rope_scaling: RopeScaling,
    /// Prompt tokens per forward chunk; bounds activation memory.
    pub prefill_chunk: usize,
}

impl Default for GpuSessionOptions {
    fn default() -> Self {
        Self {
            rope_scaling: RopeScaling::None,
            prefill_chunk: DEFAULT_GPU_PREFILL_CHUNK,
        }
    }
}

impl GpuSessionOptions {
    /// The defaults for `model`: the RoPE scaling its GGUF declares.
    pub fn for_model(model: &Model) -> Self {
        Self {
            rope_scaling: model.config.default_rope_scaling(),
            ..Self::default()
        }
    }
}

impl GpuSessionOptions {
    /// The GPU session for a read asked with the CPU's `options`: their
    /// RoPE scaling, the GPU's own prefill chunk (the CPU's is sized for
    /// cache-resident CPU work, far below what a GPU needs). Refused, with
    /// the reason, when they ask for what the GPU path does not run: an
    /// attention other than exact flash, or an f16 or int8 KV cache (the
    /// default f32 cache is held in bf16 on the GPU, which the card shows).
    pub fn from_session(options: &SessionOptions) -> Result<Self, String> {
        let attention = options.attention.name();
        let kv = options.kv_dtype;
        if attention != "flash" || kv != crate::llm::KvDtype::F32 || options.eviction.is_some() {
            let mut asked = Vec::new();
            if attention != "flash" {
                asked.push(format!("{attention} attention"));
            }
            if kv != crate::llm::KvDtype::F32 {
                asked.push(format!("an {} KV cache", kv.name()));
            }
            if let Some(e) = options.eviction {
                asked.push(format!("KV eviction ({})", e.policy.name()));
            }
            return Err(format!(
                "the GPU runs exact flash attention with a bf16 KV cache, and this read asks for {}",
                asked.join(" and ")
            ));
        }
        Ok(Self {
            rope_scaling: options.rope_scaling,
            ..Self::default()
        })
    }
}

/// Device buffers of one forward chunk of `rows` tokens (the kernels take
/// buffers of exact lengths, so each chunk size has its own set).
struct Scratch {
    rows: usize,
    x: CudaSlice<f32>,
    normed: CudaSlice<u16>,
    qkv: CudaSlice<f32>,
    q: CudaSlice<u16>,
    attn: CudaSlice<u16>,
    gate_up: CudaSlice<f32>,
    act: CudaSlice<u16>,
    cos_sin: CudaSlice<f32>,
}

/// Chunk sizes whose buffers are kept (prefill chunk, its remainder, decode).
const KEPT_SCRATCH: usize = 3;

/// A conversation's state over a [`GpuModel`]: its device KV cache and
/// settings; the GPU counterpart of `llm::Session` with the methods
/// generation needs (`forward`, `position`, `reset`).
pub struct GpuSession<'g> {
    model: &'g GpuModel,
    options: GpuSessionOptions,
    /// The scaling in effect (`Dynamic` resolved) and its inverse frequencies.
    scaling: RopeScaling,
    inv_freq: CudaSlice<f32>,
    keys: Vec<CudaSlice<u16>>,
    values: Vec<CudaSlice<u16>>,
    capacity: usize,
    len: usize,
    /// Tokens the request declared before its first forward (0: unknown).
    declared_length: usize,
    scratch: Vec<Scratch>,
    no_bias: CudaSlice<f32>,
}

impl<'g> GpuSession<'g> {
    /// A session with an empty cache.
    pub fn new(model: &'g GpuModel, options: GpuSessionOptions) -> Result<Self> {
        options.rope_scaling.validate()?;
        let stream = model.stream();
        let mut s = Self {
            model,
            options,
            scaling: RopeScaling::None,
            inv_freq: stream.alloc_zeros(1)?,
            keys: Vec::new(),
            values: Vec::new(),
            capacity: 0,
            len: 0,
            declared_length: 0,
            scratch: Vec::new(),
            no_bias: stream.alloc_zeros(1)?,
        };
        s.set_scaling(options.rope_scaling.resolve(0))?;
        Ok(s)
    }

    /// The model this session runs.
    pub fn model(&self) -> &'g GpuModel {
        self.model
    }

    /// The session's settings.
    pub fn options(&self) -> &GpuSessionOptions {
        &self.options
    }

    /// The RoPE scaling in effect (`Dynamic` shows what it resolved to).
    pub fn rope_scaling(&self) -> RopeScaling {
        self.scaling
    }

    /// Tokens in the cache.
    pub fn position(&self) -> usize {
        self.len
    }

    /// Forgets the cached tokens from `len` on: positions come from the
    /// cached length and later writes overwrite the rest, so cutting is
    /// setting the length. `false` when `len` is past what is cached.
    pub fn truncate(&mut self, len: usize) -> bool {
        if len > self.len {
            return false;
        }
        self.len = len;
        true
    }

    /// Forgets the conversation (the cache's memory is kept for the next one).
    pub fn reset(&mut self) {
        self.len = 0;
        self.declared_length = 0;
    }

    /// Declares, on an empty cache, how many tokens the request will hold,
    /// so `Dynamic` RoPE is resolved for the whole request rather than its
    /// first chunk.
    pub fn declare_length(&mut self, total: usize) {
        if self.len == 0 {
            self.declared_length = total;
        }
    }

    /// Bytes of device memory the KV cache holds (its capacity, not its use).
    pub fn kv_bytes(&self) -> usize {
        self.capacity * self.model.dims.kv_bytes_per_token()
    }

    /// Waits for all queued device work (timing).
    pub fn synchronize(&self) -> Result<()> {
        Ok(self.model.stream().synchronize()?)
    }

    fn set_scaling(&mut self, scaling: RopeScaling) -> Result<()> {
        let c = &self.model.config;
        let f = scaling.inverse_frequencies(c.rope_theta, c.rope_dim);
        self.inv_freq = if f.is_empty() {
            self.model.stream().alloc_zeros(1)?
        } else {
            self.model.stream().clone_htod(&f)?
        };
        self.scaling = scaling;
        Ok(())
    }

    /// Makes room for `needed` tokens in every layer's K and V buffers,
    /// copying what is cached.
    fn reserve(&mut self, needed: usize) -> Result<()> {
        let cap = grow_capacity(self.capacity, needed);
        if cap == self.capacity {
            return Ok(());
        }
        let d = &self.model.dims;
        let stream = self.model.stream();
        let (kv, used) = (d.kv_dim(), self.len * d.kv_dim());
        let grow = |old: &mut Vec<CudaSlice<u16>>| -> Result<()> {
            let mut fresh = Vec::with_capacity(d.n_layers);
            for _ in 0..d.n_layers {
                fresh.push(stream.alloc_zeros::<u16>(cap * kv)?);
            }
            if used > 0 {
                for (buf, prev) in fresh.iter_mut().zip(old.iter()) {
                    stream.memcpy_dtod(&prev.slice(..used), &mut buf.slice_mut(..used))?;
                }
            }
            *old = fresh;
            Ok(())
        };
        grow(&mut self.keys)?;
        grow(&mut self.values)?;
        self.capacity = cap;
        Ok(())
    }

    fn take_scratch(&mut self, rows: usize) -> Result<Scratch> {
        if let Some(i) = self.scratch.iter().position(|s| s.rows == rows) {
            return Ok(self.scratch.remove(i));
        }
        let n = self.model.dims.chunk(rows);
        let st = self.model.stream();
        Ok(Scratch {
            rows,
            x: st.alloc_zeros(n.x)?,
            normed: st.alloc_zeros(n.normed)?,
            qkv: st.alloc_zeros(n.qkv)?,
            q: st.alloc_zeros(n.q)?,
            attn: st.alloc_zeros(n.attn)?,
            gate_up: st.alloc_zeros(n.gate_up)?,
            act: st.alloc_zeros(n.act)?,
            cos_sin: st.alloc_zeros(n.cos_sin)?,
        })
    }

    fn keep_scratch(&mut self, s: Scratch) {
        self.scratch.insert(0, s);
        self.scratch.truncate(KEPT_SCRATCH);
    }

    /// Runs `tokens` through the model in chunks, appending to the cache;
    /// returns the last position's logits or every position's
    /// (`[tokens, vocab]`), as the CPU session does.
    pub fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            bail!("forward called with no tokens");
        }
        if self.len == 0 {
            let total = tokens.len().max(self.declared_length);
            let resolved = self.options.rope_scaling.resolve(total);
            if resolved != self.scaling {
                self.set_scaling(resolved)?;
            }
        }
        self.reserve(self.len + tokens.len())?;
        let chunk = self.options.prefill_chunk.max(1);
        let n_chunks = tokens.len().div_ceil(chunk);
        let mut out = Vec::new();
        for (i, piece) in tokens.chunks(chunk).enumerate() {
            let want = match logits {
                Logits::All => Some(0..piece.len()),
                Logits::Last if i + 1 == n_chunks => Some(piece.len() - 1..piece.len()),
                Logits::Last => None,
            };
            out.extend(self.forward_chunk(piece, want)?);
        }
        Ok(out)
    }

    fn forward_chunk(&mut self, tokens: &[u32], want: Option<Range<usize>>) -> Result<Vec<f32>> {
        let t = tokens.len();
        let mut s = self.take_scratch(t)?;
        let result = self.run_chunk(&mut s, tokens, want);
        self.keep_scratch(s);
        result
    }

    fn run_chunk(
        &mut self,
        s: &mut Scratch,
        tokens: &[u32],
        want: Option<Range<usize>>,
    ) -> Result<Vec<f32>> {
        let m = self.model;
        let rt = m.runtime();
        let stream = m.stream();
        let d = m.dims;
        let c = &m.config;
        let (t, h, hd) = (tokens.len(), d.hidden, d.head_dim);
        let start = self.len;
        if start + t > self.capacity {
            bail!(
                "KV cache holds {} tokens, {} needed",
                self.capacity,
                start + t
            );
        }

        let tok = stream.clone_htod(tokens)?;
        rt.embed_bf16(&tok, tokens, &m.embeddings, h, &mut s.x)?;

        let pairs = d.rope_pairs;
        let (ti, pi, si) = (
            to_i32(t, "rows")?,
            to_i32(pairs, "pairs")?,
            to_i32(start, "position")?,
        );
        if pairs > 0 {
            let mut b = stream.launch_builder(&m.glue.rope_table);
            b.arg(&self.inv_freq)
                .arg(&mut s.cos_sin)
                .arg(&ti)
                .arg(&pi)
                .arg(&si);
            // SAFETY: cos_sin holds rows·pairs·2 values, inv_freq `pairs`.
            unsafe { b.launch(glue_config(t * pairs)?) }?;
        }

        let shape = GpuAttnShape {
            n_heads: d.n_heads,
            n_kv_heads: d.n_kv_heads,
            head_dim: hd,
            q_len: t,
            kv_len: start + t,
            q_start: start,
        };
        let scale = self.scaling.attention_factor() / (hd as f32).sqrt();
        let halves = i32::from(m.rope_layout == RopeLayout::Halves);
        let (nh, nkv, hdi) = (
            to_i32(d.n_heads, "heads")?,
            to_i32(d.n_kv_heads, "kv heads")?,
            to_i32(hd, "head_dim")?,
        );
        let ffn = to_i32(d.ffn, "ffn")?;
        let split_cfg = glue_config(d.split_threads(t))?;
        let swiglu_cfg = glue_config(t * d.ffn)?;
        for (l, layer) in m.layers.iter().enumerate() {
            rt.rms_norm_bf16_out(&s.x, &layer.attn_norm, c.rms_eps, &mut s.normed)?;
            let qkv = &layer.qkv;
            m.gemm(
                &qkv.weight,
                qkv.out,
                qkv.inp,
                &s.normed,
                t,
                &mut s.qkv,
                false,
            )?;
            let (bias, has_bias) = match &qkv.bias {
                Some(b) => (b, 1i32),
                None => (&self.no_bias, 0i32),
            };
            let mut b = stream.launch_builder(&m.glue.qkv_split_rope);
            b.arg(&s.qkv)
                .arg(bias)
                .arg(&has_bias)
                .arg(&s.cos_sin)
                .arg(&mut s.q)
                .arg(&mut self.keys[l])
                .arg(&mut self.values[l]);
            b.arg(&ti)
                .arg(&nh)
                .arg(&nkv)
                .arg(&hdi)
                .arg(&pi)
                .arg(&halves)
                .arg(&si);
            // SAFETY: qkv holds rows·qkv_dim values, q rows·q_dim, the
            // caches capacity·kv_dim >= (start + rows)·kv_dim (checked
            // above), the bias qkv_dim when has_bias, cos_sin rows·pairs·2.
            unsafe { b.launch(split_cfg) }?;
            rt.flash_attention(
                Half::Bf16,
                &shape,
                scale,
                &s.q,
                &self.keys[l],
                &self.values[l],
                &mut s.attn,
            )?;
            m.linear(&layer.attn_out, &s.attn, t, &mut s.x, true)?;
            rt.rms_norm_bf16_out(&s.x, &layer.ffn_norm, c.rms_eps, &mut s.normed)?;
            m.linear(&layer.gate_up, &s.normed, t, &mut s.gate_up, false)?;
            let mut b = stream.launch_builder(&m.glue.swiglu);
            b.arg(&s.gate_up).arg(&mut s.act).arg(&ti).arg(&ffn);
            // SAFETY: gate_up holds rows·2·ffn values, act rows·ffn.
            unsafe { b.launch(swiglu_cfg) }?;
            m.linear(&layer.down, &s.act, t, &mut s.x, true)?;
        }
        self.len += t;

        let Some(rows) = want else {
            return Ok(Vec::new());
        };
        let n = rows.len();
        let mut last = stream.alloc_zeros::<f32>(n * h)?;
        stream.memcpy_dtod(&s.x.slice(rows.start * h..rows.end * h), &mut last)?;
        let mut normed = stream.alloc_zeros::<u16>(n * h)?;
        rt.rms_norm_bf16_out(&last, &m.output_norm, c.rms_eps, &mut normed)?;
        let mut logits = stream.alloc_zeros::<f32>(n * d.vocab)?;
        m.logits(&normed, n, &mut logits)?;
        Ok(stream.clone_dtoh(&logits)?)
    }
}

/// Bytes of device memory a session's activation buffers for a chunk of
/// `rows` tokens take (for reports and memory planning).
pub fn chunk_bytes(dims: &Dims, rows: usize) -> usize {
    let n = dims.chunk(rows);
    4 * (n.x + n.qkv + n.gate_up + n.cos_sin) + 2 * (n.normed + n.q + n.attn + n.act)
}

/// A [`GpuSession`] with the CPU model it was uploaded from, so generation
/// and scoring ([`crate::llm::Decoder`]) find the tokenizer and chat template.
pub struct GpuDecoder<'g> {
    /// The CPU model the session was uploaded from (tokenizer, chat template).
    pub model: &'g Model,
    /// The model's weights and KV cache on the device.
    pub session: GpuSession<'g>,
}

impl<'g> crate::llm::Decoder<'g> for GpuDecoder<'g> {
    fn model(&self) -> &'g Model {
        self.model
    }
    fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        self.session.forward(tokens, logits)
    }
    fn position(&self) -> usize {
        self.session.position()
    }
    fn reset(&mut self) {
        self.session.reset()
    }
    fn declare_length(&mut self, total: usize) {
        self.session.declare_length(total)
    }
    fn prefill_chunk(&self) -> usize {
        self.session.options().prefill_chunk
    }
    fn truncate(&mut self, len: usize) -> bool {
        self.session.truncate(len)
    }
    fn read_stats(&self) -> crate::llm::ReadStats {
        crate::llm::ReadStats {
            device: "cuda",
            attention: "flash",
            attended_fraction: 1.0,
            rope_scaling: self.session.rope_scaling(),
            kv_dtype: "bf16",
            kv_cache_bytes: self.session.kv_bytes(),
            eviction: None,
            server: None,
        }
    }
}
