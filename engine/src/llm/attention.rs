//! The attention seam of the forward pass.
//!
//! The forward pass calls an [`Attention`] for every layer and chunk; kernels
//! live in `folio-kernels`. Modes (exact, tiled, sparse, later CUDA) are
//! implementations of this trait, not edits to the model.

use std::sync::Arc;

use folio_kernels::attention::{self, AttentionShape, AttentionStats, SparseConfig};

use super::kv_cache::KvView;

/// One attention algorithm over the layouts described in
/// [`folio_kernels::attention`].
pub trait Attention: Send + Sync {
    /// Name shown in reports (`dense`, `flash`, `sparse`).
    fn name(&self) -> &'static str;

    /// The mode and every parameter that changes what it computes: a saved
    /// KV cache is reused only under the same description.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Block size of the key summaries this mode reads, if it reads any; the
    /// session then keeps them beside the cache.
    fn key_summary_block(&self) -> Option<usize> {
        None
    }

    /// Writes attention of `q` over the cached keys and values into `out`.
    fn attend(
        &self,
        q: &[f32],
        kv: &KvView,
        out: &mut [f32],
        shape: AttentionShape,
        scale: f32,
    ) -> AttentionStats;
}

/// The attention modes folio ships, as a user picks them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttentionMode {
    /// Exact; materialises the q × k score matrix (the reference).
    Dense,
    /// Exact; tiled with an online softmax, memory linear in length.
    Flash,
    /// Approximate; each query attends to its top-k key blocks, the sinks
    /// and a local window.
    Sparse(SparseConfig),
}

impl AttentionMode {
    /// The implementation of this mode.
    pub fn build(self) -> Arc<dyn Attention> {
        match self {
            AttentionMode::Dense => Arc::new(DenseAttention),
            AttentionMode::Flash => Arc::new(FlashAttention),
            AttentionMode::Sparse(config) => Arc::new(SparseAttention { config }),
        }
    }

    /// Name for flags and reports.
    pub fn name(&self) -> &'static str {
        match self {
            AttentionMode::Dense => "dense",
            AttentionMode::Flash => "flash",
            AttentionMode::Sparse(_) => "sparse",
        }
    }
}

/// Exact attention through the dense reference kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenseAttention;

impl Attention for DenseAttention {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn attend(
        &self,
        q: &[f32],
        kv: &KvView,
        out: &mut [f32],
        shape: AttentionShape,
        scale: f32,
    ) -> AttentionStats {
        attention::dense(q, kv.keys, kv.values, out, shape, scale)
    }
}

/// Exact attention through the tiled (FlashAttention-style) kernel: the
/// default, since it needs no buffer that grows with length squared.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlashAttention;

impl Attention for FlashAttention {
    fn name(&self) -> &'static str {
        "flash"
    }

    fn attend(
        &self,
        q: &[f32],
        kv: &KvView,
        out: &mut [f32],
        shape: AttentionShape,
        scale: f32,
    ) -> AttentionStats {
        attention::flash(q, kv.keys, kv.values, out, shape, scale)
    }
}

/// Exact attention with Gemma 2's soft-capped logits: the mode every Gemma 2
/// session runs, whatever was asked (its sliding-window layers are given
/// their window by the forward pass, through the same kernel).
#[derive(Debug, Clone, Copy)]
pub struct CappedAttention {
    /// Attention logits become `cap · tanh(logit / cap)` (Gemma 2: 50); `None`: no cap.
    pub softcap: Option<f32>,
}

impl Attention for CappedAttention {
    fn name(&self) -> &'static str {
        "capped"
    }

    fn attend(
        &self,
        q: &[f32],
        kv: &KvView,
        out: &mut [f32],
        shape: AttentionShape,
        scale: f32,
    ) -> AttentionStats {
        let capping = attention::Capping {
            softcap: self.softcap,
            window: None,
        };
        attention::capped(q, kv.keys, kv.values, out, shape, scale, capping)
    }
}

/// DSA-style sparse attention with a training-free (Quest) indexer.
#[derive(Debug, Clone, Copy)]
pub struct SparseAttention {
    /// Keys chosen per query row, block size, sinks and local window.
    pub config: SparseConfig,
}

impl Attention for SparseAttention {
    fn name(&self) -> &'static str {
        "sparse"
    }
    fn describe(&self) -> String {
        format!("sparse {:?}", self.config)
    }

    fn key_summary_block(&self) -> Option<usize> {
        Some(self.config.block)
    }

    fn attend(
        &self,
        q: &[f32],
        kv: &KvView,
        out: &mut [f32],
        shape: AttentionShape,
        scale: f32,
    ) -> AttentionStats {
        let summaries = kv
            .summaries
            .expect("the session keeps key summaries for sparse attention");
        attention::sparse(
            q,
            kv.keys,
            kv.values,
            out,
            shape,
            scale,
            &self.config,
            summaries,
        )
    }
}
