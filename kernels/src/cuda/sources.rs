//! The kernel sources of the GPU path and their compilation by NVRTC.

use cudarc::nvrtc::CompileOptions;

use super::error::{nvrtc_available, CudaError};

/// Virtual architecture NVRTC compiles for: PTX for sm_90 (H100/H200). The
/// program names it, so CI compiles the kernels without a GPU.
pub const ARCH: &str = "compute_90";

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

/// Compiles one kernel source to PTX text for [`ARCH`] with NVRTC.
pub fn compile_ptx(src: &KernelSource) -> Result<String, CudaError> {
    compile(src).map(|p| p.to_src())
}

pub(super) fn compile(src: &KernelSource) -> Result<cudarc::nvrtc::Ptx, CudaError> {
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
