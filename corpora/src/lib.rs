//! Documents and the corpora bundled with folio.
//!
//! A [`Document`] is the unit everything else cites: its text is kept exactly
//! as loaded so that a [`Span`] (byte offsets) always points at the source.

pub mod bundled;
pub mod datasets;
pub mod fetch;

use serde::Serialize;

/// A document held in memory with a stable id and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    /// Stable identifier (file name or bundled name).
    pub id: String,
    /// Where the text came from: a path or `bundled:NAME`.
    pub source: String,
    pub text: String,
}

/// A byte range of a document: every chunk, dropped piece and piece of
/// evidence is a span, so it can always be shown in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The text this span covers in `doc`, if the offsets are valid for it.
    pub fn text<'a>(&self, doc: &'a Document) -> Option<&'a str> {
        doc.text.get(self.start..self.end)
    }
}

impl Document {
    /// Loads a UTF-8 text file as a document; the error names the file and
    /// what is wrong with it.
    pub fn from_path(path: &std::path::Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} is not UTF-8 text (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        if text.trim().is_empty() {
            anyhow::bail!("{} is empty", path.display());
        }
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(Self {
            id,
            source: path.display().to_string(),
            text,
        })
    }

    /// A sub-document covering `span`, keeping the source so its offsets can
    /// be mapped back (`span.start` is the shift).
    pub fn excerpt(&self, span: Span, id: impl Into<String>) -> Option<Document> {
        Some(Document {
            id: id.into(),
            source: format!("{}#{}-{}", self.source, span.start, span.end),
            text: span.text(self)?.to_string(),
        })
    }
}
