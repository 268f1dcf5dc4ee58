//! What a question is asked of: a corpus store folder, or files and folders
//! that get a cached store of their own the first time retrieval needs one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use folio_corpora::{discover, load_path, LoadOptions};
use folio_retrieval::store::manifest;
use folio_retrieval::{ChunkerConfig, CorpusStore, IngestOptions, IngestReport, StoreOptions};
use rayon::prelude::*;

use crate::llm::Model;
use crate::router::CorpusStats;

/// One document's text, as the loaders produced it (spans index into it).
#[derive(Debug, Clone)]
pub struct CorpusDoc {
    /// Absolute path of the file (the store's key).
    pub path: String,
    /// The normalised text, as the loaders produced it.
    pub text: String,
}

/// A corpus: its documents' texts and the store that indexes them.
pub struct Corpus {
    /// The documents, in the manifest's order: a context part's `doc` indexes it.
    pub docs: Vec<CorpusDoc>,
    /// Files the loaders refused, with the reason.
    pub skipped: Vec<String>,
    /// Where the index lives (the store given, or a cache folder).
    pub store_dir: PathBuf,
    /// The files to ingest when the store is missing or stale; empty when
    /// the corpus was given as a store.
    sources: Vec<PathBuf>,
    store: Option<CorpusStore>,
    /// The last [`token_count`](Self::token_count), by tokenizer (the GGUF
    /// name and vocabulary size): counted once per corpus state. `docs`
    /// change only in [`refresh`](Self::refresh), which forgets it.
    counted: std::sync::Mutex<Option<(String, TokenCount)>>,
}

/// The texts of a store's documents, in the manifest's order.
fn docs_of(store: &CorpusStore) -> Result<Vec<CorpusDoc>> {
    (0..store.manifest().docs.len())
        .map(|i| {
            let d = store.load_doc(i)?;
            Ok(CorpusDoc {
                path: store.manifest().docs[i].path.clone(),
                text: d.text,
            })
        })
        .collect()
}

/// Above this many bytes of text, tokens are estimated from a sample.
const COUNT_ALL_BYTES: usize = 4 << 20;
/// Retrieval chunk size in embedding tokens for stores `ask` creates.
pub const CHUNK_TOKENS: usize = 200;

impl Corpus {
    /// A corpus of texts held in memory, with no store (unit tests).
    #[cfg(test)]
    pub(crate) fn from_docs(docs: Vec<CorpusDoc>) -> Self {
        Self {
            docs,
            skipped: Vec::new(),
            store_dir: PathBuf::new(),
            sources: Vec::new(),
            store: None,
            counted: Default::default(),
        }
    }

    /// Opens a corpus store folder (one holding `manifest.json`), or loads
    /// the files under `paths` (their store is built on first retrieval).
    pub fn open(paths: &[PathBuf], progress: bool) -> Result<Self> {
        Self::open_with(paths, progress, None)
    }

