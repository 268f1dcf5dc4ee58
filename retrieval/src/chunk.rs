//! Token-aware chunking: sentences packed into chunks of at most
//! `max_tokens` tokens of the embedding model's tokenizer, with
//! `overlap_tokens` of trailing sentences repeated at the start of the next
//! chunk. Chunks never cross a section boundary and carry their heading path.

use anyhow::{anyhow, Result};
use folio_corpora::{Document, Span};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

/// Chunk size and overlap, in tokens of the embedding model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerConfig {
    /// Most tokens a chunk may hold (a single longer sentence is split to fit).
    pub max_tokens: usize,
    /// Tokens of trailing sentences repeated at the start of the next chunk.
    pub overlap_tokens: usize,
}

impl Default for ChunkerConfig {
    /// 200 tokens fit MiniLM's 256-token window with room for the heading
    /// path; 40 tokens of overlap keep a sentence of context across cuts.
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap_tokens: 40,
        }
    }
}

/// A piece of a document: its byte span, its heading path and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// The chunk's bytes in the document's text.
    pub span: Span,
    /// Headings of the section the chunk is in, outermost first (empty before any heading).
    pub heading_path: Vec<String>,
    /// Size in tokens of the embedding model's tokenizer.
    pub tokens: usize,
}

impl Chunk {
    /// The text indexed and embedded for this chunk: the heading path (when
    /// the chunk does not start with its heading) then the chunk's text.
    pub fn index_text(&self, doc_text: &str) -> String {
        let body = &doc_text[self.span.start..self.span.end];
        match self.heading_path.last() {
            Some(h)
                if !body
                    .trim_start()
                    .trim_start_matches('#')
                    .trim()
                    .starts_with(h.as_str()) =>
            {
                format!("{}\n{body}", self.heading_path.join(" > "))
            }
            _ => body.to_string(),
        }
    }
}

/// Splits documents into chunks; counts tokens with a real tokenizer.
pub struct Chunker {
    tokenizer: Tokenizer,
    config: ChunkerConfig,
}

/// Sentences per call to the tokenizer while chunking.
const ENCODE_BATCH: usize = 512;

struct Sentence {
    span: Span,
    tokens: usize,
    /// Token end offsets (bytes, relative to the sentence) for cutting
    /// sentences longer than a chunk.
    ends: Vec<usize>,
}

impl Chunker {
    /// A chunker counting with `tokenizer` (padding and truncation removed).
    pub fn new(mut tokenizer: Tokenizer, config: ChunkerConfig) -> Result<Self> {
        if config.max_tokens == 0 || config.overlap_tokens >= config.max_tokens {
            return Err(anyhow!(
                "chunk size {} must be positive and larger than the overlap {}",
                config.max_tokens,
                config.overlap_tokens
            ));
        }
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| anyhow!("tokenizer: {e}"))?;
        Ok(Self { tokenizer, config })
    }

    /// Loads the tokenizer from a `tokenizer.json` file.
    pub fn from_file(path: &std::path::Path, config: ChunkerConfig) -> Result<Self> {
        let tok = Tokenizer::from_file(path)
            .map_err(|e| anyhow!("cannot load tokenizer {}: {e}", path.display()))?;
        Self::new(tok, config)
    }

    /// The configuration in use (stored in the corpus manifest).
    pub fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// Number of tokens of `text` (no special tokens).
    pub fn count(&self, text: &str) -> Result<usize> {
        Ok(self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizer: {e}"))?
            .len())
    }

    /// The chunks of `doc` in document order.
    pub fn chunk(&self, doc: &Document) -> Result<Vec<Chunk>> {
        let mut regions = Vec::new();
        let first = doc
            .sections
            .first()
            .map_or(doc.text.len(), |s| s.span.start);
        regions.push((
            Span {
                start: 0,
                end: first,
            },
            Vec::new(),
        ));
        for s in &doc.sections {
            regions.push((s.span, s.path.clone()));
        }
        let mut chunks = Vec::new();
        for (region, path) in regions {
            let spans = sentences(&doc.text, region);
            if spans.is_empty() {
                continue;
            }
            // Encoded a batch at a time: a tokenizer `Encoding` holds tens of
            // bytes per token (ids, strings, offsets, masks), so encoding a
            // whole 50 MB text at once held gigabytes. Only what packing needs
            // is kept: the count, and the token ends of a sentence too long
            // for one chunk.
            let max = self.config.max_tokens;
            let mut sents: Vec<Sentence> = Vec::with_capacity(spans.len());
            for batch in spans.chunks(ENCODE_BATCH) {
                let texts: Vec<&str> = batch.iter().map(|s| &doc.text[s.start..s.end]).collect();
                let enc = self
                    .tokenizer
                    .encode_batch(texts, false)
                    .map_err(|e| anyhow!("tokenizer: {e}"))?;
                sents.extend(batch.iter().zip(enc).map(|(span, e)| Sentence {
                    span: *span,
                    tokens: e.len().max(1),
                    ends: if e.len() > max {
                        e.get_offsets().iter().map(|o| o.1).collect()
                    } else {
                        Vec::new()
                    },
                }));
            }
            self.pack(&sents, &path, &mut chunks);
        }
        Ok(chunks)
    }

    fn pack(&self, sents: &[Sentence], path: &[String], out: &mut Vec<Chunk>) {
        let max = self.config.max_tokens;
        let mut cur: Vec<&Sentence> = Vec::new();
        let mut cur_tokens = 0;
        let emit = |cur: &[&Sentence], tokens: usize, out: &mut Vec<Chunk>| {
            if let (Some(a), Some(b)) = (cur.first(), cur.last()) {
                out.push(Chunk {
                    span: Span {
                        start: a.span.start,
                        end: b.span.end,
                    },
                    heading_path: path.to_vec(),
                    tokens,
                });
            }
        };
        for s in sents {
            if s.tokens > max {
                emit(&cur, cur_tokens, out);
                cur.clear();
                cur_tokens = 0;
                for (span, tokens) in split_long(s, max) {
                    out.push(Chunk {
                        span,
                        heading_path: path.to_vec(),
                        tokens,
                    });
                }
                continue;
            }
            if cur_tokens + s.tokens > max {
                emit(&cur, cur_tokens, out);
                // Keep trailing sentences worth at most the overlap.
                let mut keep = 0;
                let mut kept_tokens = 0;
                for t in cur.iter().rev() {
                    if kept_tokens + t.tokens > self.config.overlap_tokens {
                        break;
                    }
                    kept_tokens += t.tokens;
                    keep += 1;
                }
                cur.drain(..cur.len() - keep);
                cur_tokens = kept_tokens;
                while cur_tokens + s.tokens > max && !cur.is_empty() {
                    cur_tokens -= cur.remove(0).tokens;
                }
            }
            cur.push(s);
            cur_tokens += s.tokens;
        }
        emit(&cur, cur_tokens, out);
    }
}

