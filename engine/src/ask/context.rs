//! The text a strategy sends to the model, and where each byte of it came
//! from, so evidence and dropped spans point back into the documents.

use folio_corpora::Span;
use folio_retrieval::store::search::AssembledPassage;

use super::corpus::Corpus;

/// A run of context text copied from one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPart {
    /// Index into [`Corpus::docs`].
    pub doc: usize,
    /// The bytes of the document it copies.
    pub doc_span: Span,
    /// Where the copy starts in the context text.
    pub context_start: usize,
}

/// Context text with its provenance. Headers between parts name the file
/// and are not part of any document.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub text: String,
    pub parts: Vec<ReadPart>,
}

impl Context {
    fn push(&mut self, corpus: &Corpus, doc: usize, span: Span, header: Option<String>) {
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        if let Some(h) = header {
            self.text.push_str(&h);
            self.text.push('\n');
        }
        self.parts.push(ReadPart {
            doc,
            doc_span: span,
            context_start: self.text.len(),
        });
        self.text
            .push_str(&corpus.docs[doc].text[span.start..span.end]);
    }

    /// Every document whole, in corpus order; file names head each when
    /// there are several.
    pub fn full(corpus: &Corpus) -> Self {
        let mut ctx = Self::default();
        let many = corpus.docs.len() > 1;
        for (i, d) in corpus.docs.iter().enumerate() {
            let header = many.then(|| format!("[{}]", file_name(&d.path)));
            ctx.push(
                corpus,
                i,
                Span {
                    start: 0,
                    end: d.text.len(),
                },
                header,
            );
        }
        ctx
    }

    /// Retrieved passages in document order, each headed by its file.
    pub fn passages(corpus: &Corpus, passages: &[AssembledPassage]) -> Self {
        let mut ctx = Self::default();
        for p in passages {
            let Some(doc) = corpus.doc_index(&p.path) else {
                continue;
            };
            let header = format!("[{}]", file_name(&p.path));
            ctx.push(corpus, doc, p.span, Some(header));
        }
        ctx
    }

    /// The document bytes a context span covers, split per part (headers
    /// and separators dropped).
    pub fn to_docs(&self, span: Span) -> Vec<(usize, Span)> {
        let mut out = Vec::new();
        for p in &self.parts {
            let len = p.doc_span.end - p.doc_span.start;
            let (a, b) = (p.context_start, p.context_start + len);
            let (s, e) = (span.start.max(a), span.end.min(b));
            if s < e {
                let start = p.doc_span.start + (s - a);
                out.push((
                    p.doc,
                    Span {
                        start,
                        end: start + (e - s),
                    },
                ));
            }
        }
        out
    }

    /// The document regions this context copies, in order.
    pub fn regions(&self) -> Vec<(usize, Span)> {
        self.parts.iter().map(|p| (p.doc, p.doc_span)).collect()
    }
}

/// The last component of a path, for headers and cards.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
