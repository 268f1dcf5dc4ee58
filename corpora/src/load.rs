//! Loading files into [`Document`]s: format by extension, per-file errors that
//! say what is wrong, and directory walks that skip bad files without
//! stopping.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sourcemap::{SourceMap, TextBuilder};
use crate::{html, pdf, text, Document, Format};

/// Why one file was not loaded; ingest reports these per file and goes on.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
pub enum LoadError {
    /// The file could not be opened or read (the OS error's message).
    #[error("cannot read: {0}")]
    Io(String),
    /// A NUL byte in the first 64 KiB (its offset): not text, not read as text.
    #[error("a binary file (NUL byte at offset {0})")]
    Binary(usize),
    /// Invalid UTF-8 (the offset of the first bad byte); other encodings are not guessed.
    #[error("not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
    /// Nothing but whitespace once normalised: there is nothing to cite.
    #[error("empty (no text)")]
    Empty,
    /// Larger than [`LoadOptions::max_bytes`]; refused before it is read whole.
    #[error("too large ({size} bytes; the limit is {limit})")]
    TooLarge {
        /// The file's size in bytes (or what was read before giving up).
        size: u64,
        /// The limit it broke, in bytes.
        limit: u64,
    },
    /// An encrypted PDF that the empty user password does not open.
    #[error("an encrypted PDF (a password is needed)")]
    Encrypted,
    /// A PDF that cannot be parsed or makes the extractor panic (what went wrong).
    #[error("a broken PDF: {0}")]
    BrokenPdf(String),
    /// A file extension folio does not read (the extension, without its dot).
    #[error("of an unsupported type .{0}")]
    Unsupported(String),
    /// A FIFO, socket, device or other non-regular file (what kind it is).
    #[error("not a regular file ({0}); folio reads only regular files")]
    NotRegular(&'static str),
}

/// Limits for loading; the default refuses files over 64 MiB.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Files larger than this many bytes are refused with [`LoadError::TooLarge`].
    pub max_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
        }
    }
}

/// A file that was not loaded, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The file as it was found (walked or given).
    pub path: PathBuf,
    /// Why it was not loaded.
    pub error: LoadError,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped {}: {}", self.path.display(), self.error)
    }
}

impl Format {
    /// The format a path's extension names; `None` for extensions folio does
    /// not read (directory walks skip those files silently).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" | "text" | "rst" | "log" | "csv" => Format::Text,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" | "xhtml" => Format::Html,
            "pdf" => Format::Pdf,
            _ => return None,
        })
    }
}

/// Reads and loads one file; a file with an unknown extension is read as
/// plain text if it is UTF-8.
pub fn load_path(path: &Path, opts: &LoadOptions) -> Result<Document, LoadError> {
    let bytes = read_bounded(path, opts.max_bytes)?;
    let format = Format::from_path(path).unwrap_or(Format::Text);
    load_bytes(path, &bytes, format, opts)
}

/// Reads a regular file of at most `max_bytes`, never more: a FIFO, a
/// device (`/dev/zero`), a socket or a folder is refused without blocking on
/// it, and a file that grows past the limit while it is read is refused
/// after `max_bytes + 1` bytes, before anything larger is allocated.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let io = |e: std::io::Error| LoadError::Io(e.to_string());
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes: open without
    // blocking, then look at what was opened (not at the path, which could
    // be swapped in between).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(LoadError::NotRegular(file_kind(&meta)));
    }
    if meta.len() > max_bytes {
        return Err(LoadError::TooLarge {
            size: meta.len(),
            limit: max_bytes,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(LoadError::TooLarge {
            size: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, for the error.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

/// Loads a document from the bytes of `path` (already read, e.g. to hash
/// them first) in the given format.
pub fn load_bytes(
    path: &Path,
    bytes: &[u8],
    format: Format,
    opts: &LoadOptions,
) -> Result<Document, LoadError> {
    if bytes.len() as u64 > opts.max_bytes {
        return Err(LoadError::TooLarge {
            size: bytes.len() as u64,
            limit: opts.max_bytes,
        });
    }
    let (text, source_map, headings, pages) = match format {
        Format::Pdf => {
            let (text, pages) = pdf::join(&pdf::pages(bytes)?);
            (text, SourceMap::default(), Vec::new(), pages)
        }
        _ => {
            if let Some(nul) = bytes.iter().take(1 << 16).position(|&b| b == 0) {
                return Err(LoadError::Binary(nul));
            }
            let src =
                std::str::from_utf8(bytes).map_err(|e| LoadError::NotUtf8(e.valid_up_to()))?;
            let (b, headings) = match format {
                Format::Html => html::to_text(src),
                _ => {
                    let mut b = TextBuilder::default();
                    text::normalize_into(src, 0, &mut b);
                    let h = if format == Format::Markdown {
                        text::markdown_headings(&b.text)
                    } else {
                        Vec::new()
                    };
                    (b, h)
                }
            };
            (b.text, b.map, headings, Vec::new())
        }
    };
    if text.trim().is_empty() {
        return Err(LoadError::Empty);
    }
    let id = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let sections = crate::sections(&headings, text.len());
    Ok(Document {
        id,
        source: path.display().to_string(),
        text,
        format,
        sections,
        source_map,
        pages,
    })
}

/// The files under `paths` that folio reads: files given directly (any
/// extension), and files with a known extension found by walking directories
/// (hidden entries skipped), sorted and deduplicated. Unreadable paths are
/// reported, not fatal.
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Skipped>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut files, &mut skipped),
            Ok(_) => files.push(p.clone()),
            Err(e) => skipped.push(Skipped {
                path: p.clone(),
                error: LoadError::Io(e.to_string()),
            }),
        }
    }
    files.sort();
    files.dedup();
    (files, skipped)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, skipped: &mut Vec<Skipped>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push(Skipped {
                path: dir.to_path_buf(),
                error: LoadError::Io(e.to_string()),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, files, skipped),
            Ok(_) if Format::from_path(&path).is_some() => files.push(path),
            _ => {}
        }
    }
}
