//! Read once, ask many: the KV cache of a document's prompt prefix, kept
//! after a full read so the next question about the same document prefills
//! only itself.
//!
//! folio's prompt puts the document before the question
//! ([`crate::llm::document_qa`]), so every token before the question is a
//! prefix that the next question shares. A full read prefills that prefix
//! by itself, saves its cache (on disk, and in memory for the TUI), then
//! reads the question; a later read of the same text with the same model
//! and settings restores the prefix and prefills the question alone.
//!
//! Invariants:
//! - A cache is keyed by everything that changes its values: the model's
//!   sha256, the attention mode and its parameters, the KV dtype, the RoPE
//!   scaling as asked and the frequencies it resolved to, the forward pass's
//!   numerics switches, and the text; its prompt tokens must equal the new
//!   prompt's first tokens exactly. Anything else is a miss, never a guess.
//! - A file that is corrupt, truncated or unreadable is discarded with a
//!   notice and the read proceeds from scratch; it never fails the answer.
//! - Files are written under a temporary name and renamed; the folder's
//!   size stays under its cap, least recently used out first. Only files
//!   this module names (`*.kv`, `.writing-*`) are ever removed.

mod file;
mod step;
mod store;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::llm::{document_qa, Decoder, KvCache, Model, SessionOptions};
pub use crate::router::PrefixPricing;
pub use step::{read_document_prefix, PrefixStep};
pub use store::Entry;

/// The default cap of the cache folder: a 32K-token prefix of the 1.5B
/// reader in f32 is about 1.9 GB, so two such documents fit.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// Where prefixes are kept: a folder on disk with a size cap, and
/// optionally the last one in memory (the TUI asks one document many
/// questions in one process).
pub struct PrefixCache {
    dir: Option<PathBuf>,
    max_bytes: u64,
    memory: Option<Mutex<Option<Kept>>>,
}

impl std::fmt::Debug for PrefixCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixCache")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .field("keeps_memory", &self.keeps_memory())
            .finish()
    }
}

/// A prefix held in memory.
struct Kept {
    key: PrefixKey,
    tokens: Vec<u32>,
    cache: KvCache,
    prefill_seconds: f64,
}

/// What a saved prefix must match to be reused by a read.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixKey {
    settings: String,
    text_sha256: String,
    rope: String,
    label: String,
    model: String,
}

impl PrefixKey {
    /// The key of a read of `text` (named `label` in listings) by `model`
    /// under `session`, for a request of `total` tokens (which resolves
    /// dynamic RoPE). Reads the model file once to hash it when its sha256
    /// is not already known.
    pub fn new(
        model: &Model,
        session: &SessionOptions,
        text: &str,
        label: &str,
        total: usize,
    ) -> Result<Self> {
        let settings = format!(
            "model={} attention={} kv={} rope={:?} chunk={} int8_activations={} int8_prefill={} \
             eviction={:?}",
            model.sha256()?,
            session.attention.describe(),
            session.kv_dtype.name(),
            session.rope_scaling,
            session.prefill_chunk,
            session.quantized_activations,
            session.int8_prefill,
            session.eviction,
        );
        let rope = model
            .rope(session.rope_scaling.resolve(total), total)
            .fingerprint();
        Ok(Self {
            settings,
            text_sha256: hex(&Sha256::digest(text.as_bytes())),
            rope,
            label: label.to_string(),
            model: model.config.name.clone(),
        })
    }

    /// The file name of this key's prefix (settings and text; the RoPE
    /// and the tokens are checked inside).
    fn file_name(&self) -> String {
        let mut h = Sha256::new();
        h.update(&self.settings);
        h.update([0]);
        h.update(&self.text_sha256);
        format!("{}.kv", &hex(&h.finalize())[..32])
    }

    fn matches(&self, header: &file::Header) -> bool {
        header.settings == self.settings
            && header.text_sha256 == self.text_sha256
            && header.rope == self.rope
    }
}

/// What the prefix cache did for one read: shown on the answer's card.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrefixReport {
    /// Prompt tokens whose keys and values came from the cache instead of
    /// a prefill (0 when none did).
    pub reused_tokens: usize,
    /// `memory` or `disk`, when a prefix was reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// Seconds to load the prefix into the session.
    pub restore_seconds: f64,
    /// Seconds the prefill it replaced took when it was saved (measured
    /// then, on this machine or the one that wrote it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_prefill_seconds: Option<f64>,
    /// Tokens of this read's prefix saved for later questions.
    pub saved_tokens: usize,
    /// Bytes written to disk for them.
    pub saved_bytes: u64,
    /// Seconds writing them took.
    pub save_seconds: f64,
    /// Why a cached prefix was not used, or this one not saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// The disk speed the router prices a restore or save at before one has
/// been timed on this machine (a local SSD's order of magnitude).
pub const UNTIMED_BYTES_PER_S: f64 = 1e9;

