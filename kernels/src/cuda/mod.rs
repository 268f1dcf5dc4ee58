//! The GPU path: CUDA C kernels compiled at run time with NVRTC and launched
//! through the CUDA driver, both loaded dynamically by `cudarc`, so folio
//! builds and runs on machines with no CUDA at all (it stays on the CPU).
//!
//! - `sources.rs`: [`SOURCES`], every kernel source (the `.cu` files beside
//!   this module, each prefixed with `common.cuh`) and the entry points it
//!   must define; [`compile_ptx`], NVRTC's compile of one to PTX for
//!   [`ARCH`] (sm_90, Hopper), which CI runs for every source without a GPU;
//! - `error.rs`: [`CudaError`], and the probes for the driver and NVRTC;
//! - `runtime.rs`: [`CudaRuntime`], a context, a stream and every kernel
//!   loaded; its launch methods are grouped by kernel family in
//!   `attention.rs` (flash, sparse selection and sparse attention) and
//!   `elementwise.rs` (RoPE, RMSNorm, SwiGLU, embedding, argmax), each
//!   checking shapes and computing its launch with the pure functions of
//!   [`launch`].
//!
//! Kernels take 16-bit tensors as raw bits in `CudaSlice<u16>` (bf16 or f16,
//! see [`Half`]); convert on the host with the `half` crate.

mod attention;
mod elementwise;
mod error;
mod kernel;
pub mod launch;
mod runtime;
mod sources;

pub use attention::SparseScratch;
pub use error::{driver_available, nvrtc_available, CudaError, NO_DRIVER};
pub use kernel::{HeadDim, Kernel};
pub use launch::{GpuAttnShape, Half, Launch, SparseConfig};
pub use runtime::CudaRuntime;
pub use sources::{compile_ptx, KernelSource, ARCH, SOURCES};

/// Warps per flash-attention CTA unless [`CudaRuntime::set_flash_warps`]
/// says otherwise: the 8-warp (128-row) kernels ran 1.2-1.3x faster than the
/// 4-warp ones on an H200 (BENCHMARKS.md, "GPU (H200)").
pub const DEFAULT_FLASH_WARPS: usize = 8;

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
