//! folio's engine: the LLM runtime (model fetch, GGUF loading, tokenizer,
//! forward pass, generation) and, as they land, the strategies and the router.

pub mod answer;
pub mod ask;
pub mod calibrate;
pub mod compress;
pub mod device;
pub mod gpu;
pub mod llm;
pub mod models;
pub mod router;
pub mod threads;
