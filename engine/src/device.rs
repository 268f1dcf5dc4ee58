//! Where a model runs: the user's `--device` request, resolved once per
//! model (the GPU probed, the weights uploaded), and the decoder of each
//! read, built in one place for every command.
//!
//! Invariant: a request is never dropped without a word. A GPU that is
//! missing, or that cannot run this model or this read's options (sparse
//! attention, an f16 or int8 KV cache), runs the read on the CPU and says
//! why ([`Placement::note`], and the reason a [`Placement::decoder`]
//! returns), which the answer carries to its card.

use std::sync::Arc;

use anyhow::Result;

pub use crate::gpu::DeviceRequest;
use crate::gpu::{choose_device, GpuDecoder, GpuModel, GpuSession, GpuSessionOptions};
use crate::llm::{Decoder, Model, Session, SessionOptions};
use crate::remote::RemoteServer;

/// A model's weights where the user asked them to run, prepared once and
/// shared by every read (cheap to clone: the GPU weights are shared).
#[derive(Clone)]
pub struct Placement {
    request: DeviceRequest,
    gpu: Option<Arc<GpuModel>>,
    note: Option<String>,
    remote: Option<Arc<RemoteServer>>,
}

impl Default for Placement {
    fn default() -> Self {
        Self::cpu()
    }
}

impl Placement {
    /// The CPU, nothing probed.
    pub fn cpu() -> Self {
        Self {
            request: DeviceRequest::Cpu,
            gpu: None,
            note: None,
            remote: None,
        }
    }

    /// Every read on `server` (`--backend openai`): the local model only
    /// tokenizes and renders prompts.
    pub fn remote(server: Arc<RemoteServer>) -> Self {
        Self {
            remote: Some(server),
            ..Self::cpu()
        }
    }

    /// The serving engine reads run on, when they run on one.
    pub fn server(&self) -> Option<&RemoteServer> {
        self.remote.as_deref()
    }

    /// Resolves `request` for `model`: `cpu` touches nothing; `cuda` and
    /// `auto` probe GPU 0 and upload the weights. A GPU that is missing or
    /// cannot hold this model leaves the model on the CPU, with the reason
    /// in [`note`](Self::note).
    pub fn prepare(model: &Model, request: DeviceRequest) -> Self {
        let mut placement = Self {
            request,
            ..Self::cpu()
        };
        if request == DeviceRequest::Cpu {
            return placement;
        }
        let choice = choose_device(request);
        match choice.runtime {
            Some(runtime) => match GpuModel::upload(model, runtime) {
                Ok(gpu) => placement.gpu = Some(Arc::new(gpu)),
                Err(e) => {
                    placement.note =
                        Some(format!("the GPU was not used: {e:#}; running on the CPU"))
                }
            },
            None => placement.note = choice.note,
        }
        placement
    }

    /// What was asked.
    pub fn request(&self) -> DeviceRequest {
        self.request
    }

    /// Whether the weights are on a GPU.
    pub fn on_gpu(&self) -> bool {
        self.gpu.is_some()
    }

    /// Why a GPU that was asked for (or looked for, with `auto`) holds no
    /// weights; `None` when it does, or when the CPU was asked for.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The decoder for one read with `session`: on the GPU when the weights
    /// are there and it can honour the options, else on the CPU; with the
    /// reason whenever the device that was asked for is not the one used
    /// (for `auto`, only when the weights are on the GPU and this read's
    /// options keep it off).
    pub fn decoder<'m>(
        &'m self,
        model: &'m Model,
        session: &SessionOptions,
    ) -> Result<(Box<dyn Decoder<'m> + 'm>, Option<String>)> {
        let cpu = |note| -> (Box<dyn Decoder<'m> + 'm>, Option<String>) {
            (Box::new(Session::new(model, session.clone())), note)
        };
        let Some(gpu) = &self.gpu else {
            let note = match self.request {
                DeviceRequest::Cuda => self.note.clone(),
                _ => None,
            };
            return Ok(cpu(note));
        };
        match GpuSessionOptions::from_session(session) {
            Ok(options) => Ok((
                Box::new(GpuDecoder {
                    model,
                    session: GpuSession::new(gpu, options)?,
                }),
                None,
            )),
            Err(why) => Ok(cpu(Some(format!("{why}: this read ran on the CPU")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::gpu::GpuSessionOptions;
    use crate::llm::{AttentionMode, KvDtype, RopeScaling, SessionOptions, SparseConfig};

    #[test]
    fn the_gpu_takes_flash_reads_and_names_what_it_cannot_run() {
        let flash = SessionOptions {
            rope_scaling: RopeScaling::yarn(2.0, 4096),
            ..SessionOptions::default()
        };
        let gpu = GpuSessionOptions::from_session(&flash).expect("flash with f32 KV runs there");
        assert_eq!(gpu.rope_scaling, flash.rope_scaling, "RoPE scaling carried");
        let sparse = SessionOptions {
            attention: AttentionMode::Sparse(SparseConfig::default()).build(),
            kv_dtype: KvDtype::Int8,
            ..SessionOptions::default()
        };
        let why = GpuSessionOptions::from_session(&sparse).unwrap_err();
        assert!(
            why.contains("sparse attention") && why.contains("int8 KV cache"),
            "{why}"
        );
        let f16 = SessionOptions {
            kv_dtype: KvDtype::F16,
            ..SessionOptions::default()
        };
        let why = GpuSessionOptions::from_session(&f16).unwrap_err();
        assert!(
            why.contains("f16 KV cache") && !why.contains("attention and"),
            "{why}"
        );
    }
}
