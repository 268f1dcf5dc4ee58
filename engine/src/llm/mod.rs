//! The LLM runtime: GGUF models, their tokenizer and chat template, our own
//! forward pass, sampling and generation.

pub mod attention;
pub mod chat;
mod chat_jinja;
pub mod config;
pub mod evict;
pub mod generate;
pub mod kv_cache;
pub mod kv_int8;
pub mod model;
pub mod quote;
pub mod rope;
pub mod sampling;
mod spm;
pub mod tokenizer;
pub mod weights;

pub use attention::{
    Attention, AttentionMode, CappedAttention, DenseAttention, FlashAttention, SparseAttention,
};
pub use chat::{document_qa, support_check, ChatMessage, ChatTemplate, Role, QUOTE_LEAD_IN};
pub use config::{Arch, ArchNumerics, ModelConfig};
pub use evict::{Eviction, EvictionPolicy};
pub use folio_kernels::attention::{AttentionShape, AttentionStats, KeySummaries, SparseConfig};
pub use generate::{
    generate, perplexity, token_losses, Decoder, EvictionReport, GenerateOptions, Generation,
    ReadStats, StopReason,
};
pub use kv_cache::{KvCache, KvDtype, KvView};
pub use model::{Logits, Model, Session, SessionOptions};
pub use rope::{RopeLayout, RopeScaling};
pub use sampling::Sampling;
pub use tokenizer::TextTokenizer;
