//! The trade-off card printed under an answer: how it was read, what that
//! cost against the prediction, what was left out, and the evidence.

use folio_engine::ask::context::file_name;
use folio_engine::ask::{says_not_found, Answer, TradeOffs};
use folio_engine::llm::{EvictionReport, RopeScaling};
use folio_engine::prefix_cache::PrefixReport;
use folio_engine::remote::ServerInfo;
use folio_engine::router::Strategy;

use crate::output::human_bytes;

/// Prints the card of `a` on stderr (stdout keeps only the answer).
pub fn print(a: &Answer) {
    for line in lines(a) {
        eprintln!("{line}");
    }
}

/// The card as lines, so other views can reuse it.
pub fn lines(a: &Answer) -> Vec<String> {
    let t = &a.trade_offs;
    let mut out = vec![
        String::new(),
        "── how it was read ─────────────────────────────────────────".into(),
        format!(
            "strategy    {} ({} question)",
            t.plan.strategy.describe(),
            match t.plan.question_kind {
                folio_engine::router::QuestionKind::Lookup => "look-up",
                folio_engine::router::QuestionKind::Wide => "wide",
            }
        ),
    ];
    for (i, r) in t.plan.reasons.iter().enumerate() {
        let head = if i == 0 { "why" } else { "" };
        out.push(format!("{head:<11} · {r}"));
    }
    if let Some(f) = &t.plan.fallback {
        out.push(format!(
            "fallback    {} (first answer after {:.1} s: \"{}\")",
            f.reason,
            f.first_seconds,
            clip(&f.first_answer, 80)
        ));
    }
    out.push(read_line(t));
    if t.support.not_found {
        out.push(not_found_line(a));
    }
    for c in t.coverage.chunks.iter().take(8) {
        let ranks = match (c.bm25_rank, c.dense_rank) {
            (Some(b), Some(d)) => format!("bm25 #{b}, dense #{d}"),
            (Some(b), None) => format!("bm25 #{b}"),
            (None, Some(d)) => format!("dense #{d}"),
            (None, None) => String::new(),
        };
        out.push(format!(
            "  chunk #{:<2} {} bytes {}–{}  score {:.3} ({ranks})",
            c.rank,
            file_name(&c.path),
            c.span.start,
            c.span.end,
            c.score
        ));
    }
    if t.coverage.dropped_spans > 0 {
        out.push(format!(
            "dropped     {} spans, {} the model did not see (byte spans in --json)",
            t.coverage.dropped_spans,
            human_bytes(t.coverage.dropped_bytes as u64)
        ));
    }
    if let Some(server) = &t.read.stats.server {
        out.extend(server_lines(server));
        if let Some(note) = &t.read.device_note {
            out.push(format!("settings    {note}"));
        }
    } else {
        out.extend(local_read_lines(t));
    }
    if let Some(e) = &t.read.stats.eviction {
        out.push(format!(
            "evicted     {}",
            eviction_text(e, t.read.stats.kv_cache_bytes)
        ));
    }
    if let Some(line) = t.read.prefix_cache.as_ref().and_then(prefix_text) {
        out.push(format!("prefix      {line}"));
    }
    out.push("time        stage       predicted   measured".into());
    for s in &t.cost.stages {
        out.push(format!(
            "            {:<10} {:>8.2} s {:>8.2} s",
            s.stage, s.predicted_s, s.measured_s
        ));
    }
    let err = (t.cost.measured_seconds - t.cost.predicted_seconds)
        / t.cost.predicted_seconds.max(1e-9)
        * 100.0;
    out.push(format!(
        "            {:<10} {:>8.2} s {:>8.2} s  ({err:+.0}% against the prediction)",
        "total", t.cost.predicted_seconds, t.cost.measured_seconds
    ));
    out.push(format!(
        "memory      predicted peak {}, measured peak {} ({})",
        human_bytes(t.cost.predicted_peak_memory_bytes),
        human_bytes(t.cost.measured_peak_memory_bytes),
        match t.read.stats.server {
            Some(_) => "this process; the model's weights and cache are the server's",
            None => "whole process",
        }
    ));
    out.extend(support_lines(t));
    out.push(budget_line(t));
    out
}

