//! The trade-off card beside the answer: the CLI card's lines (one
//! formatter for both, `crate::card::lines`) with a coverage bar per
//! document showing which of its bytes the model read, and warnings in red.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use folio_corpora::Span;
use folio_engine::ask::context::file_name;
use folio_engine::ask::{Answer, TradeOffs};
use folio_engine::router::Strategy;

use super::state::DocInfo;
use crate::card;

/// Documents given a bar each; the rest are counted.
const MAX_BARS: usize = 6;

/// The card pane: the shown answer's trade-offs (or a hint before any).
pub struct CardPane<'a> {
    pub answer: Option<&'a Answer>,
    pub docs: &'a [DocInfo],
    pub scroll: u16,
}

/// The byte spans of the document at `path` (of `len` bytes) the model
/// read: all of it for a full read, the retrieved chunks, or what the
/// compressor kept (the complement of its dropped spans).
pub fn read_spans(t: &TradeOffs, path: &str, len: usize) -> Vec<Span> {
    match t.plan.strategy {
        Strategy::Full { .. } => vec![Span { start: 0, end: len }],
        Strategy::Rag { .. } => t
            .coverage
            .chunks
            .iter()
            .filter(|c| c.path == path)
            .map(|c| c.span)
            .collect(),
        Strategy::Compress { .. } => {
            let mut dropped: Vec<Span> = t
                .coverage
                .dropped
                .iter()
                .filter(|d| d.path == path)
                .map(|d| d.span)
                .collect();
            dropped.sort_by_key(|s| s.start);
            folio_engine::compress::complement(&dropped, len)
        }
    }
}

/// A `width`-cell bar over a document of `len` bytes: `█` where most of a
/// cell's bytes were read, `▒` where some were, `░` where none were.
pub fn coverage_bar(len: usize, read: &[Span], width: usize) -> String {
    (0..width)
        .map(|i| {
            let lo = i * len / width;
            let hi = ((i + 1) * len / width).max(lo + 1);
            let covered: usize = read
                .iter()
                .map(|s| s.end.min(hi).saturating_sub(s.start.max(lo)))
                .sum();
            match covered * 2 {
                0 => '░',
                c if c >= hi - lo => '█',
                _ => '▒',
            }
        })
        .collect()
}

/// The coverage rows: one bar per document with the share of it read.
pub fn coverage_lines(t: &TradeOffs, docs: &[DocInfo], width: usize) -> Vec<String> {
    let bar_w = width.saturating_sub(12 + 16 + 8).clamp(8, 60);
    let mut out = Vec::new();
    for (i, d) in docs.iter().take(MAX_BARS).enumerate() {
        let spans = read_spans(t, &d.path, d.bytes);
        let read: usize = spans.iter().map(|s| s.end - s.start).sum();
        let name: String = file_name(&d.path).chars().take(15).collect();
        out.push(format!(
            "{:<12}{name:<16}{} {:>5.1}%",
            if i == 0 { "coverage" } else { "" },
            coverage_bar(d.bytes, &spans, bar_w),
            read as f64 / d.bytes.max(1) as f64 * 100.0
        ));
    }
    if docs.len() > MAX_BARS {
        out.push(format!(
            "{:<12}… and {} more documents",
            "",
            docs.len() - MAX_BARS
        ));
    }
    out
}

/// The card's lines for `a`: the CLI card without its rule, the coverage
/// bars after the `read` line.
pub fn card_lines(a: &Answer, docs: &[DocInfo], width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in card::lines(a) {
        for l in line.split('\n') {
            if l.is_empty() || l.starts_with("──") {
                continue;
            }
            out.push(l.to_string());
            if l.starts_with("read ") {
                out.extend(coverage_lines(&a.trade_offs, docs, width));
            }
        }
    }
    out
}

fn style_of(line: &str) -> Style {
    if line.contains("WARNING") || line.contains("NOT FOUND") || line.contains("NOT found") {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else if line.starts_with("strategy") {
        Style::new().add_modifier(Modifier::BOLD)
    } else if line.starts_with("coverage") || line.starts_with("            ") && line.contains('█')
    {
        Style::new().fg(Color::Green)
    } else {
        Style::new()
    }
}

impl Widget for CardPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let block = Block::new()
            .borders(Borders::ALL)
            .title(" how it was read (PgUp/PgDn) ");
        let lines: Vec<Line> = match self.answer {
            None => vec![Line::styled(
                "The trade-offs of each answer appear here: strategy and why, coverage, \
                 attention, RoPE, KV cache, predicted vs measured time per stage.",
                Style::new().fg(Color::DarkGray),
            )],
            Some(a) => card_lines(a, self.docs, area.width.saturating_sub(2) as usize)
                .into_iter()
                .map(|l| {
                    let style = style_of(&l);
                    Line::styled(l, style)
                })
                .collect(),
        };
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((self.scroll, 0))
            .block(block)
            .render(area, buf);
    }
}
