//! Retrieval for folio: chunking, tantivy BM25, fastembed embeddings, vector
//! stores (qdrant-edge in-process, qdrant-client remote), fusion and
//! compression scoring.
//!
//! Empty so far: the crate exists so that the dependency direction
//! (corpora → retrieval → engine) is fixed from the start. Retrieval lands with
//! the ingest/search issue.
