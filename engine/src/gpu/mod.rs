//! The forward pass on an NVIDIA GPU (`--device cuda`): the CPU path's
//! interface over device memory, for machines where one is present.
//!
//! - [`GpuModel::upload`] puts a loaded [`crate::llm::Model`]'s weights on the
//!   device (matrices bf16, norms and biases f32).
//! - [`GpuSession`] runs it like `llm::Session` (`forward` with
//!   [`crate::llm::Logits`], `position`, `reset`): chunked prefill, bf16 KV
//!   cache on the device, matrix products on cuBLAS, attention, norms and
//!   embedding on `folio_kernels::cuda`, and the glue kernels of `model.cu`.
//! - [`cuda_available`] and [`choose_device`] probe for a driver, a GPU,
//!   NVRTC and cuBLAS, each loaded at run time, and say why the GPU cannot
//!   be used so that the caller falls back to the CPU with a clear message.
//!
//! Builds need no CUDA: everything is loaded dynamically, and the kernels
//! are compiled by NVRTC when a runtime is created.

pub mod host;
pub mod model;
pub mod session;

use std::str::FromStr;

use folio_kernels::cuda::{driver_available, nvrtc_available, CudaRuntime};

pub use model::{GpuLayer, GpuLinear, GpuModel, MODEL_SOURCE};
pub use session::{GpuDecoder, GpuSession, GpuSessionOptions, DEFAULT_GPU_PREFILL_CHUNK};

/// Oldest compute capability the kernels run on: they are compiled to
/// `compute_90` PTX (Hopper), which older GPUs cannot load.
pub const MIN_COMPUTE_CAPABILITY: (i32, i32) = (9, 0);

/// Whether the cuBLAS library (`libcublas.so.13`) can be loaded; cudarc
/// panics on first use otherwise.
pub fn cublas_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::cublas::sys::is_culib_present() }
}

/// [`cuda_available_on`] GPU 0.
pub fn cuda_available() -> Result<CudaRuntime, String> {
    cuda_available_on(0)
}

/// Opens GPU `ordinal` with folio's kernels compiled and loaded, or says why
/// it cannot: no driver, no device, a GPU older than
/// [`MIN_COMPUTE_CAPABILITY`], no NVRTC or no cuBLAS library. Library
/// loading problems that cudarc reports by panicking (a driver too old for
/// a symbol) are caught and reported the same way.
pub fn cuda_available_on(ordinal: usize) -> Result<CudaRuntime, String> {
    if !driver_available() {
        return Err("no CUDA driver found (libcuda.so)".into());
    }
    if !nvrtc_available() {
        return Err(
            "no NVRTC library found (libnvrtc.so.13): install nvidia-cuda-nvrtc (CUDA 13) and put its lib folder on LD_LIBRARY_PATH"
                .into(),
        );
    }
    if !cublas_available() {
        return Err(
            "no cuBLAS library found (libcublas.so.13): install nvidia-cublas (CUDA 13) and put its lib folder on LD_LIBRARY_PATH"
                .into(),
        );
    }
    let probe = std::panic::catch_unwind(|| -> Result<CudaRuntime, String> {
        let count = cudarc::driver::CudaContext::device_count()
            .map_err(|e| format!("the CUDA driver found no usable GPU ({e})"))?;
        if ordinal as i64 >= i64::from(count) {
            return Err(format!("no CUDA GPU {ordinal} ({count} found)"));
        }
        let ctx = cudarc::driver::CudaContext::new(ordinal)
            .map_err(|e| format!("opening CUDA GPU {ordinal}: {e}"))?;
        let cc = ctx
            .compute_capability()
            .map_err(|e| format!("reading GPU {ordinal}'s compute capability: {e}"))?;
        if cc < MIN_COMPUTE_CAPABILITY {
            let name = ctx.name().unwrap_or_else(|_| "the GPU".into());
            return Err(format!(
                "{name} has compute capability {}.{}; folio's CUDA kernels need {}.{} (Hopper) or newer",
                cc.0, cc.1, MIN_COMPUTE_CAPABILITY.0, MIN_COMPUTE_CAPABILITY.1
            ));
        }
        // cuBLAS must really load (its dependencies too), not only be found.
        cudarc::cublas::CudaBlas::new(ctx.default_stream())
            .map_err(|e| format!("starting cuBLAS: {e:?}"))?;
        CudaRuntime::new(ordinal).map_err(|e| e.to_string())
    });
    match probe {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown error".into());
            Err(format!("loading the CUDA libraries failed: {what}"))
        }
    }
}

/// Where the user asked the model to run (`--device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    /// The CPU, whatever is installed.
    Cpu,
    /// The GPU; falls back to the CPU with a message when there is none.
    Cuda,
    /// The GPU when one is usable, else the CPU, quietly.
    Auto,
}

impl FromStr for DeviceRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" | "gpu" => Ok(DeviceRequest::Cuda),
            "auto" => Ok(DeviceRequest::Auto),
            other => Err(format!("unknown device '{other}' (cpu, cuda or auto)")),
        }
    }
}

/// The outcome of [`choose_device`]: a runtime when the GPU is used, and a
/// line for the user when the request could not be met as asked.
pub struct DeviceChoice {
    /// The GPU to run on; `None` runs on the CPU.
    pub runtime: Option<CudaRuntime>,
    /// Why the GPU is not used (for `Cuda`, and for `Auto` as a detail to log).
    pub note: Option<String>,
}

/// Resolves a [`DeviceRequest`] against this machine: `Cpu` never touches
/// CUDA; `Cuda` and `Auto` probe GPU 0 and fall back to the CPU when it is
/// unusable, with the reason in [`DeviceChoice::note`].
pub fn choose_device(request: DeviceRequest) -> DeviceChoice {
    match request {
        DeviceRequest::Cpu => DeviceChoice {
            runtime: None,
            note: None,
        },
        DeviceRequest::Cuda | DeviceRequest::Auto => match cuda_available() {
            Ok(rt) => DeviceChoice {
                runtime: Some(rt),
                note: None,
            },
            Err(why) => DeviceChoice {
                runtime: None,
                note: Some(format!("GPU unavailable: {why}; running on the CPU")),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_requests_parse() {
        assert_eq!("cpu".parse(), Ok(DeviceRequest::Cpu));
        assert_eq!("CUDA".parse(), Ok(DeviceRequest::Cuda));
        assert_eq!("gpu".parse(), Ok(DeviceRequest::Cuda));
        assert_eq!("auto".parse(), Ok(DeviceRequest::Auto));
        assert!("tpu".parse::<DeviceRequest>().is_err());
    }

    #[test]
    fn cpu_request_never_probes() {
        let c = choose_device(DeviceRequest::Cpu);
        assert!(c.runtime.is_none() && c.note.is_none());
    }

    #[test]
    fn without_a_gpu_cuda_falls_back_with_a_reason() {
        if driver_available() {
            return;
        }
        let c = choose_device(DeviceRequest::Cuda);
        assert!(c.runtime.is_none());
        let note = c.note.expect("a reason");
        assert!(note.contains("libcuda") && note.contains("CPU"), "{note}");
        assert!(cuda_available().is_err());
    }

    #[test]
    fn glue_source_names_its_entry_points() {
        for e in MODEL_SOURCE.entry_points {
            assert!(
                MODEL_SOURCE.source.contains(&format!("void {e}(")),
                "model.cu lacks {e}"
            );
        }
    }
}
