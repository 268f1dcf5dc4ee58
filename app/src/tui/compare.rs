//! The compare view (F3): the same question answered by retrieval,
//! compression and a full read, side by side, each column streaming its
//! answer and then the same rows as `folio ask --compare`.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::answer_pane::body;
use super::state::{AnswerState, CompareState};
use crate::card::{compare_values, COMPARE_ROWS};

/// The compare view over its state; `tick` turns the spinners.
pub struct ComparePane<'a> {
    pub state: &'a CompareState,
    pub tick: usize,
}

/// One column's state in a word, for its title.
pub fn column_state(s: &AnswerState) -> &'static str {
    if s.error.is_some() {
        "not run"
    } else if s.result.is_some() {
        "done"
    } else if s.running {
        "running"
    } else {
        "waiting"
    }
}

/// A column's lines: the streamed answer, then the comparison rows (all
/// but `answer`, which the body already shows).
pub fn column_lines(s: &AnswerState, tick: usize) -> Vec<Line<'static>> {
    let mut lines = body(s, tick);
    if let Some(a) = &s.result {
        lines.push(Line::raw(""));
        for (name, value) in COMPARE_ROWS.iter().zip(compare_values(a)).skip(1) {
            lines.push(Line::from(vec![
                Span::styled(format!("{name:<18}"), Style::new().fg(Color::DarkGray)),
                Span::raw(value),
            ]));
        }
    }
    lines
}

impl Widget for ComparePane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let n = self.state.columns.len().max(1) as u32;
        let areas = Layout::horizontal(vec![Constraint::Ratio(1, n); n as usize]).split(area);
        for (c, rect) in self.state.columns.iter().zip(areas.iter()) {
            let title = Line::from(vec![
                Span::styled(
                    format!(" {} ", c.kind.name()),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("· {} ", column_state(&c.state))),
            ]);
            Paragraph::new(column_lines(&c.state, self.tick))
                .wrap(Wrap { trim: false })
                .block(Block::new().borders(Borders::ALL).title(title))
                .render(*rect, buf);
        }
    }
}
