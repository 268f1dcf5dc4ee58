//! The vector store seam: chunk ids and their embeddings, nearest-neighbour
//! search by cosine similarity. Two backends implement it: hannoy's HNSW on
//! LMDB in process ([`HnswStore`], the default, stored beside the BM25 index,
//! readable by any number of processes at once) and a Qdrant server or
//! cluster over gRPC ([`ServerStore`], `--qdrant-url`). The store and the
//! search code only see the trait.

mod hnsw;
mod server;

use anyhow::Result;

pub use hnsw::HnswStore;
pub use server::{redact_url, ServerStore};

/// Payload key holding the chunk id as an integer, for range deletes.
pub const ID_KEY: &str = "cid";

/// Where chunk embeddings live and how they are searched.
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces the vectors of the given chunk ids.
    fn upsert(&self, points: &[(u64, Vec<f32>)]) -> Result<()>;
    /// Deletes chunk ids in `[start, end)` (`None`: no upper bound).
    fn delete_range(&self, start: u64, end: Option<u64>) -> Result<()>;
    /// The `k` nearest chunks to `query`: (chunk id, cosine similarity).
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>>;
    /// Makes every change so far durable.
    fn commit(&self) -> Result<()>;
    /// Builds search structures (HNSW) after a bulk load; a no-op where the
    /// backend does that by itself.
    fn optimize(&self) -> Result<()> {
        Ok(())
    }
    /// Number of vectors stored.
    fn len(&self) -> Result<usize>;
    /// Whether the store holds no vectors.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// A short description for reports (`hannoy HNSW on LMDB at …`).
    fn describe(&self) -> String;
}
