//! Plain text and Markdown: normalised line endings and control characters,
//! Markdown's ATX headings (`# Title`) kept as sections.

use crate::sourcemap::TextBuilder;
use crate::Heading;

/// Normalises `src` into `out`: drops a leading BOM, turns CRLF and lone CR
/// into LF, and drops control characters other than tab, newline and form
/// feed. Everything else is copied verbatim, so most files map one to one.
pub(crate) fn normalize_into(src: &str, base: usize, out: &mut TextBuilder) {
    let mut run_start = 0;
    let bytes = src.as_bytes();
    let mut i = 0;
    if src.starts_with('\u{feff}') {
        i = 3;
        run_start = 3;
    }
    while i < src.len() {
        let c = src[i..].chars().next().expect("in bounds");
        let len = c.len_utf8();
        let keep = !c.is_control() || matches!(c, '\n' | '\t' | '\x0c');
        if keep {
            i += len;
            continue;
        }
        out.verbatim(&src[run_start..i], base + run_start);
        if c == '\r' {
            let crlf = bytes.get(i + 1) == Some(&b'\n');
            let n = if crlf { 2 } else { 1 };
            out.replaced(
                "\n",
                crate::Span {
                    start: base + i,
                    end: base + i + n,
                },
            );
            i += n;
        } else {
            i += len;
        }
        run_start = i;
    }
    out.verbatim(&src[run_start..], base + run_start);
}

/// ATX headings of a normalised Markdown text, outside fenced code blocks:
/// (level, title, byte offset of the heading line).
pub(crate) fn markdown_headings(text: &str) -> Vec<Heading> {
    let mut headings = Vec::new();
    let mut fence: Option<&str> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start_matches(' ');
        if line.len() - trimmed.len() > 3 {
            continue;
        }
        let trimmed = trimmed.trim_end();
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                fence = match fence {
                    Some(open) if open == marker => None,
                    None => Some(marker),
                    other => other,
                };
            }
        }
        if fence.is_some() || trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            continue;
        }
        let level = trimmed.bytes().take_while(|&b| b == b'#').count();
        if !(1..=6).contains(&level) {
            continue;
        }
        let rest = &trimmed[level..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            continue;
        }
        let title = rest.trim().trim_end_matches('#').trim();
        if !title.is_empty() {
            headings.push(Heading {
                level: level as u8,
                title: title.to_string(),
                start,
            });
        }
    }
    headings
}
