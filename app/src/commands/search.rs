//! `folio search QUERY`: ranked chunks with the score and rank each
//! retriever gave them and their source spans.

use anyhow::Result;
use folio_retrieval::{CorpusStore, Mode, StoreOptions};
use serde::Serialize;

use crate::cli::convert::default_store;
use crate::cli::SearchArgs;
use crate::output::print_json;

#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    report: &'a folio_retrieval::SearchReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    assembled: Option<Vec<folio_retrieval::store::search::AssembledPassage>>,
}

/// Runs `folio search`.
pub fn run(args: SearchArgs, threads: Option<usize>) -> Result<()> {
    let dir = args.store.clone().unwrap_or_else(default_store);
    let mode: Mode = args.mode.parse()?;
    let store = CorpusStore::open(
        &dir,
        StoreOptions {
            qdrant_url: args.qdrant_url.clone(),
            threads,
            progress: !args.json,
            wait_for_writer: false,
        },
    )?;
    let report = store.search(&args.query, mode, args.top)?;
    let assembled = if args.assemble {
        Some(store.assemble(&report.hits)?)
    } else {
        None
    };
    if args.json {
        return print_json(&Output {
            report: &report,
            assembled,
        });
    }
    let rs = |r: Option<folio_retrieval::fuse::RankScore>| {
        r.map_or("-".to_string(), |r| format!("#{} {:.3}", r.rank, r.score))
    };
    for h in &report.hits {
        let at = match (h.page, h.source_span) {
            (Some(p), _) => format!("page {p}"),
            (None, Some(s)) => format!("bytes {}-{}", s.start, s.end),
            (None, None) => format!("text {}-{}", h.span.start, h.span.end),
        };
        println!(
            "{:>2}. {:.4}  bm25 {}  dense {}  {} {at}",
            h.rank,
            h.score,
            rs(h.bm25),
            rs(h.dense),
            h.path
        );
        if !h.heading_path.is_empty() {
            println!("    § {}", h.heading_path.join(" > "));
        }
        let snippet: String = h.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let snippet: String = snippet.chars().take(200).collect();
        println!("    {snippet}");
    }
    if let Some(passages) = &assembled {
        println!("\n── in document order ──");
        for p in passages {
            println!("{} {}-{}:\n{}\n", p.path, p.span.start, p.span.end, p.text);
        }
    }
    let t = &report.timings;
    println!(
        "{} hits of {} chunks in {:.1} ms (bm25 {:.1}, embed {:.1}, dense {:.1}, fetch {:.1})",
        report.hits.len(),
        report.store_chunks,
        t.total_ms,
        t.bm25_ms,
        t.embed_ms,
        t.dense_ms,
        t.fetch_ms
    );
    Ok(())
}
