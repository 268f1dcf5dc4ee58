//! CI check of the GPU forward pass's glue kernels without a GPU: `model.cu`
//! must compile with NVRTC to sm_90 PTX and define each expected entry point
//! (same pattern as `kernels/tests/cuda_compile.rs`).
//!
//! Without NVRTC (`libnvrtc.so.13` on `LD_LIBRARY_PATH`) the test skips with
//! a message, unless `FOLIO_REQUIRE_NVRTC=1` (set by `.ci/run`), where a
//! missing NVRTC fails it.

use folio_engine::gpu::MODEL_SOURCE;
use folio_kernels::cuda::{compile_ptx, nvrtc_available};

#[test]
fn glue_kernels_compile_to_sm90_ptx() {
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
    let ptx = compile_ptx(&MODEL_SOURCE).unwrap_or_else(|e| panic!("{e}"));
    assert!(ptx.contains(".target sm_90"), "PTX not for sm_90");
    for entry in MODEL_SOURCE.entry_points {
        assert!(
            ptx.contains(&format!(".entry {entry}(")),
            "PTX lacks entry point {entry}"
        );
    }
    // The RoPE table is computed in double precision, as on the CPU.
    assert!(ptx.contains(".f64"), "rope_table lost its f64 math");
    eprintln!(
        "{}: {} bytes of PTX, {} kernels",
        MODEL_SOURCE.name,
        ptx.len(),
        MODEL_SOURCE.entry_points.len()
    );
}
