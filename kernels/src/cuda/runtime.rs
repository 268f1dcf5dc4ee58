//! The CUDA context with every kernel compiled and loaded.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream};

use super::error::{driver_available, CudaError};
use super::kernel::Kernel;
use super::sources::{compile, SOURCES};
use super::{launch, DEFAULT_FLASH_WARPS};

/// A CUDA context with folio's kernels loaded: the handle the GPU forward
/// pass launches everything through.
pub struct CudaRuntime {
    ctx: Arc<CudaContext>,
    pub(super) stream: Arc<CudaStream>,
    funcs: HashMap<Kernel, CudaFunction>,
    pub(super) flash_warps: usize,
}

/// A size as the kernels' `int` argument (shapes are validated first).
pub(super) fn i(n: usize) -> i32 {
    n as i32
}

impl CudaRuntime {
    /// Opens GPU `ordinal`, compiles every kernel with NVRTC and loads it.
    /// Returns [`CudaError::NoDriver`] instead of panicking when the driver
    /// library is missing.
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        if !driver_available() {
            return Err(CudaError::NoDriver);
        }
        let ctx = CudaContext::new(ordinal)?;
        let stream = ctx.default_stream();
        let mut funcs = HashMap::new();
        let kernels = Kernel::all();
        for src in SOURCES {
            let module = ctx.load_module(compile(src)?)?;
            for &kernel in &kernels {
                let name = kernel.name();
                if !src.entry_points.contains(&name.as_str()) {
                    continue;
                }
                let f = module.load_function(&name)?;
                if kernel.large_shared_memory() {
                    f.set_attribute(
                        cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        launch::MAX_DYNAMIC_SMEM as i32,
                    )?;
                }
                funcs.insert(kernel, f);
            }
        }
        Ok(CudaRuntime {
            ctx,
            stream,
            funcs,
            flash_warps: DEFAULT_FLASH_WARPS,
        })
    }

    /// Chooses the flash-attention kernel family: 4 or 8 warps (64 or 128
    /// query rows) per CTA; the check program times both.
    pub fn set_flash_warps(&mut self, warps: usize) -> Result<(), CudaError> {
        if warps != 4 && warps != 8 {
            return Err(CudaError::Shape(format!("flash warps {warps} (4 or 8)")));
        }
        self.flash_warps = warps;
        Ok(())
    }

    /// Warps per flash-attention CTA in use (4 or 8).
    pub fn flash_warps(&self) -> usize {
        self.flash_warps
    }

    /// The CUDA context (allocations, events).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream every kernel is launched on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The device's name, for logs.
    pub fn device_name(&self) -> Result<String, CudaError> {
        Ok(self.ctx.name()?)
    }

    pub(super) fn func(&self, kernel: Kernel) -> Result<&CudaFunction, CudaError> {
        self.funcs
            .get(&kernel)
            .ok_or_else(|| CudaError::Shape(format!("kernel {} not loaded", kernel.name())))
    }
}
