//! The screen's layout: which pane goes where, the status bar, overlays and
//! the cursor. Drawing is a pure function of `App`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::answer_pane::{AnswerPane, SPINNER};
use super::budget::BudgetOverlay;
use super::card_pane::CardPane;
use super::compare::ComparePane;
use super::corpus::CorpusPane;
use super::evidence::EvidencePane;
use super::help::HelpOverlay;
use super::input::{cursor_position, InputPane};
use super::state::{App, Overlay, View};

/// The areas of the screen: corpus, answer, evidence, card, input, status.
pub struct Areas {
    pub corpus: Rect,
    pub answer: Rect,
    pub evidence: Rect,
    pub card: Rect,
    /// Answer, evidence and card together (the compare view's area).
    pub right: Rect,
    pub input: Rect,
    pub status: Rect,
}

/// Splits `area` into the panes.
pub fn areas(area: Rect) -> Areas {
    let [main, input, status] = Layout::vertical([
        Constraint::Min(8),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let [corpus, right] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(20)]).areas(main);
    let [middle, card] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
    let [answer, evidence] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    Areas {
        corpus,
        answer,
        evidence,
        card,
        right,
        input,
        status,
    }
}

/// The status bar: spinner and what the worker does, or the last error,
/// with the main keys at the right.
pub fn status_line(app: &App) -> Line<'static> {
    let mut spans = Vec::new();
    if app.status.busy {
        spans.push(Span::styled(
            format!("{} ", SPINNER[app.tick % SPINNER.len()]),
            Style::new().fg(Color::Cyan),
        ));
    }
    spans.push(Span::raw(app.status.text.clone()));
    if let Some(e) = &app.status.error {
        spans.push(Span::styled(
            format!("  error: {e}"),
            Style::new().fg(Color::Red),
        ));
    }
    spans.push(Span::styled(
        "  · F1 help · Ctrl-Q quit",
        Style::new().fg(Color::DarkGray),
    ));
    Line::from(spans)
}

/// Draws the whole screen from `app`.
pub fn draw(frame: &mut Frame, app: &App) {
    let a = areas(frame.area());
    frame.render_widget(CorpusPane(&app.corpus), a.corpus);
    match (&app.view, &app.compare) {
        (View::Compare, Some(c)) => frame.render_widget(
            ComparePane {
                state: c,
                tick: app.tick,
            },
            a.right,
        ),
        _ => {
            frame.render_widget(
                AnswerPane {
                    state: &app.answer,
                    tick: app.tick,
                    title: " answer ",
                },
                a.answer,
            );
            frame.render_widget(
                EvidencePane {
                    answer: app.shown_answer(),
                    docs: &app.corpus.docs,
                    selected: app.evidence,
                },
                a.evidence,
            );
            frame.render_widget(
                CardPane {
                    answer: app.shown_answer(),
                    docs: &app.corpus.docs,
                    scroll: app.card_scroll,
                },
                a.card,
            );
        }
    }
    frame.render_widget(
        InputPane {
            input: &app.input,
            forced: app.forced,
            budget: app.budget.describe(),
            focused: matches!(app.overlay, Overlay::None),
        },
        a.input,
    );
    frame.render_widget(Paragraph::new(status_line(app)), a.status);
    match &app.overlay {
        Overlay::None => {
            let (x, y) = cursor_position(&app.input, a.input);
            frame.set_cursor_position((x, y));
        }
        Overlay::Help => frame.render_widget(HelpOverlay, frame.area()),
        Overlay::Budget(e) => frame.render_widget(BudgetOverlay(e), frame.area()),
    }
}
