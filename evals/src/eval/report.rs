//! `summary.json`, `report.md` and the charts of an output folder, rebuilt
//! from `results.jsonl` (so a resumed or partial run reports what it has).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::charts;
use super::run::{read_results, results_path};
use super::summary::{summarize, Group, Summary};

/// Files a report wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// Path of `summary.json`.
    pub summary: PathBuf,
    /// Path of `report.md`.
    pub report: PathBuf,
    /// Paths of the SVG charts drawn.
    pub charts: Vec<PathBuf>,
    /// The summary written to `summary.json`, for callers that print it.
    pub summary_value: Summary,
}

/// The file listing the commands that wrote a folder's results.
const COMMANDS: &str = "commands.txt";

/// Appends `command` to the folder's list of commands that produced its
/// results (a resumed run adds a line).
pub fn log_command(out: &Path, command: &str) -> Result<()> {
    use std::io::Write;
    let path = out.join(COMMANDS);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{command}").with_context(|| format!("writing {}", path.display()))
}

/// Summarizes `out/results.jsonl` into `summary.json`, `report.md` and SVG
/// charts in `out`; the report quotes the commands in `commands.txt`.
pub fn write_report(out: &Path) -> Result<Written> {
    let command =
        std::fs::read_to_string(out.join(COMMANDS)).unwrap_or_else(|_| "(not recorded)".into());
    let command = command.trim_end();
    let records = read_results(&results_path(out))?;
    let summary = summarize(&records);
    let summary_path = out.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    let chart_files = charts::draw_all(&summary, out)?;
    let models: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.model.as_str()).collect();
    let md = markdown(&summary, command, &models, &chart_files, out);
    let report_path = out.join("report.md");
    std::fs::write(&report_path, md)
        .with_context(|| format!("writing {}", report_path.display()))?;
    Ok(Written {
        summary: summary_path,
        report: report_path,
        charts: chart_files,
        summary_value: summary,
    })
}

fn pct(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("–".into(), pct)
}

fn row(g: &Group, first: &str) -> String {
    let chosen = g
        .chosen
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "| {first} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {chosen} | {} | {} |\n",
        g.items,
        pct(g.score),
        pct(g.exact),
        pct(g.f1),
        opt_pct(g.refusal_accuracy),
        opt_pct(g.flagged_answerable),
        opt_pct(g.retrieval_recall),
        g.tokens_sent,
        g.corpus_tokens,
        g.seconds_mean,
        g.seconds_p50,
        g.peak_memory_max_bytes as f64 / (1u64 << 20) as f64,
        g.kv_bytes_mean / (1u64 << 20) as f64,
        g.fallbacks,
        g.errors,
    )
}

const HEADER: &str = "| score % | EM % | F1 % | refusal % | flagged % | recall % | tokens sent | corpus tokens | s mean | s p50 | peak MiB | KV MiB | plans | fallbacks | errors |\n";
const RULE: &str =
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n";

/// The risk–coverage sweep of one strategy: what abstaining below each
/// threshold keeps and loses.
fn abstention_table(md: &mut String, a: &super::abstention::Abstention) {
    let _ = writeln!(
        md,
        "\n### {}: abstaining on answerability, {} ({} items, {} unanswerable; quotes \
         verified {} %)\n",
        a.suite,
        a.strategy,
        a.items,
        a.unanswerable,
        opt_pct(a.quotes_verified)
    );
    md.push_str(
        "| threshold | answered % | accuracy of answered % | unanswerable abstained % | \
         answerable accuracy % |\n|---:|---:|---:|---:|---:|\n",
    );
    for (i, p) in a.curve.iter().enumerate() {
        let is_best = a.best_threshold == Some(p.threshold);
        if i % 2 == 1 && !is_best {
            continue;
        }
        let best = if is_best { " (best)" } else { "" };
        let _ = writeln!(
            md,
            "| {:.2}{best} | {} | {} | {} | {} |",
            p.threshold,
            pct(p.coverage),
            opt_pct(p.kept_accuracy),
            opt_pct(p.abstained_unanswerable),
            opt_pct(p.answerable_accuracy)
        );
    }
    let _ = writeln!(
        md,
        "\nSeparation of answers worth keeping (AUROC): answerability {}, answer log-probability {}.",
        a.auroc_answerability.map_or("–".into(), |v| format!("{v:.3}")),
        a.auroc_answer_logprob.map_or("–".into(), |v| format!("{v:.3}"))
    );
    if let Some(t) = a.best_threshold {
        let _ = writeln!(
            md,
            "\nMost abstention within {} points of answerable accuracy: threshold {t:.2}.",
            super::abstention::MAX_ACCURACY_LOSS * 100.0
        );
    }
}

