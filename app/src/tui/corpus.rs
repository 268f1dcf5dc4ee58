//! The corpus pane: what the questions are asked of — each document with
//! its size in the answering model's tokens, and whether retrieval's index
//! exists yet (building it is the slow first step of a first `rag` read).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use folio_engine::ask::context::file_name;

use super::state::CorpusState;
use crate::output::human_bytes;

/// The corpus pane over its state.
pub struct CorpusPane<'a>(pub &'a CorpusState);

/// `12345` as `12.3K`, so a column stays narrow.
pub fn short_count(n: usize) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}K", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

impl Widget for CorpusPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let c = self.0;
        let dim = Style::new().fg(Color::DarkGray);
        let name_w = (area.width as usize).saturating_sub(2 + 8).max(8);
        let mut lines = vec![Line::styled(c.label.clone(), dim)];
        lines.push(Line::styled(
            format!("{:<name_w$}{:>7}", "document", "tokens"),
            dim,
        ));
        if c.docs.is_empty() {
            lines.push(Line::raw("(loading…)"));
        }
        for d in &c.docs {
            let name: String = file_name(&d.path).chars().take(name_w - 1).collect();
            let tokens = d.tokens.map_or("…".into(), short_count);
            lines.push(Line::raw(format!("{name:<name_w$}{tokens:>7}")));
        }
        let total_tokens: Option<usize> = c.docs.iter().map(|d| d.tokens).sum();
        let bytes: usize = c.docs.iter().map(|d| d.bytes).sum();
        lines.push(Line::raw(""));
        lines.push(Line::raw(format!(
            "{} docs · {} tokens",
            c.docs.len(),
            total_tokens.map_or("…".into(), short_count)
        )));
        lines.push(Line::raw(format!("{} of text", human_bytes(bytes as u64))));
        lines.push(match c.indexed {
            Some(true) => Line::styled("index: ready", Style::new().fg(Color::Green)),
            Some(false) => Line::styled(
                "index: none yet (built on the first retrieval)",
                Style::new().fg(Color::Yellow),
            ),
            None => Line::raw("index: …"),
        });
        lines.push(Line::raw(format!(
            "model: {}",
            c.model.as_deref().unwrap_or("loading…")
        )));
        for s in &c.skipped {
            lines.push(Line::styled(s.clone(), Style::new().fg(Color::Red)));
        }
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" corpus "))
            .render(area, buf);
    }
}