/// Attention, RoPE and KV cache of a read folio ran itself.
fn local_read_lines(t: &TradeOffs) -> Vec<String> {
    let mut out = vec![format!(
        "attention   {} on {}, {:.1}% of causal keys attended",
        t.read.stats.attention,
        t.read.stats.device,
        t.read.stats.attended_fraction * 100.0
    )];
    if let Some(note) = &t.read.device_note {
        out.push(format!("device      {note}"));
    }
    out.push(format!(
        "RoPE        {}",
        rope_text(
            t.read.stats.rope_scaling,
            t.read.beyond_trained_range,
            t.read.trained_context
        )
    ));
    out.push(format!(
        "KV cache    {} ({})",
        human_bytes(t.read.stats.kv_cache_bytes as u64),
        t.read.stats.kv_dtype
    ));
    out
}

/// A remote read: which server, and what only it knows.
fn server_lines(s: &ServerInfo) -> Vec<String> {
    vec![
        format!(
            "server      {} at {}, model {} (context {})",
            s.kind.name(),
            s.url,
            s.model,
            s.context
                .map_or("not reported".into(), |n| format!("{n} tokens"))
        ),
        "attention   server-side (the server's kernel; not reported)".into(),
        "RoPE        server-side (the server's settings; not reported)".into(),
        "KV cache    server-side (the server's memory; not reported)".into(),
    ]
}

/// Why the answer counts as not found: the reader said so, its score was
/// below the threshold, or (unscored) its words are not in what was read.
fn not_found_line(a: &Answer) -> String {
    let s = &a.trade_offs.support;
    match (&s.withheld_answer, s.answerability) {
        (Some(withheld), Some(score)) => format!(
            "            NOT IN THE DOCUMENTS: the reader answered \"{}\", but its answerability \
             {score:.2} is below {:.2} ({})",
            clip(withheld, 80),
            s.min_confidence,
            s.min_confidence_source.describe()
        ),
        _ if says_not_found(&a.answer) => {
            "            NOT FOUND: the answer says the text read does not contain it".into()
        }
        _ => format!(
            "            NOT FOUND: the text read does not support this answer (only {:.0}% of its \
             words occur in it); treat it as not in the documents",
            s.word_overlap * 100.0
        ),
    }
}

/// The reader's quote and score, else the sentences sharing the answer's words.
fn support_lines(t: &TradeOffs) -> Vec<String> {
    let s = &t.support;
    let mut out = Vec::new();
    if let Some(score) = s.answerability {
        out.push(format!(
            "confidence  {score:.2} answerability (the reader's probability that its quote states \
             the answer; kept from {:.2}, {})",
            s.min_confidence,
            s.min_confidence_source.describe()
        ));
    }
    if let Some(q) = &s.quote {
        let head = if s.withheld_answer.is_some() {
            "closest"
        } else {
            "quote"
        };
        out.push(format!(
            "{head:<11} \"{}\"\n            {} bytes {}–{} ({}{})",
            clip(&q.text, 200),
            file_name(&q.path),
            q.span.start,
            q.span.end,
            if q.by_overlap {
                "the sentence sharing most words with the answer: a server does not copy under constraint"
            } else {
                "copied by the reader"
            },
            if q.verified {
                ", verified in the source"
            } else {
                "; NOT found at these offsets"
            }
        ));
        return out;
    }
    if s.evidence.is_empty() && !s.not_found {
        out.push("evidence    no sentence of what was read shares the answer's words".into());
    }
    for e in &s.evidence {
        out.push(format!(
            "evidence    \"{}\"\n            {} bytes {}–{} {}",
            clip(&e.text, 160),
            file_name(&e.path),
            e.span.start,
            e.span.end,
            if e.verified {
                "(verified in the source)"
            } else {
                "(NOT found at these offsets)"
            }
        ));
    }
    out
}

fn read_line(t: &TradeOffs) -> String {
    let mut s = format!(
        "read        {} tokens sent for a {}{}-token corpus; {:.1}% of its text read",
        t.coverage.tokens_sent,
        if t.coverage.corpus_tokens_estimated {
            "~"
        } else {
            ""
        },
        t.coverage.corpus_tokens,
        t.coverage.read_fraction * 100.0
    );
    if t.coverage.unread_documents > 0 {
        s += &format!(
            "; {} of {} documents not read at all",
            t.coverage.unread_documents, t.coverage.corpus_documents
        );
    }
    if let Strategy::Full { .. } = t.plan.strategy {
        s += " (everything)";
    }
    s
}

