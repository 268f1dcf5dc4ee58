//! Documents and the corpora bundled with folio.
//!
//! A [`Document`] is the unit everything else cites. Loaders normalise text
//! (line endings, HTML markup) and keep a [`SourceMap`] so that a [`Span`] of
//! the text can always be shown at its bytes in the source file; PDFs, which
//! have no such bytes, cite pages. Headings are kept as [`Section`]s.

pub mod bundled;
pub mod contain;
pub mod datasets;
pub mod fetch;
mod html;
pub mod load;
pub mod memory;
pub mod mutate;
mod pdf;
pub mod peak_alloc;
pub mod sourcemap;
mod text;

use serde::{Deserialize, Serialize};

pub use load::{discover, load_bytes, load_path, read_bounded, LoadError, LoadOptions, Skipped};
pub use sourcemap::SourceMap;

/// A document held in memory with a stable id and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    /// Stable identifier (file name or bundled name).
    pub id: String,
    /// Where the text came from: a path or `bundled:NAME`.
    pub source: String,
    /// The normalised text; every span of folio is a byte range of it.
    pub text: String,
    /// How the source was read.
    pub format: Format,
    /// Sections under headings, in document order (empty without headings).
    pub sections: Vec<Section>,
    /// `text` offsets → source file bytes (empty for PDF).
    #[serde(skip)]
    pub source_map: SourceMap,
    /// The span of each PDF page in `text` (empty for other formats).
    pub pages: Vec<Span>,
}

/// The file formats folio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text (`.txt`, `.rst`, `.log`, `.csv`): line endings normalised, no sections.
    Text,
    /// Markdown: text as for `Text`, and ATX headings (`# Title`) become sections.
    Markdown,
    /// HTML: markup removed, entities decoded, headings become sections.
    Html,
    /// PDF: the text layer, cited by page rather than by source bytes.
    Pdf,
}

/// A part of a document under one heading: from the heading to the next
/// heading of any level. `path` is the heading and its ancestors, outermost
/// first, so a chunk can say where in the document it sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The heading and its ancestors, outermost first.
    pub path: Vec<String>,
    /// Heading level of this section, 1–6 (1 is outermost).
    pub level: u8,
    /// The bytes of the text from the heading to the next heading (or the end).
    pub span: Span,
}

/// A heading found by a loader: level 1–6, title, offset in the text.
#[derive(Debug, Clone)]
pub(crate) struct Heading {
    pub level: u8,
    pub title: String,
    pub start: usize,
}

/// Turns headings into sections with heading paths.
pub(crate) fn sections(headings: &[Heading], text_len: usize) -> Vec<Section> {
    let mut stack: Vec<(u8, String)> = Vec::new();
    let mut out = Vec::with_capacity(headings.len());
    for (i, h) in headings.iter().enumerate() {
        while stack.last().is_some_and(|(l, _)| *l >= h.level) {
            stack.pop();
        }
        stack.push((h.level, h.title.clone()));
        let end = headings.get(i + 1).map_or(text_len, |n| n.start);
        out.push(Section {
            path: stack.iter().map(|(_, t)| t.clone()).collect(),
            level: h.level,
            span: Span {
                start: h.start,
                end,
            },
        });
    }
    out
}

/// A byte range of a document: every chunk, dropped piece and piece of
/// evidence is a span, so it can always be shown in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First byte of the range, inclusive.
    pub start: usize,
    /// One past the last byte of the range (exclusive).
    pub end: usize,
}

impl Span {
    /// The text this span covers in `doc`, if the offsets are valid for it.
    pub fn text<'a>(&self, doc: &'a Document) -> Option<&'a str> {
        doc.text.get(self.start..self.end)
    }
}

impl Document {
    /// A plain-text document with no structure, for text made in memory.
    pub fn plain(id: impl Into<String>, source: impl Into<String>, text: String) -> Self {
        let len = text.len();
        Self {
            id: id.into(),
            source: source.into(),
            text,
            format: Format::Text,
            sections: Vec::new(),
            source_map: SourceMap {
                pieces: vec![sourcemap::Piece {
                    text_start: 0,
                    text_len: len,
                    source_start: 0,
                    source_len: len,
                }],
            },
            pages: Vec::new(),
        }
    }

    /// Loads a .txt, .md, .html or .pdf file (other extensions as UTF-8
    /// text); the error names the file and what is wrong with it.
    pub fn from_path(path: &std::path::Path) -> anyhow::Result<Self> {
        load_path(path, &LoadOptions::default()).map_err(|e| match e {
            LoadError::Io(msg) => anyhow::anyhow!("cannot read {}: {msg}", path.display()),
            e => anyhow::anyhow!("{} is {e}", path.display()),
        })
    }

    /// The heading path of the section containing byte `offset` (empty
    /// before the first heading).
    pub fn heading_path(&self, offset: usize) -> &[String] {
        let i = self.sections.partition_point(|s| s.span.start <= offset);
        match i.checked_sub(1).map(|i| &self.sections[i]) {
            Some(s) if offset < s.span.end || s.span.end == self.text.len() => &s.path,
            _ => &[],
        }
    }

    /// The 1-based PDF page containing byte `offset`, if this is a PDF.
    pub fn page_of(&self, offset: usize) -> Option<usize> {
        let i = self.pages.partition_point(|p| p.end < offset);
        (i < self.pages.len()).then_some(i + 1)
    }

    /// A sub-document covering `span`, keeping the source so its offsets can
    /// be mapped back (`span.start` is the shift).
    pub fn excerpt(&self, span: Span, id: impl Into<String>) -> Option<Document> {
        Some(Document::plain(
            id,
            format!("{}#{}-{}", self.source, span.start, span.end),
            span.text(self)?.to_string(),
        ))
    }
}
