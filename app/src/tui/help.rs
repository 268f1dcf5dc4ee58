//! The help overlay (F1): every key of the UI in one table, the same one
//! the README lists.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

/// Every key and what it does, in the order the help lists them.
pub const KEYS: &[(&str, &str)] = &[
    ("Enter", "ask the typed question"),
    ("↑ / ↓", "previous / next question from the history"),
    (
        "F2",
        "force a strategy for the next question: auto → rag → compress → full",
    ),
    (
        "F3",
        "compare: rag, compress and full side by side on the typed (or last) question",
    ),
    ("F4", "set the budget (latency, memory, prompt tokens)"),
    ("F5", "switch between the answer view and the compare view"),
    (
        "Tab / Shift-Tab",
        "next / previous evidence span in the evidence view",
    ),
    ("PgUp / PgDn", "scroll the trade-off card"),
    ("Esc", "cancel the running answer; close a window"),
    (
        "Ctrl-C",
        "cancel the running answer; quit when nothing runs",
    ),
    ("F1", "show or hide this help"),
    ("Ctrl-Q / F10", "quit"),
];

/// A `width` × `height` rectangle centred in `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The help window, drawn over the panes.
pub struct HelpOverlay;

impl Widget for HelpOverlay {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = centered(area, 100, KEYS.len() as u16 + 6);
        Clear.render(area, buf);
        let mut lines = vec![Line::raw("")];
        for (key, what) in KEYS {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {key:<17}"),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ]));
        }
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "  The card beside each answer says how it was read; the evidence view opens the source.",
        ));
        Paragraph::new(lines)
            .block(
                Block::new()
                    .borders(Borders::ALL)
                    .title(" keys (F1 or Esc closes) "),
            )
            .render(area, buf);
    }
}