fn markdown(
    summary: &Summary,
    command: &str,
    models: &std::collections::BTreeSet<&str>,
    charts: &[PathBuf],
    out: &Path,
) -> String {
    let mut md = String::from("# folio eval report\n\n");
    let _ = writeln!(
        md,
        "Produced by (a resumed run adds a line):\n\n```\n{command}\n```\n"
    );
    let _ = writeln!(
        md,
        "{} answers; model(s): {}. Scores: containment of a gold answer (SQuAD-normalized) \
         for QA items, the fraction of golds found (RULER `string_match_all`) for \
         multi-answer items, an abstention for unanswerable items (`refusal`). EM and F1 \
         are SQuAD's. `flagged` is the share of answerable items folio marked not found. \
         `recall` is the share of gold passages a retrieved chunk overlaps (retrieval \
         plans only). Seconds include building the index when a retrieval plan needs one \
         (every item is a fresh corpus). Peak memory is the process' resident peak during \
         the answer: both models' weights and whatever the allocator kept from earlier \
         answers included. The needle grids leave out multi-value items (their needles sit \
         at several depths).\n",
        summary.records,
        models.iter().copied().collect::<Vec<_>>().join(", ")
    );
    let mut suites: Vec<&str> = summary.groups.iter().map(|g| g.suite.as_str()).collect();
    suites.dedup();
    for suite in suites {
        let _ = writeln!(md, "## {suite}\n");
        md.push_str(&format!("| strategy | items {HEADER}"));
        md.push_str(RULE);
        for g in summary
            .groups
            .iter()
            .filter(|g| g.suite == suite && g.kind == "all")
        {
            md.push_str(&row(g, &g.strategy));
        }
        let kinds: Vec<&Group> = summary
            .groups
            .iter()
            .filter(|g| g.suite == suite && g.kind != "all")
            .collect();
        let mut distinct: Vec<&str> = kinds.iter().map(|g| g.kind.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > 1 {
            let _ = writeln!(md, "\n### {suite} by kind\n");
            md.push_str(&format!("| kind / strategy | items {HEADER}"));
            md.push_str(RULE);
            let mut kinds = kinds;
            kinds.sort_by(|a, b| (&a.kind, &a.strategy).cmp(&(&b.kind, &b.strategy)));
            for g in kinds {
                md.push_str(&row(g, &format!("{} / {}", g.kind, g.strategy)));
            }
        }
        for a in summary.abstention.iter().filter(|a| a.suite == suite) {
            abstention_table(&mut md, a);
        }
        for grid in summary.grids.iter().filter(|g| g.suite == suite) {
            let _ = writeln!(
                md,
                "\n### {suite}: score by length × depth, {}\n",
                grid.strategy
            );
            md.push_str("| tokens |");
            for d in &grid.depths {
                let _ = write!(md, " {d}% |");
            }
            md.push_str("\n|---:|");
            md.push_str(&"---:|".repeat(grid.depths.len()));
            md.push('\n');
            for (l, cells) in grid.lengths.iter().zip(&grid.cells) {
                let _ = write!(md, "| {l} |");
                for c in cells {
                    let _ = write!(md, " {} |", opt_pct(*c));
                }
                md.push('\n');
            }
        }
        md.push('\n');
    }
    if !charts.is_empty() {
        md.push_str("## Charts\n\n");
        for c in charts {
            let name = c.strip_prefix(out).unwrap_or(c).display().to_string();
            let _ = writeln!(md, "![{name}]({name})\n");
        }
    }
    md
}
