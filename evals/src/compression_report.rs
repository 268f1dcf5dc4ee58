//! The compression benchmark's summary, recomputed from its JSON lines at
//! any time (during a run or after it was killed): accuracy per method and
//! ratio over the questions that have every cell, plus compression cost.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use crate::compression::Record;

/// One (method, ratio) cell over the paired questions.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// `none` (the whole document) or the compression method.
    pub method: String,
    /// The requested compression ratio (1: the whole document).
    pub ratio: f32,
    /// Records in the cell: the paired questions.
    pub n: usize,
    /// Answers containing a gold answer, in %.
    pub accuracy: f64,
    /// Answers equal to a gold answer once normalized (SQuAD EM), in %.
    pub exact: f64,
    /// Mean best word-overlap F1 against a gold answer (SQuAD F1), in %.
    pub f1: f64,
    /// Compressed texts still containing a gold answer, in %.
    pub gold_kept: f64,
    /// Mean source ÷ compressed tokens actually reached.
    pub achieved_ratio: f64,
    /// Compression milliseconds per 1,000 source tokens (all time ÷ all tokens).
    pub ms_per_1k_tokens: f64,
    /// Records with an error (they count as wrong in the percentages).
    pub errors: usize,
}

/// The summary of one suite.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The suite's name (`squad`, `squad-article`, `hotpotqa`).
    pub suite: String,
    /// Questions with a record in every cell (the ones summarized).
    pub questions: usize,
    /// Questions with at least one record.
    pub started: usize,
    /// One cell per (method, ratio) in the records, over the paired questions.
    pub cells: Vec<Cell>,
}

/// Summaries of every suite in `records`, over each suite's questions that
/// have all of its (method, ratio) cells so that columns compare the same
/// questions.
pub fn summarize(records: &[Record]) -> Vec<Summary> {
    let suites: BTreeSet<&str> = records.iter().map(|r| r.suite.as_str()).collect();
    suites
        .into_iter()
        .map(|suite| {
            let rs: Vec<&Record> = records.iter().filter(|r| r.suite == suite).collect();
            let keys: BTreeSet<(String, String)> = rs.iter().map(|r| key(r)).collect();
            let mut per_id: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
            for r in &rs {
                per_id.entry(r.id.as_str()).or_default().insert(key(r));
            }
            let complete: BTreeSet<&str> = per_id
                .iter()
                .filter(|(_, k)| **k == keys)
                .map(|(id, _)| *id)
                .collect();
            let cells = keys
                .iter()
                .map(|(method, ratio)| {
                    let cell: Vec<&&Record> = rs
                        .iter()
                        .filter(|r| {
                            complete.contains(r.id.as_str())
                                && key(r) == (method.clone(), ratio.clone())
                        })
                        .collect();
                    let n = cell.len().max(1) as f64;
                    let pct = |f: &dyn Fn(&Record) -> bool| {
                        100.0 * cell.iter().filter(|r| f(r)).count() as f64 / n
                    };
                    let ok: Vec<&&&Record> = cell.iter().filter(|r| r.error.is_none()).collect();
                    Cell {
                        method: method.clone(),
                        ratio: ratio.parse().unwrap_or(1.0),
                        n: cell.len(),
                        accuracy: pct(&|r| r.correct),
                        exact: pct(&|r| r.exact),
                        f1: 100.0 * cell.iter().map(|r| r.f1).sum::<f64>() / n,
                        gold_kept: pct(&|r| r.gold_kept),
                        achieved_ratio: ok
                            .iter()
                            .map(|r| r.source_tokens as f64 / r.compressed_tokens.max(1) as f64)
                            .sum::<f64>()
                            / ok.len().max(1) as f64,
                        ms_per_1k_tokens: 1e6 * ok.iter().map(|r| r.compress_seconds).sum::<f64>()
                            / ok.iter().map(|r| r.source_tokens).sum::<usize>().max(1) as f64,
                        errors: cell.len() - ok.len(),
                    }
                })
                .collect();
            Summary {
                suite: suite.to_string(),
                questions: complete.len(),
                started: per_id.len(),
                cells,
            }
        })
        .collect()
}

