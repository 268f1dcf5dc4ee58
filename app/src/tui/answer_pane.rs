//! The answer pane: the question and the answer as it streams in, token by
//! token, with the plan being run and how the answer ended.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use folio_engine::llm::StopReason;

use super::state::AnswerState;

/// Frames of the spinner shown while an answer runs.
pub const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The answer pane over one answer's state; `tick` turns the spinner.
pub struct AnswerPane<'a> {
    pub state: &'a AnswerState,
    pub tick: usize,
    pub title: &'a str,
}

/// The lines of an answer's body, shared by the answer pane and the
/// compare view's columns.
pub fn body(s: &AnswerState, tick: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if s.question.is_empty() {
        lines.push(Line::styled(
            "Type a question below and press Enter (F1: keys).",
            Style::new().fg(Color::DarkGray),
        ));
        if let Some(e) = &s.error {
            lines.push(Line::styled(
                format!("error: {e}"),
                Style::new().fg(Color::Red),
            ));
        }
        return lines;
    }
    lines.push(Line::styled(
        format!("Q: {}", s.question),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    if let Some(p) = &s.plan {
        lines.push(Line::styled(
            format!("reading: {p}"),
            Style::new().fg(Color::DarkGray),
        ));
    }
    lines.push(Line::raw(""));
    for l in s.text.split('\n') {
        lines.push(Line::raw(l.to_string()));
    }
    if s.running {
        lines.push(Line::styled(
            format!("{} working…", SPINNER[tick % SPINNER.len()]),
            Style::new().fg(Color::Cyan),
        ));
    }
    if let Some(a) = &s.result {
        let t = &a.trade_offs;
        let ended = match t.read.stop_reason {
            StopReason::Cancelled => Some("[cancelled: the answer stops here]"),
            StopReason::MaxTokens => Some("[cut at the answer-token limit]"),
            StopReason::ContextFull => Some("[cut: the context is full]"),
            StopReason::StopToken => None,
        };
        if let Some(e) = ended {
            lines.push(Line::styled(e, Style::new().fg(Color::Yellow)));
        }
        if t.support.not_found {
            lines.push(Line::styled(
                "NOT FOUND: the text read does not support this answer",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
    }
    if let Some(e) = &s.error {
        lines.push(Line::styled(
            format!("error: {e}"),
            Style::new().fg(Color::Red),
        ));
    }
    lines
}

impl Widget for AnswerPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let lines = body(self.state, self.tick);
        // Follow the stream: once the text overflows, show its end.
        let inner_w = area.width.saturating_sub(2).max(1) as usize;
        let rows: usize = lines
            .iter()
            .map(|l| l.width().max(1).div_ceil(inner_w))
            .sum();
        let scroll = rows.saturating_sub(area.height.saturating_sub(2) as usize) as u16;
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(Block::new().borders(Borders::ALL).title(self.title))
            .render(area, buf);
    }
}
