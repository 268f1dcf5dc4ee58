//! The attention seam of the forward pass.
//!
//! The forward pass calls an [`Attention`] for every layer and chunk; kernels
//! live in `folio-kernels`. New modes (tiled, sparse, CUDA) are new
//! implementations of this trait, not edits to the model.

use folio_kernels::attention::{self, AttentionShape, AttentionStats};

/// One attention algorithm over the layouts described in
/// [`folio_kernels::attention`].
pub trait Attention: Send + Sync {
    /// Name shown in reports (`dense`, `flash`, …).
    fn name(&self) -> &'static str;

    /// Writes attention of `q` over the cached `k`/`v` into `out`.
    fn attend(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        shape: AttentionShape,
        scale: f32,
    ) -> AttentionStats;
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
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        shape: AttentionShape,
        scale: f32,
    ) -> AttentionStats {
        attention::dense(q, k, v, out, shape, scale)
    }
}
