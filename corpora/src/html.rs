//! HTML to text: markup stripped, scripts and styles dropped, entities
//! decoded, whitespace collapsed, block elements turned into line breaks and
//! `<h1>`–`<h6>` kept as sections. Every piece of text keeps its byte offsets
//! in the source file. Tokenizing is html5gum's (WHATWG, linear, every named
//! character reference); this module only decides what the tokens mean.

use html5gum::{DefaultEmitter, Token, Tokenizer};

use crate::sourcemap::TextBuilder;
use crate::{Heading, Span};

/// Elements whose content is never text.
const SKIPPED: &[&str] = &["script", "style", "noscript", "template", "svg", "head"];
/// Elements that start and end a paragraph.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "ul",
    "ol",
    "table",
    "blockquote",
    "pre",
    "figure",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "dl",
    "body",
    "html",
    "title",
];
/// Elements that end a line.
const LINES: &[&str] = &["br", "li", "tr", "dt", "dd", "td", "th", "caption"];

struct State<'a> {
    src: &'a str,
    out: TextBuilder,
    /// Line breaks owed before the next text (1 = line, 2 = paragraph).
    pending_break: u8,
    /// A whitespace run owed before the next text, with its source span.
    pending_space: Option<Span>,
    pre: usize,
    heading: Option<(u8, usize, String)>,
    headings: Vec<Heading>,
}

/// Converts HTML `src` into text, its source map and its headings.
///
/// html5gum (a WHATWG tokenizer, linear in the input) finds the tags,
/// comments and text runs with their byte spans and decodes character
/// references; this module decides what is text and where the breaks go.
pub(crate) fn to_text(src: &str) -> (TextBuilder, Vec<Heading>) {
    let mut st = State {
        src,
        out: TextBuilder::default(),
        pending_break: 0,
        pending_space: None,
        pre: 0,
        heading: None,
        headings: Vec::new(),
    };
    let mut emitter = DefaultEmitter::<usize>::new_with_span();
    // Script, style and the like hold raw text, not tags: the tokenizer
    // switches state on their start tags as a browser's tree builder would.
    emitter.naively_switch_states(true);
    // Inside an element whose content is never text: its name.
    let mut skipping: Option<Vec<u8>> = None;
    for token in Tokenizer::new_with_emitter(src, emitter) {
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => {
                let name = tag.name.to_ascii_lowercase();
                if skipping.is_some() {
                    continue;
                }
                if !tag.self_closing && SKIPPED.iter().any(|s| s.as_bytes() == name.as_slice()) {
                    skipping = Some(name);
                    continue;
                }
                st.element(&name, false, span_of(tag.span));
            }
            Token::EndTag(tag) => {
                let name = tag.name.to_ascii_lowercase();
                match &skipping {
                    Some(open) if *open == name => skipping = None,
                    Some(_) => {}
                    None => st.element(&name, true, span_of(tag.span)),
                }
            }
            Token::String(text) if skipping.is_none() => {
                st.text_run(text.span.start, text.span.end, &text.value);
            }
            _ => {}
        }
    }
    if let Some((level, start, title)) = st.heading.take() {
        push_heading(&mut st.headings, level, start, &title);
    }
    (st.out, st.headings)
}

fn span_of(s: html5gum::Span<usize>) -> Span {
    Span {
        start: s.start,
        end: s.end,
    }
}

fn push_heading(headings: &mut Vec<Heading>, level: u8, start: usize, title: &str) {
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if !title.is_empty() {
        headings.push(Heading {
            level,
            title,
            start,
        });
    }
}

/// A piece of a text run's source: copied as it is, or a character
/// reference (`&amp;`, `&#233;`) that the tokenizer decoded.
enum Piece {
    Verbatim(usize, usize),
    Reference(usize, usize),
}

/// Splits `src[start..end]` at its character references (`&` then letters,
/// digits or `#`, up to an optional `;`).
fn pieces(src: &str, start: usize, end: usize) -> Vec<Piece> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut from = start;
    let mut i = start;
    while i < end {
        if bytes[i] != b'&' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < end && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'#') {
            j += 1;
        }
        if j == i + 1 {
            i += 1;
            continue;
        }
        if j < end && bytes[j] == b';' {
            j += 1;
        }
        if from < i {
            out.push(Piece::Verbatim(from, i));
        }
        out.push(Piece::Reference(i, j));
        from = j;
        i = j;
    }
    if from < end {
        out.push(Piece::Verbatim(from, end));
    }
    out
}

