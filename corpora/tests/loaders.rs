//! Loaders on real files written here: offsets map back to the source bytes,
//! headings become sections, bad files are per-file errors.

mod common;

use std::path::{Path, PathBuf};

use folio_corpora::{discover, load_path, Document, Format, LoadError, LoadOptions, Span};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Every occurrence of `needle` in the text maps to the same bytes in the
/// source file (for verbatim runs).
fn assert_maps_back(doc: &Document, source: &[u8], needle: &str) {
    let start = doc
        .text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let span = Span {
        start,
        end: start + needle.len(),
    };
    let src = doc.source_map.to_source(span).expect("mapped");
    assert_eq!(&source[src.start..src.end], needle.as_bytes(), "{needle}");
}

#[test]
fn text_normalises_line_endings_and_maps_offsets_back() {
    let dir = tempfile::tempdir().unwrap();
    let raw = "\u{feff}First line\r\nSecond\rline with caf\u{e9}\x07 bell\r\n".as_bytes();
    let p = write(dir.path(), "notes.txt", raw);
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    assert_eq!(doc.format, Format::Text);
    assert_eq!(doc.text, "First line\nSecond\nline with café bell\n");
    assert_maps_back(&doc, raw, "line with café");
    assert_maps_back(&doc, raw, " bell");
    let nl = doc.text.find('\n').unwrap();
    let src = doc
        .source_map
        .to_source(Span {
            start: nl,
            end: nl + 1,
        })
        .unwrap();
    assert_eq!(&raw[src.start..src.end], b"\r\n");
}

#[test]
fn markdown_headings_become_sections_with_paths() {
    let dir = tempfile::tempdir().unwrap();
    let md = "Intro text.\n\n# Guide\n\nSome words.\n\n## Install\n\nRun it.\n\n```\n# not a heading\n```\n\n## Use\n\nAsk.\n\n# Appendix\n\nEnd.\n";
    let p = write(dir.path(), "guide.md", md.as_bytes());
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    assert_eq!(doc.text, md);
    let paths: Vec<Vec<String>> = doc.sections.iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            vec!["Guide".to_string()],
            vec!["Guide".into(), "Install".into()],
            vec!["Guide".into(), "Use".into()],
            vec!["Appendix".into()],
        ]
    );
    assert!(doc.heading_path(0).is_empty());
    let run = doc.text.find("Run it").unwrap();
    assert_eq!(doc.heading_path(run), ["Guide", "Install"]);
    let end = doc.text.find("End.").unwrap();
    assert_eq!(doc.heading_path(end), ["Appendix"]);
    let last = doc.sections.last().unwrap();
    assert_eq!(last.span.end, doc.text.len());
}

#[test]
fn html_strips_markup_keeps_headings_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let html = r#"<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style>
<script>var x = "<p>not text</p>";</script></head>
<body><h1>Rust &amp; Safety</h1>
<p>Ownership   rules
 prevent <b>data races</b> at compile time.</p>
<!-- a comment -->
<h2> Borrowing</h2><p>References&nbsp;borrow; 3 &lt; 4 &#x2014; always.</p>
<ul><li>one</li><li>two</li></ul></body></html>"#;
    let p = write(dir.path(), "page.html", html.as_bytes());
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    assert_eq!(doc.format, Format::Html);
    assert_eq!(
        doc.text,
        "Rust & Safety\n\nOwnership rules prevent data races at compile time.\n\nBorrowing\n\nReferences borrow; 3 < 4 — always.\n\none\ntwo"
    );
    assert!(!doc.text.contains("not text") && !doc.text.contains("color"));
    let titles: Vec<_> = doc.sections.iter().map(|s| s.path.join(" > ")).collect();
    assert_eq!(titles, ["Rust & Safety", "Rust & Safety > Borrowing"]);
    assert_maps_back(&doc, html.as_bytes(), "data races");
    assert_maps_back(&doc, html.as_bytes(), "at compile time.");
    // A span across an entity maps to the whole entity in the source.
    let amp = doc.text.find('&').unwrap();
    let src = doc
        .source_map
        .to_source(Span {
            start: amp - 5,
            end: amp + 1,
        })
        .unwrap();
    assert_eq!(&html[src.start..src.end], "Rust &amp;");
    let refs = doc.text.find("References").unwrap();
    assert_eq!(doc.heading_path(refs), ["Rust & Safety", "Borrowing"]);
}

#[test]
fn pdf_text_layer_is_read_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = common::make_pdf(
        &[
            "The harbour opens at dawn.\nFerries leave hourly.",
            "Page two mentions the lighthouse keeper.",
        ],
        false,
    );
    let p = write(dir.path(), "report.pdf", &pdf);
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    assert_eq!(doc.format, Format::Pdf);
    assert_eq!(doc.pages.len(), 2);
    assert!(doc.text.contains("harbour opens at dawn"), "{:?}", doc.text);
    let keeper = doc.text.find("lighthouse keeper").expect("page 2 text");
    assert_eq!(doc.page_of(keeper), Some(2));
    assert_eq!(doc.page_of(doc.text.find("Ferries").unwrap()), Some(1));
    assert!(doc
        .source_map
        .to_source(Span { start: 0, end: 4 })
        .is_none());
}

