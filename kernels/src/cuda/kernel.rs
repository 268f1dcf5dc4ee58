//! Every kernel of [`super::SOURCES`], as a value: the launch methods ask
//! for a [`Kernel`], never for a name built from strings at the call, and
//! a test holds the names to the sources' entry points.

use super::error::CudaError;
use super::launch::Half;

/// The head dimensions the attention kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeadDim {
    /// 64 (Qwen2.5-0.5B/1.5B, SmolLM2).
    D64,
    /// 128 (Llama 3, Qwen2.5-7B and most larger models).
    D128,
}

impl HeadDim {
    /// The attention kernels' head dimension for `head_dim`, or why none.
    pub fn of(head_dim: usize) -> Result<Self, CudaError> {
        match head_dim {
            64 => Ok(HeadDim::D64),
            128 => Ok(HeadDim::D128),
            d => Err(CudaError::Shape(format!(
                "head_dim {d}: the GPU attention kernels are built for 64 and 128"
            ))),
        }
    }
}

/// A kernel folio launches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Causal GQA flash attention; `eight_warps`: 128 query rows per CTA
    /// instead of 64.
    Flash {
        /// Storage format of q, k, v and the output.
        dtype: Half,
        /// Head dimension compiled for.
        head_dim: HeadDim,
        /// The 8-warp family.
        eight_warps: bool,
    },
    /// Per-block channel minima and maxima of the keys (sparse indexer).
    BlockMinmax(Half),
    /// Quest-style upper-bound scores of each query against each block.
    IndexerScores(Half),
    /// Each query's top-k blocks, with sinks and the local window.
    TopkBlocks,
    /// Exact attention over each query's selected blocks.
    SparseAttention {
        /// Storage format of q, k, v and the output.
        dtype: Half,
        /// Head dimension compiled for.
        head_dim: HeadDim,
    },
    /// RoPE on f32 rows.
    RopeF32,
    /// RoPE on bf16 rows.
    RopeBf16,
    /// RMSNorm, f32 in and out.
    RmsNormF32,
    /// RMSNorm, f32 in, bf16 out.
    RmsNormF32Bf16,
    /// SwiGLU on f32 rows.
    SwigluF32,
    /// SwiGLU on bf16 rows.
    SwigluBf16,
    /// Embedding look-up from an f32 table.
    EmbedF32,
    /// Embedding look-up from a bf16 table.
    EmbedBf16,
    /// Index of each row's largest value.
    ArgmaxF32,
}

const HALVES: [Half; 2] = [Half::Bf16, Half::F16];
const DIMS: [HeadDim; 2] = [HeadDim::D64, HeadDim::D128];

impl Kernel {
    /// Every kernel, in the order of the sources' entry points.
    pub fn all() -> Vec<Kernel> {
        let mut all = Vec::new();
        for eight_warps in [false, true] {
            for dtype in HALVES {
                for head_dim in DIMS {
                    all.push(Kernel::Flash {
                        dtype,
                        head_dim,
                        eight_warps,
                    });
                }
            }
        }
        for dtype in HALVES {
            all.push(Kernel::BlockMinmax(dtype));
        }
        for dtype in HALVES {
            all.push(Kernel::IndexerScores(dtype));
        }
        all.push(Kernel::TopkBlocks);
        for dtype in HALVES {
            for head_dim in DIMS {
                all.push(Kernel::SparseAttention { dtype, head_dim });
            }
        }
        all.extend([
            Kernel::RopeF32,
            Kernel::RopeBf16,
            Kernel::RmsNormF32,
            Kernel::RmsNormF32Bf16,
            Kernel::SwigluF32,
            Kernel::SwigluBf16,
            Kernel::EmbedF32,
            Kernel::EmbedBf16,
            Kernel::ArgmaxF32,
        ]);
        all
    }

    /// The `extern "C"` name the kernel has in its source.
    pub fn name(self) -> String {
        let d = |h: HeadDim| match h {
            HeadDim::D64 => 64,
            HeadDim::D128 => 128,
        };
        match self {
            Kernel::Flash {
                dtype,
                head_dim,
                eight_warps,
            } => format!(
                "flash_fwd_{}_d{}{}",
                dtype.tag(),
                d(head_dim),
                if eight_warps { "_w8" } else { "" }
            ),
            Kernel::BlockMinmax(dtype) => format!("block_minmax_{}", dtype.tag()),
            Kernel::IndexerScores(dtype) => format!("indexer_scores_{}", dtype.tag()),
            Kernel::TopkBlocks => "topk_blocks".into(),
            Kernel::SparseAttention { dtype, head_dim } => {
                format!("sparse_attn_{}_d{}", dtype.tag(), d(head_dim))
            }
            Kernel::RopeF32 => "rope_f32".into(),
            Kernel::RopeBf16 => "rope_bf16".into(),
            Kernel::RmsNormF32 => "rms_norm_f32".into(),
            Kernel::RmsNormF32Bf16 => "rms_norm_f32_bf16".into(),
            Kernel::SwigluF32 => "swiglu_f32".into(),
            Kernel::SwigluBf16 => "swiglu_bf16".into(),
            Kernel::EmbedF32 => "embed_f32".into(),
            Kernel::EmbedBf16 => "embed_bf16".into(),
            Kernel::ArgmaxF32 => "argmax_f32".into(),
        }
    }

    /// Whether it may use [`super::launch::MAX_DYNAMIC_SMEM`] of dynamic
    /// shared memory (opted in when loaded).
    pub fn large_shared_memory(self) -> bool {
        matches!(
            self,
            Kernel::Flash { .. } | Kernel::SparseAttention { .. } | Kernel::TopkBlocks
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::SOURCES;
    use super::*;

    #[test]
    fn the_kernels_are_exactly_the_sources_entry_points() {
        let names: Vec<String> = Kernel::all().into_iter().map(Kernel::name).collect();
        let entries: Vec<String> = SOURCES
            .iter()
            .flat_map(|s| s.entry_points.iter().map(|e| e.to_string()))
            .collect();
        let mut a = names.clone();
        let mut b = entries.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "two kernels share a name");
    }

    #[test]
    fn only_compiled_head_dims_are_kernels() {
        assert_eq!(HeadDim::of(64).unwrap(), HeadDim::D64);
        assert_eq!(HeadDim::of(128).unwrap(), HeadDim::D128);
        assert!(HeadDim::of(96).is_err());
    }
}
