//! The evidence view: opens the source document at each span the answer
//! cites, with the span highlighted in its surroundings, so a reader can
//! check the answer against the words it came from.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use folio_engine::ask::context::file_name;
use folio_engine::ask::{Answer, Evidence};

use super::state::DocInfo;

/// Bytes of source shown before and after a span (cut at line starts).
const CONTEXT_BYTES: usize = 320;

/// The evidence pane: the `selected` evidence span of `answer`.
pub struct EvidencePane<'a> {
    pub answer: Option<&'a Answer>,
    pub docs: &'a [DocInfo],
    pub selected: usize,
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The source around `start..end` of `text` as lines, the span styled
/// with `mark`: from the first line start within `CONTEXT_BYTES` before it
/// to the last line end within `CONTEXT_BYTES` after it.
pub fn source_lines(text: &str, start: usize, end: usize, mark: Style) -> Vec<Line<'static>> {
    let start = floor_boundary(text, start);
    let end = floor_boundary(text, end.max(start));
    let lo = floor_boundary(text, start.saturating_sub(CONTEXT_BYTES));
    let lo = match text[lo..start].find('\n') {
        Some(i) if lo > 0 => lo + i + 1,
        _ => lo,
    };
    let hi = floor_boundary(text, end + CONTEXT_BYTES);
    let hi = match text[end..hi].rfind('\n') {
        Some(i) if hi < text.len() => end + i,
        _ => hi,
    };
    let mut lines = vec![Line::default()];
    for (piece, style) in [
        (&text[lo..start], Style::new()),
        (&text[start..end], mark),
        (&text[end..hi], Style::new()),
    ] {
        for (i, part) in piece.split('\n').enumerate() {
            if i > 0 {
                lines.push(Line::default());
            }
            if !part.is_empty() {
                let last = lines.last_mut().expect("one line at least");
                last.spans.push(Span::styled(part.to_string(), style));
            }
        }
    }
    lines
}

/// What an answer cites, in the order the pane steps through: the
/// reader's own quote first (labelled so), then the sentences sharing the
/// answer's words.
fn cited(a: &Answer) -> Vec<(&'static str, Evidence)> {
    let s = &a.trade_offs.support;
    let quote = s.quote.iter().map(|q| {
        let label = if s.withheld_answer.is_some() {
            "closest passage"
        } else {
            "quote"
        };
        let e = Evidence {
            path: q.path.clone(),
            span: q.span,
            text: q.text.clone(),
            verified: q.verified,
            score: s.answerability.unwrap_or(0.0),
        };
        (label, e)
    });
    quote
        .chain(s.evidence.iter().map(|e| ("evidence", e.clone())))
        .collect()
}

fn header(e: &Evidence, i: usize, n: usize) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("[{}/{n}] {} ", i + 1, file_name(&e.path)),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("bytes {}–{} ", e.span.start, e.span.end)),
        if e.verified {
            Span::styled("(verified in the source)", Style::new().fg(Color::Green))
        } else {
            Span::styled(
                "(NOT found at these offsets)",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )
        },
    ])
}

impl Widget for EvidencePane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let dim = Style::new().fg(Color::DarkGray);
        let evidence = self.answer.map(cited).unwrap_or_default();
        let n = evidence.len();
        // The title names what is shown: the reader's quote, the closest
        // passage to a withheld answer, or a sentence sharing its words.
        let label = evidence
            .get(self.selected % n.max(1))
            .map_or("evidence", |(label, _)| *label);
        let title = if n > 1 {
            format!(" {label} {}/{n} (Tab: next) ", self.selected % n + 1)
        } else {
            format!(" {label} ")
        };
        let lines = match (self.answer, evidence.get(self.selected % n.max(1))) {
            (None, _) => vec![Line::styled(
                "The sources of an answer open here, the cited span highlighted.",
                dim,
            )],
            (Some(a), None) => vec![Line::styled(
                if a.trade_offs.support.not_found {
                    "No evidence: the text read does not support the answer."
                } else {
                    "No evidence: no sentence of what was read shares the answer's words."
                },
                dim,
            )],
            (Some(_), Some((_, e))) => {
                let mark = Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD);
                let mut lines = vec![header(e, self.selected % n, n), Line::raw("")];
                match self.docs.iter().find(|d| d.path == e.path) {
                    Some(d) => lines.extend(source_lines(&d.text, e.span.start, e.span.end, mark)),
                    None => lines.push(Line::styled(e.text.clone(), mark)),
                }
                lines
            }
        };
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(title))
            .render(area, buf);
    }
}
