//! HTML to text: markup stripped, scripts and styles dropped, entities
//! decoded, whitespace collapsed, block elements turned into line breaks and
//! `<h1>`–`<h6>` kept as sections. Every piece of text keeps its byte offsets
//! in the source file.

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
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            i = st.tag(i);
            continue;
        }
        let end = src[i..].find('<').map_or(src.len(), |n| i + n);
        st.text(i, end);
        i = end;
    }
    if let Some((level, start, title)) = st.heading.take() {
        push_heading(&mut st.headings, level, start, &title);
    }
    (st.out, st.headings)
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

impl State<'_> {
    /// Handles the markup starting at `i` (a `<`); returns where text resumes.
    fn tag(&mut self, i: usize) -> usize {
        let rest = &self.src[i..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            return comment
                .find("-->")
                .map_or(self.src.len(), |n| i + 4 + n + 3);
        }
        let Some(close) = rest.find('>') else {
            // A stray `<` with no tag after it is text.
            self.text(i, self.src.len());
            return self.src.len();
        };
        let end = i + close + 1;
        let inner = &rest[1..close];
        let closing = inner.starts_with('/');
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            if inner.starts_with('!') || inner.starts_with('?') {
                return end; // doctype, processing instruction
            }
            self.text(i, i + 1); // `a < b` in text
            return i + 1;
        }
        let tag = Span { start: i, end };
        if !closing && SKIPPED.contains(&name.as_str()) && !inner.ends_with('/') {
            let close_tag = format!("</{name}");
            let lower = self.src[end..].to_ascii_lowercase();
            return lower.find(&close_tag).map_or(self.src.len(), |n| {
                let at = end + n;
                self.src[at..]
                    .find('>')
                    .map_or(self.src.len(), |m| at + m + 1)
            });
        }
        let level = heading_level(&name);
        if BLOCKS.contains(&name.as_str()) {
            self.pending_break = 2;
            self.pending_space = None;
        } else if LINES.contains(&name.as_str()) {
            self.pending_break = self.pending_break.max(1);
            self.pending_space = None;
        } else if !closing {
            let _ = tag; // inline element: no break
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
        end
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

    /// Emits the text `src[start..end]` with entities decoded and whitespace
    /// collapsed (kept as is inside `<pre>`).
    fn text(&mut self, start: usize, end: usize) {
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
            if c == '&' {
                if let Some((decoded, len)) = entity(&src[i..end]) {
                    let mut buf = [0u8; 4];
                    let s = decoded.encode_utf8(&mut buf);
                    self.out.replaced(
                        s,
                        Span {
                            start: i,
                            end: i + len,
                        },
                    );
                    self.heading_text(s);
                    i += len;
                    continue;
                }
            }
            let run_end = src[i..end]
                .find(|c: char| c == '&' || (c.is_whitespace() && self.pre == 0))
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

/// Decodes the character reference at the start of `s` (`&amp;`, `&#39;`,
/// `&#x2014;`): the character and the reference's length in bytes.
fn entity(s: &str) -> Option<(char, usize)> {
    let semi = s[..s.len().min(12)].find(';')?;
    let body = &s[1..semi];
    let c = if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        char::from_u32(code).filter(|c| *c != '\0')?
    } else {
        match body {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            "mdash" => '—',
            "ndash" => '–',
            "hellip" => '…',
            "copy" => '©',
            "rsquo" => '’',
            "lsquo" => '‘',
            "rdquo" => '”',
            "ldquo" => '“',
            _ => return None,
        }
    };
    Some((c, semi + 1))
}
