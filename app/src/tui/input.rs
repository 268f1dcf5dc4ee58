//! The question input: a one-line editor with a history of asked
//! questions, and its pane, whose title shows the settings the next
//! question runs with (forced strategy, budget).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use folio_engine::router::StrategyKind;

/// The text being typed, the cursor, and the questions asked before.
#[derive(Debug, Clone, Default)]
pub struct InputState {
    pub text: String,
    /// Cursor position in characters.
    pub cursor: usize,
    /// Questions asked, oldest first.
    pub history: Vec<String>,
    /// Which history entry Up/Down reached (`None`: the line being typed).
    pub history_pos: Option<usize>,
}

impl InputState {
    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Inserts `c` at the cursor.
    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.text.chars().count() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    /// Moves the cursor by `delta` characters, within the text.
    pub fn move_cursor(&mut self, delta: isize) {
        let len = self.text.chars().count() as isize;
        self.cursor = (self.cursor as isize + delta).clamp(0, len) as usize;
    }

    /// Cursor to the start (`false`) or the end (`true`).
    pub fn jump(&mut self, end: bool) {
        self.cursor = if end { self.text.chars().count() } else { 0 };
    }

    /// Takes the typed question, records it in the history, clears the line.
    pub fn submit(&mut self) -> Option<String> {
        let q = self.text.trim().to_string();
        if q.is_empty() {
            return None;
        }
        if self.history.last() != Some(&q) {
            self.history.push(q.clone());
        }
        self.text.clear();
        self.cursor = 0;
        self.history_pos = None;
        Some(q)
    }

    /// Up (`older`) or Down through the history.
    pub fn recall(&mut self, older: bool) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        self.history_pos = match (self.history_pos, older) {
            (None, true) => Some(last),
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i < last => Some(i + 1),
            (_, false) => None,
        };
        self.text = self
            .history_pos
            .map_or(String::new(), |i| self.history[i].clone());
        self.jump(true);
    }
}

/// The input pane: `> question` under a title with the next question's
/// settings.
pub struct InputPane<'a> {
    pub input: &'a InputState,
    pub forced: Option<StrategyKind>,
    /// The budget, in words.
    pub budget: String,
    pub focused: bool,
}

/// Columns before the typed text (border and prompt).
pub const TEXT_OFFSET: u16 = 3;

impl Widget for InputPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let strategy = self.forced.map_or("auto (router)", |k| k.name());
        let title = Line::from(vec![
            Span::raw(" question · strategy "),
            Span::styled(strategy, Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(" (F2) · budget {} (F4) · compare F3 ", self.budget)),
        ]);
        let border = if self.focused {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        };
        let block = Block::new()
            .borders(Borders::ALL)
            .border_style(border)
            .title(title);
        // Keep the cursor visible on a long question: show its tail.
        let width = area.width.saturating_sub(TEXT_OFFSET + 1) as usize;
        let skip = self.input.cursor.saturating_sub(width);
        let shown: String = self.input.text.chars().skip(skip).collect();
        Paragraph::new(Line::from(vec![
            Span::styled("> ", Style::new().fg(Color::Cyan)),
            Span::raw(shown),
        ]))
        .block(block)
        .render(area, buf);
    }
}

/// Where the terminal cursor goes inside the pane at `area`.
pub fn cursor_position(input: &InputState, area: Rect) -> (u16, u16) {
    let width = area.width.saturating_sub(TEXT_OFFSET + 1);
    let col = (input.cursor as u16).min(width);
    (area.x + TEXT_OFFSET + col, area.y + 1)
}