/// What a saved prefix offers a plan, read from its header alone.
#[derive(Debug, Clone, Copy)]
pub struct Offer {
    /// Prompt tokens it holds.
    pub tokens: usize,
    /// Bytes of its file.
    pub bytes: u64,
    /// Seconds its prefill took when it was written.
    pub prefill_seconds: f64,
}

impl PrefixCache {
    /// A cache in `dir` (created when first written), at most `max_bytes`.
    pub fn on_disk(dir: PathBuf, max_bytes: u64) -> Self {
        Self {
            dir: Some(dir),
            max_bytes,
            memory: None,
        }
    }

    /// No disk: only the last prefix, in memory.
    pub fn in_memory() -> Self {
        Self {
            dir: None,
            max_bytes: 0,
            memory: Some(Mutex::new(None)),
        }
    }

    /// Also keeps the last prefix in memory, so a process asking one
    /// document many questions restores it without reading the disk.
    pub fn keeping_last_in_memory(mut self) -> Self {
        self.memory = Some(Mutex::new(None));
        self
    }

    /// folio's cache folder: `kv-cache/` under `$FOLIO_HOME` or `~/.cache/folio`.
    pub fn default_dir() -> PathBuf {
        folio_corpora::fetch::folio_home().join("kv-cache")
    }

    /// The folder, when the cache has one.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref()
    }

    /// Whether a prefix is kept in memory after each read.
    pub fn keeps_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Puts the longest cached prefix of `prompt` for `key` into `decoder`
    /// (for a request of `total` tokens). Returns the report of what was
    /// reused, or of why nothing was (then the decoder is untouched).
    pub fn restore(
        &self,
        key: &PrefixKey,
        prompt: &[u32],
        decoder: &mut dyn Decoder<'_>,
        total: usize,
    ) -> PrefixReport {
        let t = Instant::now();
        if let Some(kept) = self.take_from_memory(key, prompt) {
            let (tokens, seconds) = (kept.tokens.len(), kept.prefill_seconds);
            match decoder.restore_kv(kept.cache, total) {
                Ok(()) => return reused(tokens, "memory", t, seconds),
                Err(cache) => self.put_in_memory(Kept {
                    cache: *cache,
                    ..kept
                }),
            }
        }
        let Some(dir) = &self.dir else {
            return PrefixReport::default();
        };
        let path = dir.join(key.file_name());
        let opened = match file::open(&path) {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return PrefixReport::default(),
            Err(e) => return discarded(&path, e),
        };
        let header = &opened.header;
        if !key.matches(header) {
            return notice(
                "the cache file under this read's name holds another text or other settings: read from scratch",
            );
        }
        if header.tokens.len() >= prompt.len() || prompt[..header.tokens.len()] != header.tokens[..]
        {
            return notice(
                "the cached prefix's tokens differ from this prompt's: read from scratch",
            );
        }
        let (tokens, seconds) = (header.tokens.len(), header.prefill_seconds);
        let cache = match opened.read_cache() {
            Ok(c) => c,
            Err(e) => return discarded(&path, e),
        };
        if decoder.restore_kv(cache, total).is_err() {
            return notice("the cached prefix does not fit this session: read from scratch");
        }
        store::touch(&path);
        let report = reused(tokens, "disk", t, seconds);
        if let Ok(m) = std::fs::metadata(&path) {
            store::record_rate(dir, true, m.len(), report.restore_seconds);
        }
        report
    }

    /// Saves the cache of `tokens` (the decoder's whole cache) for `key`;
    /// the report says what was written or why nothing was.
    pub fn save(
        &self,
        key: &PrefixKey,
        tokens: &[u32],
        cache: &KvCache,
        prefill_seconds: f64,
    ) -> PrefixReport {
        let Some(dir) = &self.dir else {
            return PrefixReport::default();
        };
        let bytes = cache.bytes() as u64;
        if bytes > self.max_bytes {
            return notice(&format!(
                "not saved for later questions: its {:.2} GB exceed the cache's {:.2} GB \
                 (--kv-cache-max)",
                bytes as f64 / 1e9,
                self.max_bytes as f64 / 1e9
            ));
        }
        let header = file::Header {
            settings: key.settings.clone(),
            text_sha256: key.text_sha256.clone(),
            rope: key.rope.clone(),
            label: key.label.clone(),
            model: key.model.clone(),
            shape: cache.shape(),
            dtype: cache.dtype,
            tokens: tokens.to_vec(),
            prefill_seconds,
        };
        let t = Instant::now();
        let path = dir.join(key.file_name());
        let written = std::fs::create_dir_all(dir)
            .map_err(anyhow::Error::from)
            .and_then(|_| file::write(&path, &header, cache));
        match written {
            Ok(bytes) => {
                let save_seconds = t.elapsed().as_secs_f64();
                store::record_rate(dir, false, bytes, save_seconds);
                store::evict(dir, self.max_bytes, &path);
                PrefixReport {
                    saved_tokens: tokens.len(),
                    saved_bytes: bytes,
                    save_seconds,
                    ..Default::default()
                }
            }
            Err(e) => notice(&format!("not saved for later questions: {e:#}")),
        }
    }

    /// Keeps `cache` (of `tokens`) in memory for the next read, replacing
    /// the last one; a no-op unless the cache keeps one.
    pub fn remember(&self, key: &PrefixKey, tokens: &[u32], cache: KvCache, prefill_seconds: f64) {
        self.put_in_memory(Kept {
            key: key.clone(),
            tokens: tokens.to_vec(),
            cache,
            prefill_seconds,
        });
    }

    /// What a saved prefix for `key` would spare a read, from its header
    /// alone (the memory one first); `None` when there is none.
    pub fn offer(&self, key: &PrefixKey) -> Option<Offer> {
        if let Some(memory) = &self.memory {
            let kept = memory.lock().ok()?;
            if let Some(k) = kept.as_ref().filter(|k| k.key.matches_key(key)) {
                return Some(Offer {
                    tokens: k.tokens.len(),
                    bytes: 0,
                    prefill_seconds: k.prefill_seconds,
                });
            }
        }
        let path = self.dir.as_ref()?.join(key.file_name());
        let opened = file::open(&path).ok()?;
        key.matches(&opened.header).then(|| Offer {
            tokens: opened.header.tokens.len(),
            bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
            prefill_seconds: opened.header.prefill_seconds,
        })
    }

    /// What restoring and saving cost here, for the router: predicted
    /// seconds to restore a prefix of `offer` and bytes per second of a
    /// save. The last timed restore and save on this folder set them; until
    /// there is one, [`UNTIMED_BYTES_PER_S`].
    pub fn pricing(&self, offer: Option<Offer>) -> PrefixPricing {
        let rates = self.dir.as_deref().map(store::rates).unwrap_or_default();
        let restore = rates.restore_bytes_per_s.unwrap_or(UNTIMED_BYTES_PER_S);
        PrefixPricing {
            cached_tokens: offer.map_or(0, |o| o.tokens),
            restore_seconds: offer.map_or(0.0, |o| o.bytes as f64 / restore),
            save_bytes_per_s: if self.dir.is_some() {
                rates.save_bytes_per_s.unwrap_or(UNTIMED_BYTES_PER_S)
            } else {
                f64::INFINITY
            },
        }
    }

    /// The saved prefixes, most recently used first.
    pub fn list(&self) -> Result<Vec<Entry>> {
        match &self.dir {
            Some(dir) => store::list(dir),
            None => Ok(Vec::new()),
        }
    }

    /// Removes every saved prefix (and temporary files a killed folio
    /// left); returns how many files and bytes went.
    pub fn clear(&self) -> Result<(usize, u64)> {
        if let Some(memory) = &self.memory {
            if let Ok(mut m) = memory.lock() {
                *m = None;
            }
        }
        match &self.dir {
            Some(dir) => store::clear(dir),
            None => Ok((0, 0)),
        }
    }

    fn take_from_memory(&self, key: &PrefixKey, prompt: &[u32]) -> Option<Kept> {
        let mut kept = self.memory.as_ref()?.lock().ok()?;
        let fits = kept.as_ref().is_some_and(|k| {
            k.key.matches_key(key)
                && k.tokens.len() < prompt.len()
                && prompt[..k.tokens.len()] == k.tokens[..]
        });
        fits.then(|| kept.take()).flatten()
    }

    fn put_in_memory(&self, kept: Kept) {
        if let Some(Ok(mut m)) = self.memory.as_ref().map(|m| m.lock()) {
            *m = Some(kept);
        }
    }
}

