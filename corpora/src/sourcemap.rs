//! Mapping offsets of a loaded document's text back to bytes of its source
//! file: the loaders normalise text (line endings, HTML markup, entities), so
//! a span of `text` is not a span of the file, and citations need the file.

use serde::{Deserialize, Serialize};

use crate::Span;

/// One run of text and the source bytes it came from. When both lengths are
/// equal the run was copied verbatim and maps byte for byte; otherwise it
/// replaced its source (an entity, a collapsed whitespace run, a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// Offset of the run in the normalised text.
    pub text_start: usize,
    /// Length of the run in the text, in bytes.
    pub text_len: usize,
    /// Offset in the source file of the bytes the run came from.
    pub source_start: usize,
    /// Length of those source bytes (equal to `text_len` for a verbatim run).
    pub source_len: usize,
}

impl Piece {
    fn verbatim(&self) -> bool {
        self.text_len == self.source_len
    }
}

/// Text offsets → source byte offsets for one document. Empty for sources
/// without byte positions (PDF text layers: cite pages instead).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMap {
    /// Runs in text order, contiguous and non-overlapping in the text.
    pub pieces: Vec<Piece>,
}

impl SourceMap {
    /// The source bytes that `span` of the text came from, or `None` when the
    /// source has no byte positions or the span is out of range.
    pub fn to_source(&self, span: Span) -> Option<Span> {
        if span.start > span.end {
            return None;
        }
        let start = self.map(span.start, false)?;
        let end = self.map(span.end, true)?;
        Some(Span {
            start,
            end: end.max(start),
        })
    }

    fn map(&self, offset: usize, is_end: bool) -> Option<usize> {
        let last = self.pieces.last()?;
        if offset >= last.text_start + last.text_len {
            return (offset == last.text_start + last.text_len)
                .then_some(last.source_start + last.source_len);
        }
        // The piece containing `offset` (for an end: containing offset-1).
        let probe = if is_end && offset > 0 {
            offset - 1
        } else {
            offset
        };
        let i = self
            .pieces
            .partition_point(|p| p.text_start + p.text_len <= probe);
        let p = self.pieces.get(i)?;
        let within = offset.checked_sub(p.text_start)?;
        Some(if p.verbatim() {
            p.source_start + within
        } else if is_end {
            p.source_start + p.source_len
        } else {
            p.source_start
        })
    }
}

/// Builds a normalised text and its [`SourceMap`] together, so a loader cannot
/// produce one without the other.
#[derive(Debug, Default)]
pub(crate) struct TextBuilder {
    pub text: String,
    pub map: SourceMap,
}

impl TextBuilder {
    /// Appends `s`, which is `source[source_start..source_start + s.len()]`.
    pub fn verbatim(&mut self, s: &str, source_start: usize) {
        if s.is_empty() {
            return;
        }
        let text_start = self.text.len();
        self.text.push_str(s);
        if let Some(last) = self.map.pieces.last_mut() {
            if last.verbatim()
                && last.text_start + last.text_len == text_start
                && last.source_start + last.source_len == source_start
            {
                last.text_len += s.len();
                last.source_len += s.len();
                return;
            }
        }
        self.push_piece(
            s.len(),
            Span {
                start: source_start,
                end: source_start + s.len(),
            },
        );
    }

    /// Appends `s`, which stands for the source bytes `source` (an entity, a
    /// whitespace run, a tag).
    pub fn replaced(&mut self, s: &str, source: Span) {
        if s.is_empty() {
            return;
        }
        self.text.push_str(s);
        self.push_piece(s.len(), source);
    }

    fn push_piece(&mut self, text_len: usize, source: Span) {
        self.map.pieces.push(Piece {
            text_start: self.text.len() - text_len,
            text_len,
            source_start: source.start,
            source_len: source.end - source.start,
        });
    }
}
