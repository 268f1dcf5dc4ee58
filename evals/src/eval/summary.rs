//! `summary.json`: the records of a run aggregated per suite, strategy and
//! kind, and the needle grids (length × depth) per strategy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::{EvalRecord, Stages};

/// Aggregates of one (suite, strategy, kind) group; kind `all` is the whole
/// suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    /// The suite's name.
    pub suite: String,
    /// The strategy asked for (`rag`, `compress`, `full`, `auto`).
    pub strategy: String,
    /// The item kind, or `all` for the whole suite.
    pub kind: String,
    /// Records in the group.
    pub items: usize,
    /// Records with no answer (they score 0 and count in `items`).
    pub errors: usize,
    /// Mean main score (see `EvalRecord::score`).
    pub score: f64,
    /// Fraction of exact matches (SQuAD EM).
    pub exact: f64,
    /// Mean word-overlap F1 (SQuAD F1).
    pub f1: f64,
    /// Unanswerable items: fraction refused. `None` when there are none.
    pub refusal_accuracy: Option<f64>,
    /// Share of the answerable items folio flagged not found (a refusal
    /// or an answer its words do not support). `None` without answerable
    /// items.
    pub flagged_answerable: Option<f64>,
    /// Mean retrieval recall of the gold passages (retrieval plans only).
    pub retrieval_recall: Option<f64>,
    /// Mean prompt tokens sent, over the answered records.
    pub tokens_sent: f64,
    /// Mean corpus size in the answering model's tokens, over the answered records.
    pub corpus_tokens: f64,
    /// Mean seconds per answer.
    pub seconds_mean: f64,
    /// Median seconds per answer.
    pub seconds_p50: f64,
    /// Mean measured seconds per stage.
    pub stages: Stages,
    /// Highest peak resident bytes of any answer in the group.
    pub peak_memory_max_bytes: u64,
    /// Mean bytes the KV cache held at the end of an answer (what eviction
    /// and KV dtypes trade accuracy for).
    #[serde(default)]
    pub kv_bytes_mean: f64,
    /// How many answers each plan kind produced (the router's picks for
    /// `auto`), e.g. {"rag": 3, "full": 7}.
    pub chosen: BTreeMap<String, usize>,
    /// Answers where Self-Route escalated or considered escalating.
    pub fallbacks: usize,
}

/// Mean score per (length, depth) of one strategy on the needle suite
/// (single and multi-key needles).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grid {
    /// The suite's name.
    pub suite: String,
    /// The strategy the grid is of.
    pub strategy: String,
    /// Context lengths in tokens, ascending (the rows of `cells`).
    pub lengths: Vec<usize>,
    /// Depths in percent.
    pub depths: Vec<u32>,
    /// `cells[length][depth]`; `None` where nothing ran.
    pub cells: Vec<Vec<Option<f64>>>,
}

/// Everything `report.md` and the charts are drawn from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Records summarized.
    pub records: usize,
    /// Aggregates per (suite, strategy, kind).
    pub groups: Vec<Group>,
    /// Needle grids per (suite, strategy).
    pub grids: Vec<Grid>,
    /// Abstention on the answerability score, swept per (suite, strategy).
    #[serde(default)]
    pub abstention: Vec<super::abstention::Abstention>,
}