fn budget_line(t: &TradeOffs) -> String {
    let b = &t.plan.budget;
    format!(
        "budget      latency {} · memory {} · tokens {}",
        b.latency_s.map_or("none".into(), |s| format!("{s:.0} s")),
        b.memory_bytes.map_or("none".into(), human_bytes),
        b.context_tokens.map_or("none".into(), |n| n.to_string())
    )
}

/// Row names of the strategy comparison (`folio ask --compare`'s table and
/// the TUI's compare view), in order; [`compare_values`] fills them.
pub const COMPARE_ROWS: [&str; 8] = [
    "answer",
    "tokens sent",
    "text read",
    "attention",
    "beyond trained",
    "KV cache",
    "seconds pred/meas",
    "evidence",
];

/// The values of [`COMPARE_ROWS`] for one answer (unclipped).
pub fn compare_values(a: &Answer) -> [String; 8] {
    let t = &a.trade_offs;
    [
        a.answer.clone(),
        t.coverage.tokens_sent.to_string(),
        format!("{:.1}%", t.coverage.read_fraction * 100.0),
        match t.read.stats.server {
            Some(_) => "server-side".into(),
            None => format!(
                "{} ({:.0}% keys)",
                t.read.stats.attention,
                t.read.stats.attended_fraction * 100.0
            ),
        },
        if t.read.beyond_trained_range {
            "YES"
        } else {
            "no"
        }
        .into(),
        match t.read.stats.server {
            Some(_) => "server-side".into(),
            None => human_bytes(t.read.stats.kv_cache_bytes as u64),
        },
        format!(
            "{:.1} / {:.1}",
            t.cost.predicted_seconds, t.cost.measured_seconds
        ),
        t.support.evidence.first().map_or(
            if t.support.not_found {
                "(says not found)".into()
            } else {
                "none".into()
            },
            |e| e.text.clone(),
        ),
    ]
}

/// `s` cut to `max` characters with an ellipsis, on one line.
pub fn clip(s: &str, max: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        one_line.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// The RoPE line's text (both cards'): the scaling, and whether the read
/// went past the `trained` positions, with what that means.
pub fn rope_text(scaling: RopeScaling, beyond: bool, trained: usize) -> String {
    let rope = match scaling.factor() {
        f if f > 1.0 => format!("{} ×{f}", scaling.name()),
        _ => scaling.name().to_string(),
    };
    if beyond {
        format!(
            "{rope}: WARNING, read beyond the {trained} positions the model was trained on; \
             scaling stretches positions, it does not teach the model to use them"
        )
    } else {
        format!("{rope} (within the trained {trained} positions)")
    }
}

/// What the document prefix cache did for a read, in words: tokens restored
/// and the prefill they spared, or what was saved for the next question,
/// or why neither happened; `None` when it did nothing worth a line.
pub fn prefix_text(p: &PrefixReport) -> Option<String> {
    let notice = p
        .notice
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    if let Some(source) = p.source {
        let spared = p
            .replaced_prefill_seconds
            .map(|s| format!("; their prefill took {s:.1} s when saved"))
            .unwrap_or_default();
        return Some(format!(
            "{} document tokens restored from {source} in {:.2} s{spared}{notice}",
            p.reused_tokens, p.restore_seconds
        ));
    }
    if p.saved_tokens > 0 {
        return Some(format!(
            "{} document tokens saved for the next question ({}, {:.2} s){notice}",
            p.saved_tokens,
            human_bytes(p.saved_bytes),
            p.save_seconds
        ));
    }
    p.notice.clone()
}

/// What KV eviction kept, in words: the policy, positions kept of those
/// read, and the bytes against a cache that kept everything.
pub fn eviction_text(e: &EvictionReport, cache_bytes: usize) -> String {
    format!(
        "{}; kept {} of {} positions per layer and KV head: {} instead of {} (peak {})",
        e.policy,
        e.kept_positions,
        e.read_positions,
        human_bytes(cache_bytes as u64),
        human_bytes(e.full_cache_bytes as u64),
        human_bytes(e.peak_cache_bytes as u64)
    )
}