/// How one table prints a cell.
type Show = dyn Fn(&Cell) -> String;

fn key(r: &Record) -> (String, String) {
    (r.method.clone(), r.ratio.to_string())
}

impl Summary {
    /// The summary as text tables: methods down, ratios across; the 1×
    /// column is the uncompressed answer, the same for every method.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let base = self.cells.iter().find(|c| c.method == "none");
        let mut ratios: Vec<f32> = self
            .cells
            .iter()
            .filter(|c| c.method != "none")
            .map(|c| c.ratio)
            .collect();
        ratios.sort_by(f32::total_cmp);
        ratios.dedup();
        let methods: BTreeSet<&str> = self
            .cells
            .iter()
            .filter(|c| c.method != "none")
            .map(|c| c.method.as_str())
            .collect();
        let cell = |m: &str, r: f32| self.cells.iter().find(|c| c.method == m && c.ratio == r);
        let _ = writeln!(
            out,
            "{}: {} questions with every cell ({} started)",
            self.suite, self.questions, self.started
        );
        let tables: [(&str, &Show); 4] = [
            ("accuracy % (answer contains a gold answer)", &|c| {
                format!("{:.1}", c.accuracy)
            }),
            ("token F1 %", &|c| format!("{:.1}", c.f1)),
            ("gold answer kept in the text read %", &|c| {
                format!("{:.1}", c.gold_kept)
            }),
            (
                "achieved ratio · ms per 1K source tokens · errors",
                &|c| {
                    format!(
                        "{:.1}× {:.0}ms {}",
                        c.achieved_ratio, c.ms_per_1k_tokens, c.errors
                    )
                },
            ),
        ];
        for (title, show) in tables {
            let _ = writeln!(out, "\n{title}");
            let _ = write!(out, "{:<10}", "method");
            if base.is_some() {
                let _ = write!(out, " {:>18}", "1×");
            }
            for r in &ratios {
                let _ = write!(out, " {:>18}", format!("{r}×"));
            }
            let _ = writeln!(out);
            for m in &methods {
                let _ = write!(out, "{m:<10}");
                if let Some(b) = base {
                    let _ = write!(out, " {:>18}", show(b));
                }
                for r in &ratios {
                    let _ = write!(out, " {:>18}", cell(m, *r).map_or("-".into(), show));
                }
                let _ = writeln!(out);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, method: &str, ratio: f32, correct: bool) -> Record {
        Record {
            suite: "squad".into(),
            id: id.into(),
            method: method.into(),
            ratio,
            question: "q".into(),
            golds: vec!["a".into()],
            answer: "a".into(),
            correct,
            exact: correct,
            f1: if correct { 1.0 } else { 0.0 },
            gold_kept: true,
            source_tokens: 100,
            compressed_tokens: (100.0 / ratio) as usize,
            target_tokens: (100.0 / ratio) as usize,
            compress_seconds: 0.5,
            prompt_tokens: 120,
            answer_seconds: 1.0,
            read: None,
            error: None,
        }
    }

    /// A cell recorded twice in the file counts once, with its last record;
    /// a question missing a cell is left out of every column.
    #[test]
    fn each_question_counts_once_per_cell_with_its_last_record() {
        let records = [
            record("q1", "none", 1.0, true),
            record("q1", "llmlingua", 4.0, false),
            record("q1", "llmlingua", 4.0, true),
            record("q2", "none", 1.0, false),
            record("q2", "llmlingua", 4.0, false),
            record("q3", "none", 1.0, true),
        ];
        let path = std::env::temp_dir().join(format!(
            "folio-compress-records-{}.jsonl",
            std::process::id()
        ));
        let lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let read = crate::compression::read_records(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let summary = &summarize(&read)[0];
        assert_eq!((summary.questions, summary.started), (2, 3));
        let cell = |m: &str| summary.cells.iter().find(|c| c.method == m).unwrap();
        assert_eq!(cell("llmlingua").n, 2);
        assert_eq!(cell("llmlingua").accuracy, 50.0);
        assert_eq!(cell("none").accuracy, 50.0);
    }
}
