//! Why the GPU path is unavailable or a call failed, and the probes for
//! the libraries it loads at run time.

use std::fmt;

/// The message when no CUDA driver can be loaded.
pub const NO_DRIVER: &str = "no CUDA driver found (libcuda.so): folio runs on the CPU";

/// Why the GPU path is unavailable or a call failed.
#[derive(Debug)]
pub enum CudaError {
    /// `libcuda.so` could not be loaded: no GPU driver on this machine.
    NoDriver,
    /// `libnvrtc.so` could not be loaded (see [`nvrtc_available`]).
    NoNvrtc,
    /// NVRTC rejected a source; carries its log.
    Compile {
        /// The source's file name.
        name: &'static str,
        /// NVRTC's message and log.
        log: String,
    },
    /// A driver call failed (no device, out of memory, launch error...).
    Driver(cudarc::driver::DriverError),
    /// Buffers or shapes do not fit the kernel.
    Shape(String),
}

impl fmt::Display for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CudaError::NoDriver => f.write_str(NO_DRIVER),
            CudaError::NoNvrtc => f.write_str(
                "no NVRTC library found (libnvrtc.so.13): install nvidia-cuda-nvrtc and put its lib folder on LD_LIBRARY_PATH",
            ),
            CudaError::Compile { name, log } => write!(f, "NVRTC failed on {name}: {log}"),
            CudaError::Driver(e) => write!(f, "CUDA driver error: {e}"),
            CudaError::Shape(s) => write!(f, "bad GPU kernel arguments: {s}"),
        }
    }
}

impl std::error::Error for CudaError {}

impl From<cudarc::driver::DriverError> for CudaError {
    fn from(e: cudarc::driver::DriverError) -> Self {
        CudaError::Driver(e)
    }
}

impl From<String> for CudaError {
    fn from(s: String) -> Self {
        CudaError::Shape(s)
    }
}

/// Whether `libcuda.so` can be loaded; cudarc panics on first use otherwise.
pub fn driver_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether `libnvrtc.so` can be loaded (found by the dynamic loader by name:
/// `libnvrtc.so`, `libnvrtc.so.13`, ... so its folder must be on
/// `LD_LIBRARY_PATH` or in the loader's cache).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}