/// Aggregates `records`.
pub fn summarize(records: &[EvalRecord]) -> Summary {
    let mut by: BTreeMap<(String, String, String), Vec<&EvalRecord>> = BTreeMap::new();
    for r in records {
        for kind in ["all", r.kind.as_str()] {
            by.entry((r.suite.clone(), r.strategy.clone(), kind.to_string()))
                .or_default()
                .push(r);
        }
    }
    let groups = by
        .into_iter()
        .map(|((suite, strategy, kind), rs)| group(suite, strategy, kind, &rs))
        .collect();
    Summary {
        records: records.len(),
        groups,
        grids: grids(records),
        abstention: super::abstention::abstention(records),
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn group(suite: String, strategy: String, kind: String, rs: &[&EvalRecord]) -> Group {
    let answered: Vec<&&EvalRecord> = rs.iter().filter(|r| r.error.is_none()).collect();
    let mut seconds: Vec<f64> = answered.iter().map(|r| r.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let mut chosen = BTreeMap::new();
    for r in &answered {
        *chosen.entry(r.chosen_kind.clone()).or_insert(0) += 1;
    }
    Group {
        items: rs.len(),
        errors: rs.len() - answered.len(),
        score: mean(rs.iter().map(|r| r.score)).unwrap_or(0.0),
        exact: mean(rs.iter().map(|r| f64::from(u8::from(r.exact)))).unwrap_or(0.0),
        f1: mean(rs.iter().map(|r| r.f1)).unwrap_or(0.0),
        refusal_accuracy: mean(
            rs.iter()
                .filter(|r| r.golds.is_empty())
                .map(|r| f64::from(u8::from(r.correct))),
        ),
        flagged_answerable: mean(
            rs.iter()
                .filter(|r| !r.golds.is_empty())
                .map(|r| f64::from(u8::from(r.flagged_not_found))),
        ),
        retrieval_recall: mean(rs.iter().filter_map(|r| r.retrieval_recall)),
        tokens_sent: mean(answered.iter().map(|r| r.tokens_sent as f64)).unwrap_or(0.0),
        corpus_tokens: mean(answered.iter().map(|r| r.corpus_tokens as f64)).unwrap_or(0.0),
        seconds_mean: mean(seconds.iter().copied()).unwrap_or(0.0),
        seconds_p50: seconds.get(seconds.len() / 2).copied().unwrap_or(0.0),
        stages: Stages {
            ingest: mean(answered.iter().map(|r| r.stages.ingest)).unwrap_or(0.0),
            retrieve: mean(answered.iter().map(|r| r.stages.retrieve)).unwrap_or(0.0),
            compress: mean(answered.iter().map(|r| r.stages.compress)).unwrap_or(0.0),
            prefill: mean(answered.iter().map(|r| r.stages.prefill)).unwrap_or(0.0),
            decode: mean(answered.iter().map(|r| r.stages.decode)).unwrap_or(0.0),
            quote: mean(answered.iter().map(|r| r.stages.quote)).unwrap_or(0.0),
        },
        peak_memory_max_bytes: answered
            .iter()
            .map(|r| r.peak_memory_bytes)
            .max()
            .unwrap_or(0),
        kv_bytes_mean: mean(answered.iter().map(|r| r.kv_bytes as f64)).unwrap_or(0.0),
        chosen,
        fallbacks: answered.iter().filter(|r| r.fallback.is_some()).count(),
        suite,
        strategy,
        kind,
    }
}

fn grids(records: &[EvalRecord]) -> Vec<Grid> {
    type Cells = BTreeMap<(usize, u32), Vec<f64>>;
    let mut by: BTreeMap<(String, String), Cells> = BTreeMap::new();
    // Multi-value items have needles at several depths (the grid's is the
    // first one's): they are left out of the depth grid.
    for r in records.iter().filter(|r| r.kind != "niah_multivalue") {
        if let (Some(length), Some(depth)) = (r.length, r.depth) {
            by.entry((r.suite.clone(), r.strategy.clone()))
                .or_default()
                .entry((length, (depth * 100.0).round() as u32))
                .or_default()
                .push(r.score);
        }
    }
    by.into_iter()
        .map(|((suite, strategy), cells)| {
            let mut lengths: Vec<usize> = cells.keys().map(|k| k.0).collect();
            let mut depths: Vec<u32> = cells.keys().map(|k| k.1).collect();
            lengths.sort_unstable();
            lengths.dedup();
            depths.sort_unstable();
            depths.dedup();
            let grid = lengths
                .iter()
                .map(|l| {
                    depths
                        .iter()
                        .map(|d| cells.get(&(*l, *d)).and_then(|v| mean(v.iter().copied())))
                        .collect()
                })
                .collect();
            Grid {
                suite,
                strategy,
                lengths,
                depths,
                cells: grid,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(strategy: &str, kind: &str, score: f64, golds: &[&str]) -> EvalRecord {
        EvalRecord {
            suite: "s".into(),
            id: format!("{kind}{score}"),
            kind: kind.into(),
            strategy: strategy.into(),
            chosen_kind: strategy.into(),
            score,
            correct: score >= 1.0,
            golds: golds.iter().map(|g| g.to_string()).collect(),
            seconds: score + 1.0,
            length: Some(1024),
            depth: Some(0.5),
            ..Default::default()
        }
    }

    #[test]
    fn groups_split_by_kind_and_count_refusals() {
        let records = vec![
            rec("rag", "answerable", 1.0, &["x"]),
            rec("rag", "answerable", 0.0, &["x"]),
            rec("rag", "unanswerable", 1.0, &[]),
        ];
        let s = summarize(&records);
        let all = s.groups.iter().find(|g| g.kind == "all").unwrap();
        assert_eq!(all.items, 3);
        assert!((all.score - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(all.refusal_accuracy, Some(1.0));
        assert_eq!(all.seconds_p50, 2.0);
        let answerable = s.groups.iter().find(|g| g.kind == "answerable").unwrap();
        assert_eq!(answerable.score, 0.5);
        assert_eq!(answerable.refusal_accuracy, None);
        assert_eq!(s.grids[0].cells, vec![vec![Some(2.0 / 3.0)]]);
    }
}
