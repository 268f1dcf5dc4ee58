//! `folio ingest PATH…`: adds documents to a corpus store with progress bars
//! (files, chunks, embeddings) and reports what changed.

use anyhow::Result;
use folio_corpora::LoadOptions;
use folio_retrieval::{ChunkerConfig, CorpusStore, IngestOptions, StoreOptions};

use crate::cli::convert::default_store;
use crate::cli::IngestArgs;
use crate::output::{human_bytes, print_json};

/// Runs `folio ingest`.
pub fn run(args: IngestArgs, threads: Option<usize>) -> Result<()> {
    let dir = args.store.clone().unwrap_or_else(default_store);
    let chunker = ChunkerConfig {
        max_tokens: args.chunk_tokens,
        overlap_tokens: args.overlap,
    };
    let options = StoreOptions {
        qdrant_url: args.qdrant_url.clone(),
        threads,
        progress: !args.json,
        wait_for_writer: false,
    };
    let mut store = CorpusStore::open_writer(&dir, chunker, !args.no_embed, options)?;
    let opts = IngestOptions {
        load: LoadOptions {
            max_bytes: args.max_file_mib << 20,
        },
        commit_every: args.commit_every.max(1),
        ..Default::default()
    };
    let report = store.ingest(&args.paths, &opts)?;
    if args.json {
        return print_json(&report);
    }
    for s in &report.skipped {
        eprintln!("skipped {}: {}", s.path, s.reason);
    }
    let mbps = report.text_bytes as f64 / 1e6 / report.seconds.max(1e-9);
    println!(
        "{} files: {} added, {} updated, {} unchanged, {} removed, {} skipped",
        report.files,
        report.added,
        report.updated,
        report.unchanged,
        report.removed,
        report.skipped.len()
    );
    println!(
        "{} chunks from {} of text in {:.1} s ({mbps:.2} MB/s), {} embedded ({:.1} s)",
        report.chunks_added,
        human_bytes(report.text_bytes),
        report.seconds,
        report.embedded,
        report.embed_seconds
    );
    println!(
        "store {}: {} documents, {} chunks",
        dir.display(),
        report.store_docs,
        report.store_chunks
    );
    Ok(())
}
