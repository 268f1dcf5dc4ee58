//! Combining retrievers and putting the chosen chunks back in order.
//!
//! Reciprocal rank fusion (Cormack et al., 2009) needs no score calibration
//! between BM25 and cosine similarity: each list contributes `1 / (k + rank)`.
//! Order-preserving assembly (OP-RAG, Yu et al., 2024) hands a model the
//! chosen chunks in document order, merged where they overlap, rather than in
//! score order.

use folio_corpora::Span;
use serde::Serialize;

/// The constant of reciprocal rank fusion; 60 is the value of the paper.
pub const RRF_K: f32 = 60.0;

/// A chunk's rank (1-based) and raw score in one retriever's list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankScore {
    /// 1-based position in the retriever's list.
    pub rank: usize,
    /// The retriever's own score: BM25, or cosine similarity for dense.
    pub score: f32,
}

/// One chunk after fusion, with what each retriever thought of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fused {
    /// The chunk's id in the store.
    pub id: u64,
    /// The fused score, `Σ 1 / (k + rank)` over the lists it is in; higher is better.
    pub score: f32,
    /// Its place in the BM25 list, if it is in it.
    pub bm25: Option<RankScore>,
    /// Its place in the dense list, if it is in it.
    pub dense: Option<RankScore>,
}

/// Fuses a BM25 and a dense list (each best first) by reciprocal rank;
/// ties are broken by the better single rank, then by id, so results are
/// deterministic.
pub fn rrf(bm25: &[(u64, f32)], dense: &[(u64, f32)], k: f32) -> Vec<Fused> {
    let mut out: Vec<Fused> = Vec::with_capacity(bm25.len() + dense.len());
    let mut index = std::collections::HashMap::new();
    for (which, list) in [(0, bm25), (1, dense)] {
        for (i, &(id, score)) in list.iter().enumerate() {
            let rs = RankScore { rank: i + 1, score };
            let slot = *index.entry(id).or_insert_with(|| {
                out.push(Fused {
                    id,
                    score: 0.0,
                    bm25: None,
                    dense: None,
                });
                out.len() - 1
            });
            let f = &mut out[slot];
            f.score += 1.0 / (k + rs.rank as f32);
            if which == 0 {
                f.bm25 = Some(rs);
            } else {
                f.dense = Some(rs);
            }
        }
    }
    let best = |f: &Fused| {
        f.bm25
            .map_or(usize::MAX, |r| r.rank)
            .min(f.dense.map_or(usize::MAX, |r| r.rank))
    };
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(best(a).cmp(&best(b)))
            .then(a.id.cmp(&b.id))
    });
    out
}

/// A contiguous passage of one document made of chosen chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Passage {
    /// Position of the document in the corpus (its order key).
    pub doc: usize,
    /// The merged byte range of the chunks in the document's text.
    pub span: Span,
    /// The chunks merged into this passage.
    pub chunks: Vec<u64>,
}

/// Orders chosen chunks `(chunk id, document position, span)` by document
/// and offset and merges overlapping or touching spans of one document.
pub fn assemble(chosen: &[(u64, usize, Span)]) -> Vec<Passage> {
    let mut sorted = chosen.to_vec();
    sorted.sort_by_key(|&(id, doc, span)| (doc, span.start, span.end, id));
    let mut out: Vec<Passage> = Vec::new();
    for (id, doc, span) in sorted {
        match out.last_mut() {
            Some(p) if p.doc == doc && span.start <= p.span.end => {
                p.span.end = p.span.end.max(span.end);
                p.chunks.push(id);
            }
            _ => out.push(Passage {
                doc,
                span,
                chunks: vec![id],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement_and_keeps_both_ranks() {
        let bm25 = [(1, 12.0), (2, 9.0), (3, 4.0)];
        let dense = [(3, 0.9), (2, 0.8), (4, 0.7)];
        let f = rrf(&bm25, &dense, RRF_K);
        let ids: Vec<u64> = f.iter().map(|f| f.id).collect();
        // 3 (ranks 3 and 1) and 2 (2 and 2) beat 1 (rank 1 in one list);
        // 1/63 + 1/61 > 2/62, so 3 comes first.
        assert_eq!(ids, [3, 2, 1, 4]);
        assert_eq!(
            f[0].bm25,
            Some(RankScore {
                rank: 3,
                score: 4.0
            })
        );
        assert_eq!(
            f[0].dense,
            Some(RankScore {
                rank: 1,
                score: 0.9
            })
        );
        assert!(f[2].dense.is_none());
        let expected = 1.0 / 62.0 + 1.0 / 62.0;
        assert!((f[1].score - expected).abs() < 1e-7);
    }

    #[test]
    fn assembly_orders_by_document_and_merges_overlaps() {
        let s = |start, end| Span { start, end };
        let chosen = [
            (9, 1, s(50, 90)),
            (3, 0, s(100, 150)),
            (4, 0, s(140, 200)),
            (5, 0, s(0, 40)),
        ];
        let p = assemble(&chosen);
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[0].doc, p[0].span, &p[0].chunks[..]),
            (0, s(0, 40), &[5][..])
        );
        assert_eq!(
            (p[1].doc, p[1].span, &p[1].chunks[..]),
            (0, s(100, 200), &[3, 4][..])
        );
        assert_eq!((p[2].doc, p[2].span), (1, s(50, 90)));
    }
}
