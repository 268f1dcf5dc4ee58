//! Helpers shared by retrieval's tests: a real corpus written to files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Writes `n` consecutive slices of the Jargon File (cut at entry
/// boundaries, about `bytes` each) as text files in `dir`.
pub fn jargon_files(dir: &Path, n: usize, bytes: usize) -> Vec<PathBuf> {
    let text = folio_corpora::bundled::jargon().text;
    let start = text.find("\n   :fork:").unwrap_or(0);
    let mut at = start;
    let mut out = Vec::new();
    for i in 0..n {
        let mut end = (at + bytes).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if let Some(next) = text[end..].find("\n   :") {
            end += next + 1;
        }
        let p = dir.join(format!("jargon-{i:03}.txt"));
        std::fs::write(&p, &text[at..end]).unwrap();
        out.push(p);
        at = end;
    }
    out
}
