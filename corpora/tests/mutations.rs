//! Bounded-time fuzzing of the document loaders: thousands of mutated copies
//! of real HTML, Markdown and PDF files. Each must load or fail with a
//! per-file error: no panic escapes, and no load holds more than its bound
//! of heap (a length field that claims 10^15 bytes must not be believed).

mod common;

use std::path::Path;

use folio_corpora::mutate::Mutator;
use folio_corpora::peak_alloc::PeakAlloc;
use folio_corpora::{load_bytes, Format, LoadOptions};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc::new();

/// Heap one load may hold at its peak: a generous multiple of the input,
/// far below what a believed bogus length would take.
fn bound(input: usize) -> usize {
    (64 << 20) + 64 * input
}

/// Loads `rounds` mutations of `seed_file` as `format`; returns how many
/// loaded (the rest were per-file errors).
fn fuzz(seed_file: &[u8], format: Format, rounds: usize, seed: u64) -> usize {
    let mut m = Mutator::new(seed);
    let mut loaded = 0;
    let name = Path::new(match format {
        Format::Html => "x.html",
        Format::Markdown => "x.md",
        Format::Pdf => "x.pdf",
        Format::Text => "x.txt",
    });
    for round in 0..rounds {
        let input = m.mutate(seed_file);
        HEAP.reset_peak();
        let before = HEAP.live();
        let result =
            std::panic::catch_unwind(|| load_bytes(name, &input, format, &LoadOptions::default()));
        let peak = HEAP.peak() - before.min(HEAP.peak());
        let Ok(result) = result else {
            panic!(
                "{format:?} round {round} (seed {seed}) panicked on {:?}",
                String::from_utf8_lossy(&input)
            );
        };
        assert!(
            peak <= bound(input.len()),
            "{format:?} round {round}: {peak} bytes of heap for {} bytes of input",
            input.len()
        );
        if let Ok(doc) = result {
            // What loaded is consistent: spans inside the text, on char
            // boundaries.
            for s in &doc.sections {
                assert!(s.span.end <= doc.text.len() && doc.text.is_char_boundary(s.span.start));
            }
            loaded += 1;
        }
    }
    loaded
}

#[test]
fn mutated_html_never_panics() {
    let html = br#"<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style>
<script>var x = "<p>not text</p>";</script></head><body><h1>Rust &amp; Safety</h1>
<p>Ownership rules prevent <b>data races</b> &eacute; &#x4e2d;&#25991; at compile time.</p>
<!-- a comment --><h2> Borrowing</h2><pre>  keep
  this </pre><ul><li>one</li><li>two</li></ul><table><tr><td>a</td></tr></table></body></html>"#;
    let loaded = fuzz(html, Format::Html, 3000, 1);
    assert!(
        loaded > 1000,
        "only {loaded} of 3000 loaded: the mutations are too harsh"
    );
}

#[test]
fn mutated_markdown_never_panics() {
    let md = "# Title\n\nSome text with *emphasis* and `code`.\n\n## Section — two\n\n- a list\n- 中文 item\n\n```\ncode # not a heading\n```\n\n### Deeper\nEnd.\r\n".as_bytes();
    let loaded = fuzz(md, Format::Markdown, 3000, 2);
    assert!(loaded > 1000, "only {loaded} of 3000 loaded");
}

#[test]
fn mutated_pdfs_never_panic() {
    let pdf = common::make_pdf(&["First page of text.", "Second page, more words."], false);
    // Fewer rounds: each parse is slower. Most mutations break the file;
    // what matters is that none escapes as a panic or a huge allocation.
    fuzz(&pdf, Format::Pdf, 1500, 3);
}
