//! From a choice of kept words to the compressed text and the byte spans of
//! the source that were kept and dropped.

use folio_corpora::Span;

use super::units::Layout;

/// Joins kept pieces that a whole dropped sentence separates, so a reader
/// sees that something is missing there.
pub const GAP: &str = " … ";
/// Joins kept pieces of one sentence (or of neighbouring sentences) around
/// dropped words.
pub const JOIN: &str = " ";

/// The compressed text and the spans of the source behind it.
pub(crate) struct Assembly {
    pub text: String,
    pub kept: Vec<Span>,
    /// Where each kept span starts in `text`.
    pub kept_at: Vec<usize>,
    pub dropped: Vec<Span>,
}

/// The text itself, nothing dropped.
pub(crate) fn identity(text: &str) -> Assembly {
    Assembly {
        text: text.to_string(),
        kept: vec![Span {
            start: 0,
            end: text.len(),
        }],
        kept_at: vec![0],
        dropped: Vec::new(),
    }
}

/// Maximal runs of kept words become kept spans (verbatim source, inner
/// whitespace included), joined by [`GAP`] when a whole unit lies between
/// them and by [`JOIN`] otherwise; everything else is dropped.
pub(crate) fn assemble(text: &str, layout: &Layout, keep: &[bool]) -> Assembly {
    let mut kept: Vec<Span> = Vec::new();
    let mut kept_at = Vec::new();
    let mut out = String::new();
    let mut last_unit: Option<usize> = None;
    let mut i = 0;
    while i < layout.words.len() {
        if !keep[i] {
            i += 1;
            continue;
        }
        let first = i;
        while i + 1 < layout.words.len() && keep[i + 1] {
            i += 1;
        }
        let (a, b) = (&layout.words[first], &layout.words[i]);
        if let Some(prev) = last_unit {
            out.push_str(if a.unit > prev + 1 { GAP } else { JOIN });
        }
        kept_at.push(out.len());
        out.push_str(&text[a.span.start..b.span.end]);
        kept.push(Span {
            start: a.span.start,
            end: b.span.end,
        });
        last_unit = Some(b.unit);
        i += 1;
    }
    let dropped = complement(&kept, text.len());
    Assembly {
        text: out,
        kept,
        kept_at,
        dropped,
    }
}

/// The parts of `[0, len)` outside the `kept` spans (sorted by start; they
/// may overlap): what was dropped from what was kept, and back (the TUI's
/// coverage bar reads what a compressed answer saw this way).
pub fn complement(kept: &[Span], len: usize) -> Vec<Span> {
    let mut out = Vec::new();
    let mut at = 0;
    for s in kept {
        if s.start > at {
            out.push(Span {
                start: at,
                end: s.start,
            });
        }
        at = at.max(s.end);
    }
    if at < len {
        out.push(Span {
            start: at,
            end: len,
        });
    }
    out
}
