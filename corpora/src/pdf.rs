//! PDF text layers, page by page, through pdf-extract. A PDF has no byte
//! positions for its text, so its documents cite pages (`Document::pages`).

use crate::load::LoadError;
use crate::Span;

/// The text of each page of the PDF in `bytes`. Encrypted files (other than
/// with the empty user password), files without a parsable structure and
/// files that make the extractor panic are errors, never a crash.
pub(crate) fn pages(bytes: &[u8]) -> Result<Vec<String>, LoadError> {
    crate::contain::catch(|| extract(bytes)).unwrap_or_else(|msg| Err(LoadError::BrokenPdf(msg)))
}

fn extract(bytes: &[u8]) -> Result<Vec<String>, LoadError> {
    use pdf_extract::{output_doc_page, Document, PlainTextOutput};
    let mut doc = Document::load_mem(bytes).map_err(|e| LoadError::BrokenPdf(e.to_string()))?;
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(LoadError::Encrypted);
    }
    let n = doc.get_pages().len() as u32;
    if n == 0 {
        return Err(LoadError::BrokenPdf("no pages".into()));
    }
    let mut pages = Vec::with_capacity(n as usize);
    for page in 1..=n {
        let mut text = String::new();
        output_doc_page(&doc, &mut PlainTextOutput::new(&mut text), page)
            .map_err(|e| LoadError::BrokenPdf(format!("page {page}: {e}")))?;
        pages.push(text);
    }
    Ok(pages)
}

/// Joins page texts into one normalised text (trailing spaces trimmed, runs
/// of blank lines collapsed, pages separated by a blank line) and returns the
/// span of each page in it.
pub(crate) fn join(pages: &[String]) -> (String, Vec<Span>) {
    let mut text = String::new();
    let mut spans = Vec::with_capacity(pages.len());
    for page in pages {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        let start = text.len();
        let mut blank = 0;
        for line in page.lines() {
            let line = line.trim_end();
            if line.trim().is_empty() {
                blank += 1;
                continue;
            }
            if text.len() > start {
                text.push_str(if blank > 0 { "\n\n" } else { "\n" });
            }
            blank = 0;
            text.extend(line.chars().filter(|c| !c.is_control() || *c == '\t'));
        }
        spans.push(Span {
            start,
            end: text.len(),
        });
    }
    (text, spans)
}
