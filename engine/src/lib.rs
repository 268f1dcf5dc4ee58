//! folio's engine: the LLM runtime (model fetch, GGUF loading, tokenizer,
//! forward pass, generation), the answer's grounding (quote and answerability), the
//! prefix cache that lets a document be read once and asked many times, the three
//! strategies and the router that picks one per question.

pub mod answer;
pub mod ask;
pub mod calibrate;
pub mod compress;
pub mod device;
pub mod gpu;
pub mod grounding;
pub mod llm;
pub mod models;
pub mod prefix_cache;
pub mod remote;
pub mod router;
pub mod threads;
