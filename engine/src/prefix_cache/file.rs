//! One saved prefix on disk: `FOLIOKV1`, a JSON header (what the cache was
//! computed from, its prompt tokens and shape), the cache's sections
//! ([`KvCache::write_to`]), then the sha256 of header and sections.
//!
//! Invariants: a file is written under a temporary name and renamed into
//! place, so no reader ever opens a half-written one; a file is used only
//! when its header names the same settings, document and RoPE as the read
//! and its checksum matches after the whole payload is streamed in.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::llm::{KvCache, KvDtype};

/// The first bytes of every cache file (the digit is the format version).
const MAGIC: &[u8; 8] = b"FOLIOKV1";
/// Largest header read: a 256K-token prompt's ids fit with room to spare.
const MAX_HEADER: u32 = 16 << 20;

/// What a saved prefix was computed from and holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// Model sha256, attention, KV dtype, RoPE as asked and the numerics
    /// switches: everything but the text that changes the cached values.
    pub settings: String,
    /// sha256 of the text whose prompt this is the prefix of.
    pub text_sha256: String,
    /// The RoPE frequencies the prefix was rotated with ([`crate::llm::rope::Rope::fingerprint`]).
    pub rope: String,
    /// What the text was (document names), for `folio cache list`.
    pub label: String,
    /// The model's name, for `folio cache list`.
    pub model: String,
    /// Layers, KV heads and head size of the cache.
    pub shape: (usize, usize, usize),
    /// Element type of the cached keys and values.
    pub dtype: KvDtype,
    /// The prompt tokens the cache holds, in order.
    pub tokens: Vec<u32>,
    /// Seconds the prefill of these tokens took when the file was written.
    pub prefill_seconds: f64,
}

/// Writes `cache` with `header` to `path`, through a temporary file in the
/// same folder renamed into place. Returns the bytes written.
pub fn write(path: &Path, header: &Header, cache: &KvCache) -> Result<u64> {
    let dir = path.parent().context("a cache file needs a folder")?;
    let temp = temp_name(dir, path);
    let result = (|| -> Result<u64> {
        let file = File::create(&temp)
            .with_context(|| format!("creating the KV cache file {}", temp.display()))?;
        let mut out = Hashing::new(BufWriter::with_capacity(1 << 20, file));
        out.inner.write_all(MAGIC)?;
        let json = serde_json::to_vec(header)?;
        out.inner.write_all(&(json.len() as u32).to_le_bytes())?;
        out.write_all(&json)?;
        cache.write_to(&mut out)?;
        let digest = out.hash.clone().finalize();
        let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.write_all(&digest)?;
        file.flush()?;
        Ok(file.metadata()?.len())
    })();
    match result {
        Ok(bytes) => {
            std::fs::rename(&temp, path)
                .with_context(|| format!("moving the KV cache into {}", path.display()))?;
            Ok(bytes)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Prefix of the temporary files [`write`] makes (and `folio cache clear`
/// may remove when a killed process left one).
pub const TEMP_PREFIX: &str = ".writing-";

fn temp_name(dir: &Path, path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("kv");
    dir.join(format!(
        "{TEMP_PREFIX}{}-{}-{name}",
        std::process::id(),
        nanos
    ))
}

/// An open cache file whose header has been read and checked for shape.
pub struct Opened {
    /// The header as written.
    pub header: Header,
    reader: Hashing<BufReader<File>>,
}

/// Opens `path` and reads its header (not the payload).
pub fn open(path: &Path) -> Result<Opened> {
    let file = File::open(path)?;
    let mut reader = Hashing::new(BufReader::with_capacity(1 << 20, file));
    let mut magic = [0u8; 8];
    reader.inner.read_exact(&mut magic)?;
    if &magic != MAGIC {
        bail!("not a folio KV cache file (or another version of one)");
    }
    let mut len = [0u8; 4];
    reader.inner.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_HEADER {
        bail!("its header claims {len} bytes");
    }
    let mut json = vec![0u8; len as usize];
    reader.read_exact(&mut json)?;
    let header: Header = serde_json::from_slice(&json).context("its header does not parse")?;
    Ok(Opened { header, reader })
}

impl Opened {
    /// Streams the payload into a cache and checks the checksum and the
    /// file's end: any difference is an error and nothing is returned.
    pub fn read_cache(mut self) -> Result<KvCache> {
        let len = self.header.tokens.len();
        let cache =
            KvCache::read_from(&mut self.reader, self.header.shape, self.header.dtype, len)?;
        let digest = self.reader.hash.finalize();
        let mut stored = [0u8; 32];
        self.reader
            .inner
            .read_exact(&mut stored)
            .context("it ends before its checksum")?;
        if stored[..] != digest[..] {
            bail!("its checksum does not match its contents");
        }
        let mut extra = [0u8; 1];
        if self.reader.inner.read(&mut extra)? != 0 {
            bail!("it has bytes after its checksum");
        }
        Ok(cache)
    }
}

/// A reader or writer that hashes what passes through it.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}