/// Cuts a sentence longer than `max` tokens at token boundaries.
fn split_long(s: &Sentence, max: usize) -> Vec<(Span, usize)> {
    let mut out = Vec::new();
    let mut start = s.span.start;
    for (i, group) in s.ends.chunks(max).enumerate() {
        let last = i == s.ends.len().div_ceil(max) - 1;
        let end = if last {
            s.span.end
        } else {
            s.span.start + group.last().copied().unwrap_or(0)
        };
        if end > start {
            out.push((Span { start, end }, group.len()));
        }
        start = end;
    }
    out
}

/// Sentence spans of `text[region]`, trimmed of surrounding whitespace: cuts
/// at blank lines and after `.`, `!`, `?` (and closing quotes or brackets)
/// followed by whitespace and an upper-case letter, digit or opening quote.
pub fn sentences(text: &str, region: Span) -> Vec<Span> {
    let s = &text[region.start..region.end];
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let cut = if b[i] == b'\n' && b.get(i + 1) == Some(&b'\n') {
            Some(i)
        } else if matches!(b[i], b'.' | b'!' | b'?') {
            let mut j = i + 1;
            while j < b.len() && matches!(b[j], b'"' | b'\'' | b')' | b']') {
                j += 1;
            }
            let ws = j < b.len() && b[j].is_ascii_whitespace();
            let mut k = j;
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            let next_ok = k < b.len()
                && (b[k].is_ascii_uppercase()
                    || b[k].is_ascii_digit()
                    || matches!(b[k], b'"' | b'(' | b'[' | b'#' | b'-' | b'*')
                    || b[k] >= 0x80);
            (ws && next_ok && !(b[i] == b'.' && abbreviation(&s[..i]))).then_some(j)
        } else {
            None
        };
        if let Some(end) = cut {
            push_trimmed(s, start, end, region.start, &mut out);
            start = end;
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    push_trimmed(s, start, b.len(), region.start, &mut out);
    out
}

/// Whether the word ending at the end of `before` (a `.` follows it) is an
/// abbreviation or an initial, after which a sentence does not end.
fn abbreviation(before: &str) -> bool {
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "fig",
        "vol", "inc", "ltd", "co", "mt", "gen", "col", "lt", "sgt", "rev", "u.s",
    ];
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("");
    let single_initial = word.len() == 1 && word.bytes().all(|b| b.is_ascii_uppercase());
    single_initial || ABBREVIATIONS.contains(&word.to_ascii_lowercase().as_str())
}

fn push_trimmed(s: &str, start: usize, end: usize, base: usize, out: &mut Vec<Span>) {
    let piece = &s[start..end];
    let lead = piece.len() - piece.trim_start().len();
    let trimmed = piece.trim();
    if !trimmed.is_empty() {
        out.push(Span {
            start: base + start + lead,
            end: base + start + lead + trimmed.len(),
        });
    }
}
