//! The chunker with the real MiniLM tokenizer on real text.

use folio_corpora::{load_path, LoadOptions};
use folio_retrieval::chunk::sentences;
use folio_retrieval::{models, Chunker, ChunkerConfig};

fn chunker(max: usize, overlap: usize) -> Chunker {
    let tok = models::path(&models::MINILM_TOKENIZER, false).expect("tokenizer fetched");
    Chunker::from_file(
        &tok,
        ChunkerConfig {
            max_tokens: max,
            overlap_tokens: overlap,
        },
    )
    .unwrap()
}

#[test]
fn sentences_split_at_ends_and_blank_lines() {
    let text =
        "Dr. Smith arrived. \"Who?\" she asked.\n\nA new paragraph (really) ends here! 3 cats.";
    let spans = sentences(
        text,
        folio_corpora::Span {
            start: 0,
            end: text.len(),
        },
    );
    let parts: Vec<&str> = spans.iter().map(|s| &text[s.start..s.end]).collect();
    assert_eq!(
        parts,
        [
            "Dr. Smith arrived.",
            "\"Who?\" she asked.",
            "A new paragraph (really) ends here!",
            "3 cats."
        ]
    );
}

#[test]
fn chunks_respect_size_overlap_and_sections() {
    let dir = tempfile::tempdir().unwrap();
    let jargon = folio_corpora::bundled::jargon().text;
    let body = &jargon[jargon.find("\n   :fork:").unwrap()..][..12_000];
    let md = format!("# Lexicon\n\n## F entries\n\n{body}\n\n## Short\n\nOne sentence only.\n");
    let p = dir.path().join("lexicon.md");
    std::fs::write(&p, &md).unwrap();
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    let c = chunker(120, 30);
    let chunks = c.chunk(&doc).unwrap();
    assert!(chunks.len() > 10, "{} chunks", chunks.len());
    for ch in &chunks {
        let text = &doc.text[ch.span.start..ch.span.end];
        let real = c.count(text).unwrap();
        assert!(ch.tokens <= 120, "{} tokens", ch.tokens);
        // Token counts per sentence add up to about the whole (word pieces
        // at sentence joins may differ by a few).
        assert!(real <= 130, "chunk of {real} tokens: {text:?}");
        assert_eq!(text, text.trim(), "chunks are trimmed");
    }
    let f_chunks: Vec<_> = chunks
        .iter()
        .filter(|c| c.heading_path == ["Lexicon", "F entries"])
        .collect();
    assert!(f_chunks.len() > 8);
    // Consecutive chunks of a section overlap (sentences repeated) or touch.
    let overlapping = f_chunks
        .windows(2)
        .filter(|w| w[1].span.start < w[0].span.end)
        .count();
    assert!(
        overlapping * 2 >= f_chunks.len() - 1,
        "{overlapping} overlaps"
    );
    // Every byte of non-whitespace text is in some chunk.
    let mut covered = vec![false; doc.text.len()];
    for ch in &chunks {
        covered[ch.span.start..ch.span.end].fill(true);
    }
    for (i, b) in doc.text.bytes().enumerate() {
        assert!(
            covered[i] || b.is_ascii_whitespace(),
            "byte {i} not covered"
        );
    }
    let last = chunks.last().unwrap();
    assert_eq!(last.heading_path, ["Lexicon", "Short"]);
    assert_eq!(
        &doc.text[last.span.start..last.span.end],
        "## Short\n\nOne sentence only."
    );
    assert!(last.index_text(&doc.text).starts_with("## Short"));
    let mid = &f_chunks[3];
    assert!(mid
        .index_text(&doc.text)
        .starts_with("Lexicon > F entries\n"));
}

#[test]
fn a_sentence_longer_than_a_chunk_is_cut_at_token_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<String> = (0..400)
        .map(|i| format!("word{}", i * 7919 % 1000))
        .collect();
    let p = dir.path().join("long.txt");
    std::fs::write(&p, words.join(" ")).unwrap();
    let doc = load_path(&p, &LoadOptions::default()).unwrap();
    let c = chunker(64, 16);
    let chunks = c.chunk(&doc).unwrap();
    assert!(chunks.len() >= 6);
    for w in chunks.windows(2) {
        assert_eq!(w[0].span.end, w[1].span.start);
    }
    for ch in &chunks {
        assert!(ch.tokens <= 64);
        assert!(c.count(&doc.text[ch.span.start..ch.span.end]).unwrap() <= 66);
    }
    assert_eq!(chunks.last().unwrap().span.end, doc.text.len());
}

#[global_allocator]
static HEAP: folio_corpora::peak_alloc::PeakAlloc = folio_corpora::peak_alloc::PeakAlloc::new();

/// Chunking holds a bounded multiple of the text, not the tokenizer's
/// per-token records for all of it at once (a 50 MB text took 1.3 GB to
/// ingest when every sentence was encoded in one batch).
#[test]
fn chunking_a_large_text_holds_little_more_than_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let jargon = folio_corpora::bundled::jargon().text;
    let mut text = String::new();
    while text.len() < 6 << 20 {
        text += &jargon;
    }
    let path = dir.path().join("big.txt");
    std::fs::write(&path, &text).unwrap();
    let doc = load_path(&path, &LoadOptions::default()).unwrap();
    drop(text);
    let c = chunker(200, 40);
    HEAP.reset_peak();
    let before = HEAP.live();
    let chunks = c.chunk(&doc).unwrap();
    let peak = HEAP.peak() - before;
    assert!(chunks.len() > 5000);
    eprintln!(
        "{} MB of text, {} MB peak heap while chunking",
        doc.text.len() >> 20,
        peak >> 20
    );
    assert!(
        peak < 2 * doc.text.len(),
        "chunking {} bytes held {peak} bytes at its peak",
        doc.text.len()
    );
}
