//! Searching a store: BM25, dense or both fused by reciprocal rank, each hit
//! with the score and rank from each retriever and its source span.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use folio_corpora::Span;
use serde::Serialize;

use super::CorpusStore;
use crate::fuse::{assemble, rrf, Fused, RankScore, RRF_K};

/// Which retrievers a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keyword search only (tantivy BM25); works on stores without embeddings.
    Bm25,
    /// Embedding similarity only.
    Dense,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

impl std::str::FromStr for Mode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "bm25" => Mode::Bm25,
            "dense" => Mode::Dense,
            "hybrid" => Mode::Hybrid,
            _ => bail!("unknown search mode {s:?} (bm25, dense or hybrid)"),
        })
    }
}

/// One ranked chunk with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// 1-based position in the results.
    pub rank: usize,
    /// The chunk's id in the store.
    pub chunk_id: u64,
    /// The fused score (hybrid) or the single retriever's score.
    pub score: f32,
    /// Its rank and score in the BM25 list, if it was in it.
    pub bm25: Option<RankScore>,
    /// Its rank and score in the dense list, if it was in it.
    pub dense: Option<RankScore>,
    /// The source file and the chunk's byte span in the loaded text.
    pub path: String,
    /// The chunk's byte range in the document's normalised text.
    pub span: Span,
    /// The chunk's bytes in the source file (none for PDF).
    pub source_span: Option<Span>,
    /// 1-based PDF page of the chunk's start.
    pub page: Option<usize>,
    /// Headings of the section the chunk is in, outermost first.
    pub heading_path: Vec<String>,
    /// The chunk's text.
    pub text: String,
    /// Position of the document in the store (document order key).
    #[serde(skip)]
    pub doc: usize,
}

/// Time spent per stage of a search, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// BM25 search, including the filtering of stale ids.
    pub bm25_ms: f64,
    /// Embedding the query.
    pub embed_ms: f64,
    /// Nearest-neighbour search in the vector store.
    pub dense_ms: f64,
    /// Reading the hits' documents from the packs.
    pub fetch_ms: f64,
    /// The whole search, end to end.
    pub total_ms: f64,
}

/// The result of a search, as `folio search` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    /// The query as given.
    pub query: String,
    /// Which retrievers were used.
    pub mode: Mode,
    /// The hits, best first.
    pub hits: Vec<Hit>,
    /// Time per stage.
    pub timings: Timings,
    /// Chunks in the store searched.
    pub store_chunks: u64,
    /// What holds the vectors (`None` for a BM25-only store).
    pub vector_store: Option<String>,
}

/// A passage of chosen chunks in document order (OP-RAG assembly).
#[derive(Debug, Clone, Serialize)]
pub struct AssembledPassage {
    /// The source file the passage is from.
    pub path: String,
    /// The passage's byte range in the document's normalised text.
    pub span: Span,
    /// The hits merged into it, in document order.
    pub chunk_ids: Vec<u64>,
    /// The passage's text.
    pub text: String,
}

impl CorpusStore {
    /// How deep each retriever's list goes before fusion.
    fn depth(k: usize) -> usize {
        k.max(50)
    }

    /// Ranked chunk ids only (no texts): what benchmarks and recall
    /// measurements need. Chunks the manifest does not own are dropped.
    pub fn search_ids(&self, query: &str, mode: Mode, k: usize) -> Result<(Vec<Fused>, Timings)> {
        let mut t = Timings::default();
        let depth = Self::depth(k);
        let live = |list: Vec<(u64, f32)>| -> Vec<(u64, f32)> {
            list.into_iter()
                .filter(|(id, _)| self.doc_of(*id).is_some())
                .collect()
        };
        let bm25 = if mode != Mode::Dense {
            let s = Instant::now();
            let r = live(self.bm25.search(query, depth)?);
            t.bm25_ms = ms(s);
            r
        } else {
            Vec::new()
        };
        let dense = if mode != Mode::Bm25 {
            let (Some(v), Some(e)) = (&self.vectors, &self.embedder) else {
                bail!("this store has no embeddings (ingested with --no-embed); search with --mode bm25");
            };
            let s = Instant::now();
            let q = e.embed_query(query)?;
            t.embed_ms = ms(s);
            let s = Instant::now();
            let r = live(v.search(&q, depth)?);
            t.dense_ms = ms(s);
            r
        } else {
            Vec::new()
        };
        let mut fused = rrf(&bm25, &dense, RRF_K);
        if mode != Mode::Hybrid {
            // One retriever: keep its own score as the hit's score.
            for f in &mut fused {
                f.score = f.bm25.or(f.dense).map_or(0.0, |r| r.score);
            }
        }
        fused.truncate(k);
        Ok((fused, t))
    }

    /// The `k` best chunks for `query`, with texts and source spans.
    pub fn search(&self, query: &str, mode: Mode, k: usize) -> Result<SearchReport> {
        let start = Instant::now();
        let (fused, mut timings) = self.search_ids(query, mode, k)?;
        let s = Instant::now();
        let mut docs = HashMap::new();
        let mut hits = Vec::with_capacity(fused.len());
        for (i, f) in fused.into_iter().enumerate() {
            let doc = self
                .doc_of(f.id)
                .ok_or_else(|| anyhow!("chunk {} vanished", f.id))?;
            if let std::collections::hash_map::Entry::Vacant(e) = docs.entry(doc) {
                e.insert(self.load_doc(doc)?);
            }
            let stored = &docs[&doc];
            let entry = &self.manifest.docs[doc];
            let chunk = &stored.chunks[(f.id - entry.first_id) as usize];
            let page = (!stored.pages.is_empty())
                .then(|| stored.pages.partition_point(|p| p.end < chunk.span.start) + 1);
            hits.push(Hit {
                rank: i + 1,
                chunk_id: f.id,
                score: f.score,
                bm25: f.bm25,
                dense: f.dense,
                path: entry.path.clone(),
                span: chunk.span,
                source_span: stored.source_map.to_source(chunk.span),
                page,
                heading_path: chunk.heading_path.clone(),
                text: stored.text[chunk.span.start..chunk.span.end].to_string(),
                doc,
            });
        }
        timings.fetch_ms = ms(s);
        timings.total_ms = ms(start);
        Ok(SearchReport {
            query: query.to_string(),
            mode,
            hits,
            timings,
            store_chunks: self.chunk_count(),
            vector_store: self.vectors.as_ref().map(|v| v.describe()),
        })
    }

    /// The hits' chunks in document order, merged where they overlap
    /// (order-preserving RAG): the context a model should read.
    pub fn assemble(&self, hits: &[Hit]) -> Result<Vec<AssembledPassage>> {
        let chosen: Vec<(u64, usize, Span)> =
            hits.iter().map(|h| (h.chunk_id, h.doc, h.span)).collect();
        let mut out = Vec::new();
        for p in assemble(&chosen) {
            let stored = self.load_doc(p.doc)?;
            out.push(AssembledPassage {
                path: self.manifest.docs[p.doc].path.clone(),
                span: p.span,
                chunk_ids: p.chunks,
                text: stored.text[p.span.start..p.span.end].to_string(),
            });
        }
        Ok(out)
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