impl PrefixKey {
    fn matches_key(&self, other: &PrefixKey) -> bool {
        self.settings == other.settings
            && self.text_sha256 == other.text_sha256
            && self.rope == other.rope
    }
}

/// How many of `prompt`'s first tokens (a [`document_qa`] prompt over
/// `text`) do not depend on the question: where it diverges from the same
/// prompt with another question. Always leaves at least one token to read.
pub fn document_prefix_len(model: &Model, text: &str, prompt: &[u32]) -> Result<usize> {
    let other = model
        .chat
        .render(&model.tokenizer, &document_qa(text, "?"))?;
    let common = prompt
        .iter()
        .zip(&other)
        .take_while(|(a, b)| a == b)
        .count();
    Ok(common.min(prompt.len().saturating_sub(1)))
}

fn reused(tokens: usize, source: &'static str, t: Instant, prefill: f64) -> PrefixReport {
    PrefixReport {
        reused_tokens: tokens,
        source: Some(source),
        restore_seconds: t.elapsed().as_secs_f64(),
        replaced_prefill_seconds: Some(prefill),
        ..Default::default()
    }
}

fn notice(text: &str) -> PrefixReport {
    PrefixReport {
        notice: Some(text.to_string()),
        ..Default::default()
    }
}

/// A file that cannot be used is removed (it is folio's, by its name and
/// folder) so it is not tried again.
fn discarded(path: &std::path::Path, e: anyhow::Error) -> PrefixReport {
    let _ = std::fs::remove_file(path);
    notice(&format!(
        "a cached prefix was discarded ({e:#}): read from scratch"
    ))
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