impl State<'_> {
    /// An element's start or end tag at `tag`: breaks, `<pre>`, headings.
    fn element(&mut self, name: &[u8], closing: bool, tag: Span) {
        let name = std::str::from_utf8(name).unwrap_or("");
        let level = heading_level(name);
        if BLOCKS.contains(&name) {
            self.pending_break = 2;
            self.pending_space = None;
        } else if LINES.contains(&name) {
            self.pending_break = self.pending_break.max(1);
            self.pending_space = None;
        }
        if name == "pre" {
            self.pre = if closing {
                self.pre.saturating_sub(1)
            } else {
                self.pre + 1
            };
        }
        if let Some(level) = level {
            if closing {
                if let Some((l, start, title)) = self.heading.take() {
                    push_heading(&mut self.headings, l, start, &title);
                }
            } else {
                self.flush_break(tag);
                self.heading = Some((level, self.out.text.len(), String::new()));
            }
        }
    }

    fn flush_break(&mut self, at: Span) {
        if self.out.text.is_empty() {
            self.pending_break = 0;
            return;
        }
        let br = match self.pending_break {
            0 => return,
            1 => "\n",
            _ => "\n\n",
        };
        self.pending_break = 0;
        self.out.replaced(
            br,
            Span {
                start: at.start,
                end: at.start,
            },
        );
    }

    /// A text run: its source `src[start..end]` and the tokenizer's decoded
    /// text. Copied pieces keep their own offsets; each decoded reference
    /// maps to the reference's bytes. Where the two cannot be aligned (the
    /// tokenizer read a reference differently), the run maps as a whole.
    fn text_run(&mut self, start: usize, end: usize, decoded: &[u8]) {
        let Ok(decoded) = std::str::from_utf8(decoded) else {
            return;
        };
        if self.src.get(start..end) == Some(decoded) {
            self.raw(start, end);
            return;
        }
        let pieces = pieces(self.src, start, end);
        let mut at = 0;
        let mut plan = Vec::with_capacity(pieces.len());
        for (k, piece) in pieces.iter().enumerate() {
            match *piece {
                Piece::Verbatim(a, b) => {
                    if !decoded[at..].starts_with(&self.src[a..b]) {
                        plan.clear();
                        break;
                    }
                    plan.push((a, b, None));
                    at += b - a;
                }
                Piece::Reference(a, b) => {
                    // The decoded text runs to where the next copied piece
                    // starts (or to the end).
                    let len = match pieces.get(k + 1) {
                        Some(&Piece::Verbatim(c, d)) => decoded[at..].find(&self.src[c..d]),
                        Some(&Piece::Reference(..)) => decoded[at..]
                            .char_indices()
                            .nth(1)
                            .map(|(i, _)| i)
                            .or(Some(decoded.len() - at)),
                        None => Some(decoded.len() - at),
                    };
                    let Some(len) = len else {
                        plan.clear();
                        break;
                    };
                    plan.push((a, b, Some(at..at + len)));
                    at += len;
                }
            }
        }
        if plan.is_empty() || at != decoded.len() {
            self.replaced_text(decoded, Span { start, end });
            return;
        }
        for (a, b, text) in plan {
            match text {
                None => self.raw(a, b),
                Some(range) => self.replaced_text(&decoded[range], Span { start: a, end: b }),
            }
        }
    }

    /// Text decoded from `source` (a reference, or a run that could not be
    /// aligned): whitespace collapsed outside `<pre>`, every character
    /// mapped to the whole of `source`.
    fn replaced_text(&mut self, text: &str, source: Span) {
        for c in text.chars() {
            if c.is_whitespace() && c != '\u{a0}' && self.pre == 0 {
                if !self.out.text.is_empty()
                    && !self.out.text.ends_with('\n')
                    && self.pending_break == 0
                {
                    self.pending_space = Some(source);
                }
                continue;
            }
            self.flush_break(source);
            if let Some(space) = self.pending_space.take() {
                self.out.replaced(" ", space);
                self.heading_text(" ");
            }
            let c = if c == '\u{a0}' { ' ' } else { c };
            let mut buf = [0u8; 4];
            let s = c.encode_utf8(&mut buf);
            self.out.replaced(s, source);
            self.heading_text(s);
        }
    }

    /// Emits the source text `src[start..end]` as it is, whitespace
    /// collapsed (kept inside `<pre>`).
    fn raw(&mut self, start: usize, end: usize) {
        let src = self.src;
        let mut i = start;
        while i < end {
            let c = src[i..].chars().next().expect("in bounds");
            if c.is_whitespace() && self.pre == 0 {
                let run_end = src[i..end]
                    .find(|c: char| !c.is_whitespace())
                    .map_or(end, |n| i + n);
                if !self.out.text.is_empty()
                    && !self.out.text.ends_with('\n')
                    && self.pending_break == 0
                {
                    self.pending_space = Some(Span {
                        start: i,
                        end: run_end,
                    });
                }
                i = run_end;
                continue;
            }
            let at = Span { start: i, end: i };
            self.flush_break(at);
            if let Some(space) = self.pending_space.take() {
                self.out.replaced(" ", space);
                self.heading_text(" ");
            }
            let run_end = src[i..end]
                .find(|c: char| c.is_whitespace() && self.pre == 0)
                .map_or(end, |n| i + n)
                .max(i + c.len_utf8());
            let mut run = &src[i..run_end];
            if self.pre > 0 {
                // Inside <pre> only CR is normalised away.
                run = run.trim_end_matches('\r');
            }
            self.out.verbatim(run, i);
            self.heading_text(run);
            i = run_end;
        }
    }

    fn heading_text(&mut self, s: &str) {
        if let Some((_, _, title)) = self.heading.as_mut() {
            title.push_str(s);
        }
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(d - b'0'),
        _ => None,
    }
}