#[test]
fn bad_files_are_per_file_errors_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "good.txt", b"A fine document about tides.");
    write(d, "empty.md", b"  \n\n ");
    write(d, "binary.txt", &[0x7f, b'E', b'L', b'F', 0, 1, 2, 3]);
    write(d, "latin1.txt", b"caf\xe9 au lait");
    write(
        d,
        "broken.pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage",
    );
    write(d, "locked.pdf", &common::make_pdf(&["secret"], true));
    write(d, "big.html", &vec![b'a'; 4096]);
    write(d, "ignored.bin", b"not walked");
    write(d, ".hidden.txt", b"not walked");
    let (files, skipped) = discover(&[d.to_path_buf(), d.join("missing.txt")]);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(files.len(), 7, "{files:?}");
    let opts = LoadOptions { max_bytes: 1024 };
    let mut errors = std::collections::BTreeMap::new();
    let mut loaded = Vec::new();
    for f in &files {
        match load_path(f, &opts) {
            Ok(doc) => loaded.push(doc.id),
            Err(e) => {
                errors.insert(f.file_name().unwrap().to_string_lossy().into_owned(), e);
            }
        }
    }
    assert_eq!(loaded, ["good.txt"]);
    assert!(matches!(errors["empty.md"], LoadError::Empty));
    assert!(matches!(errors["binary.txt"], LoadError::Binary(4)));
    assert!(matches!(errors["latin1.txt"], LoadError::NotUtf8(3)));
    assert!(matches!(errors["broken.pdf"], LoadError::BrokenPdf(_)));
    assert!(
        matches!(errors["locked.pdf"], LoadError::Encrypted),
        "{:?}",
        errors["locked.pdf"]
    );
    assert!(matches!(
        errors["big.html"],
        LoadError::TooLarge {
            size: 4096,
            limit: 1024
        }
    ));
    let msg = Document::from_path(&d.join("latin1.txt"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("latin1.txt is not UTF-8 text"), "{msg}");
}

/// Only regular files are read, and never past the size limit: a FIFO (no
/// writer: a blocking read would hang forever), `/dev/zero` (endless) and a
/// folder are refused at once, each with what it is.
#[test]
fn special_files_are_refused_without_blocking_or_reading_past_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let limits = LoadOptions { max_bytes: 1 << 20 };
    let started = std::time::Instant::now();
    let err = load_path(&fifo, &limits).unwrap_err();
    assert!(matches!(err, LoadError::NotRegular("a FIFO")), "{err}");
    let err = load_path(std::path::Path::new("/dev/zero"), &limits).unwrap_err();
    assert!(
        matches!(err, LoadError::NotRegular("a character device")),
        "{err}"
    );
    let err = folio_corpora::read_bounded(tmp.path(), 10).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(started.elapsed().as_secs() < 5, "a special file blocked");

    // A regular file over the limit is refused before it is read.
    let big = tmp.path().join("big.txt");
    std::fs::write(&big, "a".repeat(2000)).unwrap();
    let err = folio_corpora::read_bounded(&big, 1000).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::TooLarge {
                size: 2000,
                limit: 1000
            }
        ),
        "{err}"
    );
    assert_eq!(folio_corpora::read_bounded(&big, 2000).unwrap().len(), 2000);

    // A walk over the folder reports the FIFO as skipped; ingest goes on.
    std::fs::write(tmp.path().join("ok.txt"), "Plain words.").unwrap();
    let (files, _) = discover(&[tmp.path().to_path_buf()]);
    let loaded: Vec<_> = files
        .iter()
        .map(|f| load_path(f, &limits).is_ok())
        .collect();
    assert_eq!(loaded.iter().filter(|ok| **ok).count(), 2, "{files:?}");
}

/// Text after character references keeps its offsets, every named
/// reference is decoded (not only a hand-picked few), CJK text next to a
/// bare `&` is not cut inside a character, and megabytes of `<style>`
/// elements load in one linear pass (they took 27 s with the old scanner).
#[test]
fn html_references_unicode_and_many_style_elements() {
    let dir = tempfile::tempdir().unwrap();
    let html = "<p>Caf&eacute; &amp; cr&egrave;me &#x4e2d;&文 &bogus; fin</p>";
    let p = write(dir.path(), "refs.html", html.as_bytes());
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    assert_eq!(doc.text, "Café & crème 中&文 &bogus; fin");
    assert_maps_back(&doc, html.as_bytes(), "&bogus; fin");
    let e = doc.text.find('é').unwrap();
    let src = doc
        .source_map
        .to_source(Span {
            start: e,
            end: e + 'é'.len_utf8(),
        })
        .unwrap();
    assert_eq!(&html[src.start..src.end], "&eacute;");

    let mut big = String::from("<html><body>");
    while big.len() < 2_500_000 {
        big += "<style>p { color: red } /* <p>not text</p> */</style>";
    }
    big += "<p>after the styles</p></body></html>";
    let p = write(dir.path(), "styles.html", big.as_bytes());
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    assert_eq!(doc.text, "after the styles");
}
