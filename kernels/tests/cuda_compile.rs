//! CI check of the GPU path without a GPU: every CUDA kernel source must
//! compile with NVRTC to sm_90 PTX and define each expected entry point.
//!
//! NVRTC is a shared library (`libnvrtc.so.13`, PyPI wheel
//! `nvidia-cuda-nvrtc`) found through `LD_LIBRARY_PATH`. Without it the test
//! skips with a message, unless `FOLIO_REQUIRE_NVRTC=1` (set by `.ci/run`),
//! where a missing NVRTC fails the test.

use folio_kernels::cuda::{compile_ptx, nvrtc_available, SOURCES};

#[test]
fn every_kernel_compiles_to_sm90_ptx() {
    let required = std::env::var("FOLIO_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    if !nvrtc_available() {
        assert!(
            !required,
            "FOLIO_REQUIRE_NVRTC=1 but libnvrtc could not be loaded (LD_LIBRARY_PATH={:?})",
            std::env::var("LD_LIBRARY_PATH").ok()
        );
        eprintln!("skipped: NVRTC (libnvrtc.so.13) not found; set LD_LIBRARY_PATH to its folder");
        return;
    }
    for src in SOURCES {
        let ptx = compile_ptx(src).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            ptx.contains(".target sm_90"),
            "{}: PTX not for sm_90",
            src.name
        );
        for entry in src.entry_points {
            assert!(
                ptx.contains(&format!(".entry {entry}(")),
                "{}: PTX lacks entry point {entry}",
                src.name
            );
        }
        // Tensor-core tiles must really use the matrix instructions.
        if src.name != "elementwise.cu" {
            assert!(
                ptx.contains("mma.sync.aligned.m16n8k16"),
                "{}: no tensor-core instructions",
                src.name
            );
        }
        eprintln!(
            "{}: {} bytes of PTX, {} kernels",
            src.name,
            ptx.len(),
            src.entry_points.len()
        );
    }
}