    /// [`open`](Self::open), reaching a store whose vectors live on a Qdrant
    /// server at `qdrant_url` (ignored for stores that keep them in process).
    pub fn open_with(paths: &[PathBuf], progress: bool, qdrant_url: Option<&str>) -> Result<Self> {
        if let [dir] = paths {
            if dir.join(manifest::FILE).is_file() {
                return Self::open_store(dir, progress, qdrant_url);
            }
        }
        let (files, skipped) = discover(paths);
        let mut skipped: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
        let loaded: Vec<_> = files
            .par_iter()
            .map(|f| (f, load_path(f, &LoadOptions::default())))
            .collect();
        let mut docs = Vec::new();
        for (file, result) in loaded {
            match result {
                Ok(doc) if !doc.text.trim().is_empty() => docs.push(CorpusDoc {
                    path: absolute(file),
                    text: doc.text,
                }),
                Ok(_) => skipped.push(format!("skipped {}: no text", file.display())),
                Err(e) => skipped.push(format!("skipped {}: {e}", file.display())),
            }
        }
        if docs.is_empty() {
            bail!(
                "nothing to read in {}{}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                skipped
                    .first()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
        }
        docs.sort_by(|a, b| a.path.cmp(&b.path));
        let mut sources: Vec<PathBuf> = docs.iter().map(|d| PathBuf::from(&d.path)).collect();
        sources.sort();
        Ok(Self {
            store_dir: cache_dir(&sources),
            docs,
            skipped,
            sources,
            store: None,
            counted: Default::default(),
        })
    }

    fn open_store(dir: &Path, progress: bool, qdrant_url: Option<&str>) -> Result<Self> {
        let mut options = store_options(progress);
        // Only a store whose vectors live on a Qdrant server takes the URL
        // (the store refuses one its vectors are not on).
        let on_server = manifest::Manifest::load(dir)
            .ok()
            .flatten()
            .is_some_and(|m| m.qdrant_collection.is_some());
        if on_server {
            options.qdrant_url = qdrant_url.map(str::to_string);
        }
        let store = CorpusStore::open(dir, options)?;
        let docs = docs_of(&store)?;
        if docs.is_empty() {
            bail!(
                "the store {} holds no documents; run `folio ingest`",
                dir.display()
            );
        }
        Ok(Self {
            docs,
            skipped: Vec::new(),
            store_dir: dir.to_path_buf(),
            sources: Vec::new(),
            store: Some(store),
            counted: Default::default(),
        })
    }

    /// Moves a corpus given as a store to the store's last committed state
    /// (another process may have ingested since it was opened): the store's
    /// manifest and indexes, and the documents' texts. Returns whether
    /// anything changed. A corpus of files is checked by its next ingest.
    pub fn refresh(&mut self) -> Result<bool> {
        if !self.sources.is_empty() {
            return Ok(false);
        }
        let Some(store) = self.store.as_mut() else {
            return Ok(false);
        };
        if !store.refresh()? {
            return Ok(false);
        }
        self.docs = docs_of(store)?;
        *self.counted.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(true)
    }

    /// Whether an up-to-date index exists without ingesting.
    pub fn indexed(&self) -> bool {
        self.store.is_some() || self.cached_store_matches().unwrap_or(false)
    }

    fn cached_store_matches(&self) -> Result<bool> {
        let Some(m) = manifest::Manifest::load(&self.store_dir)? else {
            return Ok(false);
        };
        let mut paths: Vec<&str> = m.docs.iter().map(|d| d.path.as_str()).collect();
        paths.sort();
        let ours: Vec<String> = self
            .sources
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        // Same files; their hashes are checked by the (cheap) incremental
        // ingest that `store` runs anyway.
        Ok(paths == ours.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    }

    /// The index, built or brought up to date first when the corpus was
    /// given as files (unchanged files are skipped by their hash).
    pub fn store(&mut self, progress: bool) -> Result<(&CorpusStore, Option<IngestReport>)> {
        let mut report = None;
        if self.store.is_none() {
            let chunker = ChunkerConfig {
                max_tokens: CHUNK_TOKENS,
                overlap_tokens: 40,
            };
            let mut writer =
                CorpusStore::open_writer(&self.store_dir, chunker, true, store_options(progress))
                    .with_context(|| format!("indexing into {}", self.store_dir.display()))?;
            report = Some(writer.ingest(&self.sources, &IngestOptions::default())?);
            drop(writer);
            self.store = Some(CorpusStore::open(&self.store_dir, store_options(progress))?);
        }
        Ok((self.store.as_ref().expect("store opened above"), report))
    }

    /// Index of the document stored under `path`.
    pub fn doc_index(&self, path: &str) -> Option<usize> {
        self.docs.iter().position(|d| d.path == path)
    }

    /// Sizes the router needs, in `model`'s tokens: counted exactly up to a
    /// few MiB of text, extrapolated from a sample beyond. The count, the
    /// costly part, is made once per corpus state and tokenizer; the rest
    /// (chunks, index state) is read as it is now.
    pub fn stats(&self, model: &Model) -> Result<CorpusStats> {
        Ok(self.stats_with(self.token_count(model)?))
    }

    /// The corpus' length in `model`'s tokens, and whether it was
    /// extrapolated from a sample, remembered per tokenizer.
    fn token_count(&self, model: &Model) -> Result<TokenCount> {
        let tokenizer = format!("{} ({} tokens)", model.config.name, model.config.vocab_size);
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((of, count)) = counted.as_ref() {
            if *of == tokenizer {
                return Ok(*count);
            }
        }
        let count = self.count_tokens(model)?;
        *counted = Some((tokenizer, count));
        Ok(count)
    }

    fn count_tokens(&self, model: &Model) -> Result<TokenCount> {
        let bytes: usize = self.docs.iter().map(|d| d.text.len()).sum();
        let count = |text: &str| model.tokenizer.encode_text(text).map(|t| t.len());
        let (tokens, estimated) = if bytes <= COUNT_ALL_BYTES {
            let counts = self
                .docs
                .par_iter()
                .map(|d| count(&d.text))
                .collect::<Result<Vec<_>>>()?;
            (counts.iter().sum::<usize>(), false)
        } else {
            let mut sample_bytes = 0;
            let mut sample_tokens = 0;
            for d in &self.docs {
                let end = floor_char_boundary(
                    &d.text,
                    (COUNT_ALL_BYTES - sample_bytes).min(d.text.len()),
                );
                sample_tokens += count(&d.text[..end])?;
                sample_bytes += end;
                if sample_bytes >= COUNT_ALL_BYTES {
                    break;
                }
            }
            let per_byte = sample_tokens as f64 / sample_bytes.max(1) as f64;
            ((bytes as f64 * per_byte) as usize, true)
        };
        Ok(TokenCount { tokens, estimated })
    }

    /// [`stats`](Self::stats) from a [`token_count`](Self::token_count) of
    /// the corpus as it is now, and the index as it is now.
    fn stats_with(&self, count: TokenCount) -> CorpusStats {
        let bytes: usize = self.docs.iter().map(|d| d.text.len()).sum();
        let TokenCount { tokens, estimated } = count;
        // Chunks hold CHUNK_TOKENS embedding tokens with 40 of overlap;
        // both tokenizers give similar counts on English prose.
        let chunk_tokens = CHUNK_TOKENS;
        let chunks = match &self.store {
            Some(s) => s.chunk_count() as usize,
            None => tokens.div_ceil(CHUNK_TOKENS - 40),
        };
        CorpusStats {
            documents: self.docs.len(),
            bytes: bytes as u64,
            tokens,
            tokens_estimated: estimated,
            chunks,
            chunk_tokens,
            indexed: self.indexed(),
            dense: self.store.as_ref().is_none_or(|s| s.has_dense()),
        }
    }
}

/// A corpus' length in a model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokenCount {
    /// Tokens of the whole corpus in the model's tokenizer.
    tokens: usize,
    /// Extrapolated from the first few MiB (the corpus is larger).
    estimated: bool,
}

fn store_options(progress: bool) -> StoreOptions {
    StoreOptions {
        qdrant_url: None,
        threads: None,
        progress,
        // Two questions over the same files share one cached store: the
        // second waits for the first's indexing instead of failing.
        wait_for_writer: true,
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The cached store of a set of files: `$FOLIO_HOME/stores/<hash of paths>`.
fn cache_dir(sources: &[PathBuf]) -> PathBuf {
    // FNV-1a over the sorted absolute paths: stable across runs and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in sources {
        for b in p.as_os_str().as_encoded_bytes().iter().chain(b"\0") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    folio_corpora::fetch::folio_home()
        .join("stores")
        .join(format!("{h:016x}"))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
