//! Row-wise and element-wise launches: RoPE, RMSNorm, SwiGLU, embedding
//! look-up and argmax.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::error::CudaError;
use super::kernel::Kernel;
use super::launch;
use super::runtime::{i, CudaRuntime};

impl CudaRuntime {
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
            Kernel::RopeBf16,
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
            Kernel::RopeF32,
            x,
            inv_freq,
            rows,
            n_heads,
            head_dim,
            first_pos,
            halves,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn rope<T>(
        &self,
        kernel: Kernel,
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
        let mut b = self.stream.launch_builder(self.func(kernel)?);
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
        self.rms_norm(Kernel::RmsNormF32, x, w, eps, out)
    }

    /// RMSNorm of f32 rows into bf16 bits (the input of a bf16 matrix product).
    pub fn rms_norm_bf16_out(
        &self,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        eps: f32,
        out: &mut CudaSlice<u16>,
    ) -> Result<(), CudaError> {
        self.rms_norm(Kernel::RmsNormF32Bf16, x, w, eps, out)
    }

    fn rms_norm<T>(
        &self,
        kernel: Kernel,
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
        let mut b = self.stream.launch_builder(self.func(kernel)?);
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
        self.swiglu(Kernel::SwigluF32, gate_up, ffn, out)
    }

    /// [`Self::swiglu_f32`] on bf16 bits.
    pub fn swiglu_bf16(
        &self,
        gate_up: &CudaSlice<u16>,
        ffn: usize,
        out: &mut CudaSlice<u16>,
    ) -> Result<(), CudaError> {
        self.swiglu(Kernel::SwigluBf16, gate_up, ffn, out)
    }

    fn swiglu<T>(
        &self,
        kernel: Kernel,
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
        let mut b = self.stream.launch_builder(self.func(kernel)?);
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
        self.embed(Kernel::EmbedF32, tokens, host_tokens, table, h, out)
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
        self.embed(Kernel::EmbedBf16, tokens, host_tokens, table, h, out)
    }

    fn embed<T>(
        &self,
        kernel: Kernel,
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
        let mut b = self.stream.launch_builder(self.func(kernel)?);
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
        let mut b = self.stream.launch_builder(self.func(Kernel::ArgmaxF32)?);
        b.arg(logits).arg(out).arg(&v);
        // SAFETY: lengths checked above.
        unsafe { b.launch(l.config()) }?;
        Ok(())
    }
}
