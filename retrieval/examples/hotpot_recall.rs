//! Retrieval quality on HotpotQA dev (distractor): the paragraphs of the
//! first N questions (deduplicated by title) become one corpus of Markdown
//! files (`# Title` + text); each question is searched with BM25, dense and
//! hybrid retrieval; recall@k is the share of a question's gold paragraphs
//! among the first k distinct paragraphs retrieved. Also reports ingest
//! throughput with and without embeddings and search latency.
//!
//! `cargo run --release -p folio-retrieval --example hotpot_recall -- [N] [THREADS]`

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use folio_retrieval::{ChunkerConfig, CorpusStore, IngestOptions, Mode, StoreOptions};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(500), |s| s.parse())?;
    let threads: Option<usize> = args.get(2).map(|s| s.parse()).transpose()?;
    let questions = folio_corpora::datasets::hotpotqa(true)?;
    let questions = &questions[..n.min(questions.len())];
    let tmp = tempfile::tempdir()?;
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs)?;
    let mut titles: HashMap<String, usize> = HashMap::new();
    let mut paths: HashMap<String, usize> = HashMap::new();
    for q in questions {
        for (title, text) in &q.paragraphs {
            if titles.contains_key(title) {
                continue;
            }
            let i = titles.len();
            titles.insert(title.clone(), i);
            let p: PathBuf = docs.join(format!("{i:06}.md"));
            std::fs::write(&p, format!("# {title}\n\n{text}\n"))?;
            paths.insert(std::path::absolute(&p)?.display().to_string(), i);
        }
    }
    eprintln!(
        "{} questions, {} distinct paragraphs",
        questions.len(),
        titles.len()
    );
    let opts = StoreOptions {
        threads,
        progress: true,
        ..Default::default()
    };
    let chunker = ChunkerConfig::default();
    let mut throughput = Vec::new();
    for dense in [false, true] {
        let dir = tmp.path().join(if dense { "hybrid" } else { "bm25" });
        let mut store = CorpusStore::open_writer(&dir, chunker, dense, opts.clone())?;
        let r = store.ingest(std::slice::from_ref(&docs), &IngestOptions::default())?;
        throughput.push(serde_json::json!({
            "embeddings": dense,
            "files": r.files,
            "chunks": r.chunks_added,
            "text_mb": r.text_bytes as f64 / 1e6,
            "seconds": r.seconds,
            "text_mb_per_s": r.text_bytes as f64 / 1e6 / r.seconds,
            "chunks_embedded_per_s": if dense { r.embedded as f64 / r.embed_seconds } else { 0.0 },
        }));
        // The writer lock is held while the writer is open: close it first.
        drop(store);
    }
    eprintln!("ingest: {}", serde_json::to_string(&throughput)?);
    let store = CorpusStore::open(&tmp.path().join("hybrid"), opts)?;
    let mut results = Vec::new();
    for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid] {
        let (mut r2, mut r5) = (0.0, 0.0);
        let mut lat = Vec::new();
        for q in questions {
            let t = Instant::now();
            let (hits, _) = store.search_ids(&q.question, mode, 20)?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            let mut got: Vec<usize> = Vec::new();
            for h in hits {
                let doc = store.doc_of(h.id).expect("live");
                let idx = paths[&store.manifest().docs[doc].path];
                if !got.contains(&idx) {
                    got.push(idx);
                }
            }
            let gold: Vec<usize> = q.gold_titles.iter().map(|t| titles[t]).collect();
            let recall = |k: usize| {
                gold.iter()
                    .filter(|g| got.iter().take(k).any(|x| x == *g))
                    .count() as f64
                    / gold.len() as f64
            };
            r2 += recall(2);
            r5 += recall(5);
        }
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        let n = questions.len() as f64;
        println!(
            "{mode:?}: recall@2 {:.3}  recall@5 {:.3}  latency p50 {:.1} ms p99 {:.1} ms",
            r2 / n,
            r5 / n,
            pct(0.5),
            pct(0.99)
        );
        results.push(serde_json::json!({
            "mode": mode, "questions": questions.len(), "recall_at_2": r2 / n, "recall_at_5": r5 / n,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        }));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "corpus_paragraphs": titles.len(),
            "store_chunks": store.chunk_count(),
            "ingest": throughput,
            "recall": results,
        }))?
    );
    Ok(())
}
