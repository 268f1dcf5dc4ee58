//! Retrieval for folio: token-aware chunking, a tantivy BM25 index, fastembed
//! embeddings, a vector store seam (HNSW on LMDB in process, shared by
//! every reader; a Qdrant server or cluster), reciprocal rank fusion and order-preserving assembly, all kept
//! in a crash-safe, incremental corpus store folder.

pub mod bm25;
pub mod chunk;
pub mod embed;
pub mod fuse;
pub mod models;
pub mod store;
pub mod vector;

pub use chunk::{Chunk, Chunker, ChunkerConfig};
pub use store::{CorpusStore, IngestOptions, IngestReport, Mode, SearchReport, StoreOptions};
pub use vector::VectorStore;
