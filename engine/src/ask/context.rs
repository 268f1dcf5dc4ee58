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
    /// The text sent to the model as context.
    pub text: String,
    /// Where each document run of `text` came from, in order.
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
    /// A passage whose bytes are no longer in the document as it reads now
    /// (the file changed after it was indexed) is an error, never a slice
    /// out of range or inside a character.
    pub fn passages(corpus: &Corpus, passages: &[AssembledPassage]) -> anyhow::Result<Self> {
        let mut ctx = Self::default();
        for p in passages {
            let Some(doc) = corpus.doc_index(&p.path) else {
                continue;
            };
            let now = corpus.docs[doc].text.get(p.span.start..p.span.end);
            if now != Some(p.text.as_str()) {
                anyhow::bail!(
                    "{} changed after it was indexed (bytes {}..{} no longer hold the indexed \
                     passage); ingest it again (`folio ingest`), or ask again to re-index files",
                    p.path,
                    p.span.start,
                    p.span.end
                );
            }
            let header = format!("[{}]", file_name(&p.path));
            ctx.push(corpus, doc, p.span, Some(header));
        }
        Ok(ctx)
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

    /// The context of `text`, a copy of this context's `kept` spans, each
    /// placed at its `kept_at` offset of `text` (compression's output).
    pub fn kept_copy(&self, text: String, kept: &[Span], kept_at: &[usize]) -> Self {
        let mut parts = Vec::new();
        for (k, &at) in kept.iter().zip(kept_at) {
            for p in &self.parts {
                let len = p.doc_span.end - p.doc_span.start;
                let (a, b) = (p.context_start, p.context_start + len);
                let (s, e) = (k.start.max(a), k.end.min(b));
                if s < e {
                    let start = p.doc_span.start + (s - a);
                    parts.push(ReadPart {
                        doc: p.doc,
                        doc_span: Span {
                            start,
                            end: start + (e - s),
                        },
                        context_start: at + (s - k.start),
                    });
                }
            }
        }
        Self { text, parts }
    }

    /// The byte ranges of `text` copied from documents (headers and
    /// separators left out), in order.
    pub fn document_runs(&self) -> Vec<Span> {
        self.parts
            .iter()
            .map(|p| Span {
                start: p.context_start,
                end: p.context_start + (p.doc_span.end - p.doc_span.start),
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ask::corpus::CorpusDoc;

    fn passage(path: &str, start: usize, end: usize, text: &str) -> AssembledPassage {
        AssembledPassage {
            path: path.into(),
            span: Span { start, end },
            chunk_ids: vec![0],
            text: text.into(),
        }
    }

    /// A file edited after indexing: the index's spans may run past the new
    /// text or fall inside a character (here CJK, 3 bytes each). Each is an
    /// error naming the file, not a panic.
    #[test]
    fn passages_of_a_document_changed_since_indexing_are_an_error() {
        let corpus = Corpus::from_docs(vec![CorpusDoc {
            path: "/docs/a.txt".into(),
            text: "新しい文書です".into(),
        }]);
        for p in [
            passage("/docs/a.txt", 0, 400, "old text that was much longer"),
            passage("/docs/a.txt", 1, 4, "abc"),
            passage("/docs/a.txt", 0, 6, "old te"),
        ] {
            let err = Context::passages(&corpus, &[p]).unwrap_err().to_string();
            assert!(
                err.contains("/docs/a.txt changed after it was indexed"),
                "{err}"
            );
        }
        let same = passage("/docs/a.txt", 0, 6, "新し");
        let ctx = Context::passages(&corpus, &[same]).unwrap();
        assert!(ctx.text.ends_with("新し"));
    }

    /// Quotes may only come from the document runs: each run is its
    /// passage's text, the headers between them are in none.
    #[test]
    fn document_runs_hold_the_passages_and_not_the_headers() {
        let corpus = Corpus::from_docs(vec![
            CorpusDoc {
                path: "/docs/a.txt".into(),
                text: "Alpha one. Alpha two.".into(),
            },
            CorpusDoc {
                path: "/docs/b.txt".into(),
                text: "Beta one. Beta two.".into(),
            },
        ]);
        let ctx = Context::passages(
            &corpus,
            &[
                passage("/docs/a.txt", 11, 21, "Alpha two."),
                passage("/docs/b.txt", 0, 9, "Beta one."),
            ],
        )
        .unwrap();
        let runs: Vec<&str> = ctx
            .document_runs()
            .iter()
            .map(|r| &ctx.text[r.start..r.end])
            .collect();
        assert_eq!(runs, ["Alpha two.", "Beta one."]);
        assert!(ctx.text.contains("[a.txt]") && ctx.text.contains("[b.txt]"));
    }
}
