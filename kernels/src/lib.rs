//! Compute kernels for folio's forward pass.
//!
//! Kernels work on plain `f32` slices with explicit shapes so that the engine can
//! hand them any buffer (a candle tensor's storage, a KV cache) and so that each
//! fast path can be compared against a simple reference in tests. Nothing here
//! knows about models, tokenizers or files.

pub mod attention;
pub mod cuda;
pub mod dot;
pub mod ops;
pub mod quant;
pub mod reference;

pub use attention::{AttentionShape, AttentionStats};
