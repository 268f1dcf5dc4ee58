//! The flags of `folio ingest` and `folio search`.

use std::path::PathBuf;

use clap::Args;

/// `folio ingest PATH…`: load, chunk, index and embed documents.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files and directories (.txt, .md, .html, .pdf) to ingest.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The corpus store folder (default: $FOLIO_HOME/corpus).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// BM25 only: no embeddings (a new store only).
    #[arg(long)]
    pub no_embed: bool,
    /// Chunk size in embedding-model tokens.
    #[arg(long, default_value_t = 200)]
    pub chunk_tokens: usize,
    /// Tokens of overlap between consecutive chunks.
    #[arg(long, default_value_t = 40)]
    pub overlap: usize,
    /// Files larger than this many MiB are skipped.
    #[arg(long, default_value_t = 64)]
    pub max_file_mib: u64,
    /// Chunks per committed batch.
    #[arg(long, default_value_t = 4096)]
    pub commit_every: usize,
    /// Keep vectors on a Qdrant server or cluster (gRPC, e.g.
    /// http://localhost:6334) instead of the in-process engine. A store is
    /// bound to the backend it was created with.
    #[arg(long, env = "FOLIO_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// `folio search QUERY`: ranked chunks with each retriever's score.
#[derive(Debug, Args)]
pub struct SearchArgs {
    pub query: String,
    /// The corpus store folder (default: $FOLIO_HOME/corpus).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Number of hits.
    #[arg(short = 'k', long, default_value_t = 5)]
    pub top: usize,
    /// bm25, dense or hybrid (reciprocal rank fusion).
    #[arg(long, default_value = "hybrid")]
    pub mode: String,
    /// Also print the hits assembled in document order (OP-RAG).
    #[arg(long)]
    pub assemble: bool,
    /// Keep vectors on a Qdrant server or cluster (gRPC, e.g.
    /// http://localhost:6334) instead of the in-process engine. A store is
    /// bound to the backend it was created with.
    #[arg(long, env = "FOLIO_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    #[arg(long)]
    pub json: bool,
}
