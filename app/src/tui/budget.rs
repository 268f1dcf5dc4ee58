//! Budgets in the UI: the values the next question runs with (as typed,
//! parsed by the same functions as `folio ask`'s flags) and the F4 editor.

use anyhow::{Context, Result};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use folio_engine::router::Budget;

use crate::cli::convert::{parse_bytes, parse_seconds};
use crate::output::human_bytes;

/// The budget as typed: latency, memory (`auto`: what is available when a
/// question is asked) and prompt tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetState {
    pub latency: String,
    pub memory: String,
    pub tokens: String,
}

impl Default for BudgetState {
    fn default() -> Self {
        Self {
            latency: "60s".into(),
            memory: "auto".into(),
            tokens: "none".into(),
        }
    }
}

/// Field names, in the editor's order.
pub const FIELDS: [&str; 3] = ["latency", "memory", "tokens"];

impl BudgetState {
    /// The router's budget; memory `auto` reads what is available now.
    pub fn parse(&self) -> Result<Budget> {
        let memory = match self.memory.trim() {
            "auto" | "" => Some(folio_engine::calibrate::memory()?.1).filter(|b| *b > 0),
            m => parse_bytes(m)?,
        };
        Ok(Budget {
            latency_s: parse_seconds(&self.latency)?,
            memory_bytes: memory,
            context_tokens: match self.tokens.trim() {
                "none" => None,
                n => Some(n.parse().with_context(|| {
                    format!("tokens {n:?} is not a number of tokens (or `none`)")
                })?),
            },
        })
    }

    /// One line for the input pane's title.
    pub fn describe(&self) -> String {
        let memory = match self.memory.trim() {
            "auto" | "" => "auto".to_string(),
            m => parse_bytes(m)
                .ok()
                .flatten()
                .map_or(m.to_string(), human_bytes),
        };
        format!(
            "latency {} · memory {} · tokens {}",
            self.latency.trim(),
            memory,
            self.tokens.trim()
        )
    }

    fn fields(&self) -> [String; 3] {
        [
            self.latency.clone(),
            self.memory.clone(),
            self.tokens.clone(),
        ]
    }
}

/// The F4 editor: three text fields, one focused, and the last parse error.
#[derive(Debug, Clone, Default)]
pub struct BudgetEditor {
    pub values: [String; 3],
    pub focus: usize,
    pub error: Option<String>,
}

impl BudgetEditor {
    /// An editor holding `current`.
    pub fn open(current: &BudgetState) -> Self {
        Self {
            values: current.fields(),
            ..Default::default()
        }
    }

    /// Typed text into the focused field.
    pub fn insert(&mut self, c: char) {
        self.values[self.focus].push(c);
    }

    /// Deletes the focused field's last character.
    pub fn backspace(&mut self) {
        self.values[self.focus].pop();
    }

    /// Focus the next (`forward`) or previous field.
    pub fn cycle(&mut self, forward: bool) {
        self.focus = (self.focus + if forward { 1 } else { 2 }) % 3;
    }

    /// The edited budget if it parses; else the error is kept for display.
    pub fn apply(&mut self) -> Option<BudgetState> {
        let [latency, memory, tokens] = self.values.clone();
        let state = BudgetState {
            latency,
            memory,
            tokens,
        };
        match state.parse() {
            Ok(_) => Some(state),
            Err(e) => {
                self.error = Some(format!("{e:#}"));
                None
            }
        }
    }
}

/// The editor drawn as a centred window.
pub struct BudgetOverlay<'a>(pub &'a BudgetEditor);

impl Widget for BudgetOverlay<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = super::help::centered(area, 64, 12);
        Clear.render(area, buf);
        let mut lines = vec![Line::raw("")];
        for (i, name) in FIELDS.iter().enumerate() {
            let style = if i == self.0.focus {
                Style::new().fg(Color::Black).bg(Color::Cyan)
            } else {
                Style::new()
            };
            lines.push(Line::from(vec![
                Span::raw(format!("  {name:<9}")),
                Span::styled(format!("{:<24}", self.0.values[i]), style),
            ]));
        }
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "  latency: 30s, 2m, none · memory: 4GiB, auto · tokens: 4096, none",
        ));
        lines.push(Line::raw("  Tab/↑↓ field · Enter apply · Esc discard"));
        if let Some(e) = &self.0.error {
            lines.push(Line::styled(
                format!("  {e}"),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" budget "))
            .render(area, buf);
    }
}
