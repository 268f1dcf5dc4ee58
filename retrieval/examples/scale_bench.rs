//! Search latency on a large store: every distinct HotpotQA dev paragraph
//! (66,581) as a Markdown file, chunked small (64 tokens, 8 overlap) to pass
//! 100K chunks; then p50/p99 latency of BM25, dense and hybrid searches for
//! HotpotQA questions. The ingest is incremental, so an interrupted run
//! resumes where it stopped.
//!
//! `cargo run --release -p folio-retrieval --example scale_bench -- STORE_DIR [QUERIES] [THREADS] [bm25|dense] [FOLDERS]`
//! (`bm25`: a BM25-only store, no embeddings: minutes instead of the
//! embedding model's ~20 minutes per 100K chunks on 2 cores; `FOLDERS`:
//! only the first N folders of 1,000 paragraphs, ~2,800 chunks each).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use folio_retrieval::{ChunkerConfig, CorpusStore, IngestOptions, Mode, StoreOptions};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(
        args.get(1)
            .context("usage: scale_bench STORE_DIR [QUERIES] [THREADS]")?,
    );
    let queries: usize = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let threads: Option<usize> = args.get(3).map(|s| s.parse()).transpose()?;
    let dense = args.get(4).map(String::as_str) != Some("bm25");
    let folders: Option<usize> = args.get(5).map(|s| s.parse()).transpose()?;
    let questions = folio_corpora::datasets::hotpotqa(true)?;
    let docs = root.join("docs");
    if !docs.join("done").exists() {
        std::fs::create_dir_all(&docs)?;
        let mut seen = std::collections::HashSet::new();
        for q in &questions {
            for (title, text) in &q.paragraphs {
                if seen.insert(title.clone()) {
                    let i = seen.len() - 1;
                    let dir = docs.join(format!("{:03}", i / 1000));
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(
                        dir.join(format!("{i:06}.md")),
                        format!("# {title}\n\n{text}\n"),
                    )?;
                }
            }
        }
        std::fs::write(docs.join("done"), b"")?;
    }
    let opts = StoreOptions {
        threads,
        progress: true,
        ..Default::default()
    };
    let chunker = ChunkerConfig {
        max_tokens: 64,
        overlap_tokens: 8,
    };
    let store_dir = root.join(if dense { "store" } else { "store-bm25" });
    let mut store = CorpusStore::open_writer(&store_dir, chunker, dense, opts.clone())?;
    let roots: Vec<PathBuf> = match folders {
        None => vec![docs.clone()],
        Some(n) => (0..n)
            .map(|i| docs.join(format!("{i:03}")))
            .filter(|d| d.exists())
            .collect(),
    };
    let r = store.ingest(&roots, &IngestOptions::default())?;
    eprintln!("{}", serde_json::to_string(&r)?);
    drop(store);
    let t = Instant::now();
    let store = CorpusStore::open(&store_dir, opts)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut out = Vec::new();
    let modes: &[Mode] = if dense {
        &[Mode::Bm25, Mode::Dense, Mode::Hybrid]
    } else {
        &[Mode::Bm25]
    };
    for &mode in modes {
        // Warm up (page cache, first-call allocations), then measure.
        for q in questions.iter().rev().take(20) {
            store.search(&q.question, mode, 5)?;
        }
        let (mut lat, mut embed, mut vector) = (Vec::new(), Vec::new(), Vec::new());
        for q in questions.iter().take(queries) {
            let t = Instant::now();
            let rep = store.search(&q.question, mode, 5)?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            embed.push(rep.timings.embed_ms);
            vector.push(rep.timings.dense_ms);
            assert!(!rep.hits.is_empty());
        }
        let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
        let embed_p50 = percentile(&mut embed, 0.5);
        let vector_p50 = percentile(&mut vector, 0.5);
        println!(
            "{mode:?}: {} chunks, {} queries, p50 {p50:.2} ms, p99 {p99:.2} ms \
             (query embedding p50 {embed_p50:.2} ms, vector search p50 {vector_p50:.2} ms)",
            store.chunk_count(),
            lat.len(),
        );
        out.push(
            serde_json::json!({"mode": mode, "p50_ms": p50, "p99_ms": p99,
            "embed_p50_ms": embed_p50, "vector_p50_ms": vector_p50, "queries": lat.len()}),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "chunks": store.chunk_count(), "documents": store.manifest().docs.len(),
            "open_ms": open_ms, "latency": out,
        }))?
    );
    Ok(())
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}
