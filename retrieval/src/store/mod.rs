//! A corpus store folder: the manifest (source of truth), pack files with
//! document texts and chunks, the tantivy BM25 index and the vector store.
//!
//! ```text
//! STORE/manifest.json   which files, their hashes and chunk id ranges
//! STORE/packs/N.jsonl   one JSON line per document (text, sections, chunks)
//! STORE/tantivy/        BM25 index (chunk id + text)
//! STORE/vectors/        HNSW graph on LMDB (chunk id → embedding)
//! ```
//!
//! Crash safety: an ingest writes chunks into the indexes and packs first,
//! commits both indexes and fsyncs the pack, and only then renames a new
//! manifest into place. A kill at any moment leaves the old manifest or the
//! new one; index entries the manifest does not own are invisible to
//! searches and deleted by the next writer ([`CorpusStore::open_writer`]).
//!
//! Many readers: any number of processes search a store while one ingest
//! writes. A reader never takes a lock; tantivy and LMDB each show it their
//! last commit, and hits are kept only where the reader's manifest owns the
//! chunk. A reader held open (the TUI) calls [`CorpusStore::refresh`] to
//! move to the latest committed manifest.

mod ingest;
pub mod manifest;
pub mod search;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};

use crate::bm25::Bm25Index;
use crate::chunk::{Chunker, ChunkerConfig};
use crate::embed::{Embedder, DIMS, MODEL_ID};
use crate::vector::{HnswStore, ServerStore, VectorStore};
pub use ingest::{IngestOptions, IngestReport, SkippedFile};
pub use manifest::{DocEntry, Manifest, StoredDoc};
pub use search::{Hit, Mode, SearchReport};
use sha2::{Digest, Sha256};

/// How a store is opened.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// The Qdrant server (gRPC URL): a new store keeps its vectors there
    /// instead of in the in-process engine, and a store made that way needs
    /// it. A store keeps the backend it was created with.
    pub qdrant_url: Option<String>,
    /// Threads for the embedding model (`None`: all cores).
    pub threads: Option<usize>,
    /// Draw progress bars (fetches, ingest).
    pub progress: bool,
    /// When another process is ingesting into the store, wait for it to
    /// finish instead of failing (folio's cached stores of `--corpus FILES`,
    /// which two questions over the same files both bring up to date).
    pub wait_for_writer: bool,
}

/// An open corpus store.
pub struct CorpusStore {
    dir: PathBuf,
    manifest: Manifest,
    bm25: Bm25Index,
    vectors: Option<Box<dyn VectorStore>>,
    embedder: Option<Embedder>,
    /// (first id, end id, doc index), sorted, for id → document lookups.
    ranges: Vec<(u64, u64, usize)>,
    packs: Mutex<HashMap<u64, File>>,
    writer_lock: Option<File>,
    options: StoreOptions,
}

const LOCK: &str = ".writer.lock";

/// The folder of the in-process vector index.
const VECTORS: &str = "vectors";

/// The file that marks a folder as made by folio. folio deletes inside a
/// store folder only what a marked folder holds, so pointing `--store` at a
/// folder of the user's never removes their files.
pub const MARKER: &str = ".folio-store";

/// Makes `dir` a store folder, or checks that it is one: a missing or empty
/// folder gets the marker; a folder with a committed manifest (a store of an
/// older folio) gets it too; any other non-empty folder is refused before
/// anything is written into it.
fn claim_folder(dir: &Path) -> Result<()> {
    let marker = dir.join(MARKER);
    if marker.is_file() {
        return Ok(());
    }
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{} is a file, not a folder; give --store a new or empty folder",
            dir.display()
        );
    }
    let ours = dir.join(manifest::FILE).is_file();
    if dir.is_dir() && !ours {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        let foreign: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != LOCK)
            .take(3)
            .collect();
        if !foreign.is_empty() {
            bail!(
                "{} is not a folio store and is not empty (it holds {}{}); folio will not \
                 write into or delete from it: give --store a new or empty folder",
                dir.display(),
                foreign.join(", "),
                if foreign.len() == 3 { ", …" } else { "" }
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut f = File::create(&marker).with_context(|| format!("creating {}", marker.display()))?;
    std::io::Write::write_all(
        &mut f,
        b"This folder is a folio corpus store (folio ingest). folio deletes files only inside folders that carry this file.\n",
    )?;
    f.sync_all()?;
    Ok(())
}

impl CorpusStore {
    /// Opens a store for searching. Fails if there is no committed store.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self> {
        let manifest = Manifest::load(dir)?.ok_or_else(|| {
            anyhow!(
                "{} is not a corpus store (no {}); run `folio ingest` first",
                dir.display(),
                manifest::FILE
            )
        })?;
        if manifest.has_legacy_vectors() {
            bail!(
                "{} was made by an older folio that kept its vectors in Qdrant's engine, which \
                 one process at a time can open; run `folio ingest --store {}` once to convert \
                 it (it re-embeds its {} chunks from the store; the source files are not needed)",
                dir.display(),
                dir.display(),
                manifest.docs.iter().map(|d| d.n_chunks).sum::<u64>()
            );
        }
        Self::open_parts(dir, manifest, None, options)
    }

    /// Moves a store held open for reading to the last committed manifest,
    /// if a writer has committed since it was opened or last refreshed.
    /// Returns whether anything changed. A writer's own store is current.
    pub fn refresh(&mut self) -> Result<bool> {
        if self.writer_lock.is_some() {
            return Ok(false);
        }
        let Some(latest) = Manifest::load(&self.dir)? else {
            return Ok(false);
        };
        if latest.generation == self.manifest.generation && latest.next_id == self.manifest.next_id
        {
            return Ok(false);
        }
        if latest.embed_model != self.manifest.embed_model
            || latest.qdrant_collection != self.manifest.qdrant_collection
            || latest.vector_index != self.manifest.vector_index
        {
            bail!(
                "{} was rebuilt with other vector settings since it was opened; open it again",
                self.dir.display()
            );
        }
        self.bm25.reload()?;
        self.manifest = latest;
        self.reindex();
        Ok(true)
    }

    /// Opens (or creates) a store for ingesting: takes the writer lock and
    /// removes whatever an interrupted writer left that the manifest does not
    /// own. `dense: false` makes a new store BM25-only.
    pub fn open_writer(
        dir: &Path,
        chunker: ChunkerConfig,
        dense: bool,
        options: StoreOptions,
    ) -> Result<Self> {
        claim_folder(dir)?;
        let lock = take_writer_lock(dir, options.wait_for_writer)?;
        let manifest = match Manifest::load(dir)? {
            Some(m) => {
                if m.chunker != chunker {
                    bail!(
                        "{} was chunked with {:?}; ingest with the same settings or into a new store",
                        dir.display(),
                        m.chunker
                    );
                }
                m
            }
            None => {
                // Never committed, but the marker is there ([`claim_folder`]
                // checked): anything here is a killed first ingest's.
                for sub in ["tantivy", "qdrant", "vectors", "packs"] {
                    let p = dir.join(sub);
                    if p.exists() {
                        std::fs::remove_dir_all(&p)
                            .with_context(|| format!("removing {}", p.display()))?;
                    }
                }
                let collection = options
                    .server_url()
                    .filter(|_| dense)
                    .map(|_| collection_name(dir));
                Manifest::empty(dense.then(|| MODEL_ID.to_string()), collection, chunker)
            }
        };
        let legacy = manifest.has_legacy_vectors();
        if legacy {
            // Qdrant's engine's shard, made by an older folio in this
            // marked folder: its vectors are embedded again below.
            let old = dir.join("qdrant");
            if old.exists() {
                std::fs::remove_dir_all(&old)
                    .with_context(|| format!("removing {}", old.display()))?;
            }
        }
        let mut store = Self::open_parts(dir, manifest, Some(lock), options)?;
        store.reconcile()?;
        if legacy {
            store.embed_all_again()?;
        }
        Ok(store)
    }

    fn open_parts(
        dir: &Path,
        manifest: Manifest,
        lock: Option<File>,
        options: StoreOptions,
    ) -> Result<Self> {
        let bm25 = Bm25Index::open_or_create(&dir.join("tantivy"))?;
        let (vectors, embedder) = match manifest.embed_model.as_deref() {
            None => (None, None),
            Some(MODEL_ID) => {
                let v = open_vectors(dir, &manifest, &options)?;
                let e = Embedder::load(options.threads, options.progress)?;
                (Some(v), Some(e))
            }
            Some(other) => bail!(
                "{} holds embeddings of {other}; this folio embeds with {MODEL_ID}",
                dir.display()
            ),
        };
        std::fs::create_dir_all(dir.join("packs"))?;
        let mut store = Self {
            dir: dir.to_path_buf(),
            manifest,
            bm25,
            vectors,
            embedder,
            ranges: Vec::new(),
            packs: Mutex::new(HashMap::new()),
            writer_lock: lock,
            options,
        };
        store.reindex();
        Ok(store)
    }

    fn reindex(&mut self) {
        self.ranges = self
            .manifest
            .docs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.n_chunks > 0)
            .map(|(i, d)| (d.first_id, d.first_id + d.n_chunks, i))
            .collect();
        self.ranges.sort_unstable();
    }

    /// Deletes index entries the manifest does not own (ids at or above
    /// `next_id`, garbage ranges), pack files no manifest pointed at, and
    /// retired packs past their grace period.
    fn reconcile(&mut self) -> Result<()> {
        let next = self.manifest.next_id;
        let garbage = self.manifest.garbage.clone();
        self.bm25.delete_range(next, None)?;
        for &(a, b) in &garbage {
            self.bm25.delete_range(a, Some(b))?;
        }
        self.bm25.commit()?;
        if let Some(v) = &self.vectors {
            v.delete_range(next, None)?;
            for &(a, b) in &garbage {
                v.delete_range(a, Some(b))?;
            }
            v.commit()?;
        }
        // Packs: those no manifest ever pointed at (a killed ingest's) go
        // now; retired ones once readers of older manifests are done.
        let now = manifest::unix_now();
        let live = self.manifest.live_packs();
        let before = self.manifest.retired_packs.len();
        self.manifest
            .retired_packs
            .retain(|&(_, since)| now.saturating_sub(since) < manifest::PACK_GRACE_SECS);
        let keep: std::collections::HashSet<u64> = live
            .iter()
            .copied()
            .chain(self.manifest.retired_packs.iter().map(|r| r.0))
            .collect();
        if !garbage.is_empty() || self.manifest.retired_packs.len() != before {
            self.manifest.garbage.clear();
            self.manifest.save(&self.dir)?;
        }
        if let Ok(entries) = std::fs::read_dir(self.dir.join("packs")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let n = name
                    .strip_suffix(".jsonl")
                    .and_then(|s| s.parse::<u64>().ok());
                if n.is_none_or(|n| !keep.contains(&n)) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// The manifest as committed.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether the store has dense vectors (else it is BM25-only).
    pub fn has_dense(&self) -> bool {
        self.vectors.is_some()
    }

    /// Number of live chunks.
    pub fn chunk_count(&self) -> u64 {
        self.manifest.docs.iter().map(|d| d.n_chunks).sum()
    }

    /// Chunks in the BM25 index and vectors in the vector store, live or not
    /// (equal to [`chunk_count`](Self::chunk_count) after a clean ingest).
    pub fn index_counts(&self) -> Result<(u64, Option<usize>)> {
        let v = match &self.vectors {
            Some(v) => Some(v.len()?),
            None => None,
        };
        Ok((self.bm25.len(), v))
    }

    /// The document owning chunk `id`, if the manifest has it.
    pub fn doc_of(&self, id: u64) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.0 <= id).checked_sub(1)?;
        let (a, b, doc) = self.ranges[i];
        (a <= id && id < b).then_some(doc)
    }

    /// Reads a document's stored record from its pack.
    pub fn load_doc(&self, doc: usize) -> Result<StoredDoc> {
        let e = &self.manifest.docs[doc];
        let mut packs = self
            .packs
            .lock()
            .map_err(|_| anyhow!("pack cache poisoned"))?;
        let f = match packs.entry(e.pack) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let p = pack_path(&self.dir, e.pack);
                v.insert(File::open(&p).with_context(|| format!("opening {}", p.display()))?)
            }
        };
        // The manifest is a file on disk like any other: check its span
        // against the pack before allocating for it.
        let pack_len = f.metadata()?.len();
        if e.offset.checked_add(e.len).is_none_or(|end| end > pack_len) {
            bail!(
                "the store is damaged: {}'s record (bytes {}+{}) runs past the end of pack {} \
                 ({pack_len} bytes); ingest into a new store",
                e.path,
                e.offset,
                e.len,
                e.pack
            );
        }
        f.seek(SeekFrom::Start(e.offset))?;
        let mut buf = vec![0u8; e.len as usize];
        f.read_exact(&mut buf)?;
        serde_json::from_slice(&buf).with_context(|| format!("pack record of {}", e.path))
    }

    /// The embedder, loaded when the store has dense vectors.
    pub fn embedder(&self) -> Option<&Embedder> {
        self.embedder.as_ref()
    }

    /// Loads a chunker with the store's settings and the MiniLM tokenizer.
    pub fn chunker(&self) -> Result<Chunker> {
        let tok = crate::models::path(&crate::models::MINILM_TOKENIZER, self.options.progress)?;
        Chunker::from_file(&tok, self.manifest.chunker)
    }
}

/// Takes the store's writer lock (an OS file lock, released when the
/// process ends however it ends) and writes who holds it into the lock
/// file, so that a refused writer can say which process to wait for.
fn take_writer_lock(dir: &Path, wait: bool) -> Result<File> {
    let path = dir.join(LOCK);
    // Not truncated before the lock is ours: it names the holder.
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if lock.try_lock().is_err() {
        let holder = describe_holder(&mut lock);
        if !wait {
            bail!(
                "{holder} is ingesting into {}; wait for it to finish (searches and questions \
                 work meanwhile, on the last committed state)",
                dir.display()
            );
        }
        log::info!("waiting for {holder}, which is indexing {}…", dir.display());
        lock.lock()
            .with_context(|| format!("waiting for the lock on {}", path.display()))?;
    }
    let me = format!(
        "pid {}\ncommand {}\n",
        std::process::id(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    lock.set_len(0)?;
    lock.seek(SeekFrom::Start(0))?;
    std::io::Write::write_all(&mut lock, me.as_bytes())?;
    Ok(lock)
}

/// "another folio (pid N: COMMAND)" from a held lock file's contents.
fn describe_holder(lock: &mut File) -> String {
    let mut text = String::new();
    let _ = lock.seek(SeekFrom::Start(0));
    let _ = (&*lock).take(4096).read_to_string(&mut text);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    match (field("pid "), field("command ")) {
        (Some(pid), Some(cmd)) => format!("another folio (pid {pid}: {cmd})"),
        (Some(pid), None) => format!("another folio (pid {pid})"),
        _ => "another folio".to_string(),
    }
}

fn pack_path(dir: &Path, n: u64) -> PathBuf {
    dir.join("packs").join(format!("{n}.jsonl"))
}

impl StoreOptions {
    /// The Qdrant server given, if any (an empty string is none).
    fn server_url(&self) -> Option<String> {
        self.qdrant_url.clone().filter(|u| !u.trim().is_empty())
    }
}

/// Environment variable the command line reads the Qdrant server's URL from
/// when no `--qdrant-url` is given. The library itself never reads it: a
/// cached index folio makes for `--corpus FILES` stays in process.
pub const QDRANT_URL_ENV: &str = "FOLIO_QDRANT_URL";

/// Opens the vector backend the manifest names: the in-process engine in
/// `STORE/qdrant/`, or the manifest's collection on the server given now. A
/// store never switches backend silently: its vectors would be missing.
fn open_vectors(
    dir: &Path,
    manifest: &Manifest,
    options: &StoreOptions,
) -> Result<Box<dyn VectorStore>> {
    if let Some(format) = manifest
        .vector_index
        .as_deref()
        .filter(|f| *f != manifest::LOCAL_VECTORS)
    {
        bail!(
            "{}'s vectors are in a format this folio does not read ({format}; it reads {}); \
             ingest into a new store folder",
            dir.display(),
            manifest::LOCAL_VECTORS
        );
    }
    match (&manifest.qdrant_collection, options.server_url()) {
        (None, None) => Ok(Box::new(HnswStore::open_or_create(
            &dir.join(VECTORS),
            DIMS,
        )?)),
        (Some(collection), Some(url)) => {
            Ok(Box::new(ServerStore::connect(&url, collection, DIMS)?))
        }
        (Some(collection), None) => bail!(
            "{}'s vectors are in the Qdrant server collection {collection}; pass \
             --qdrant-url URL or set {QDRANT_URL_ENV}",
            dir.display()
        ),
        (None, Some(url)) => bail!(
            "{}'s vectors are in folio's in-process engine ({}), not on a Qdrant server; \
             leave out --qdrant-url / {QDRANT_URL_ENV} for this store, or ingest into a new \
             store folder to use {}",
            dir.display(),
            dir.join(VECTORS).display(),
            crate::vector::redact_url(&url)
        ),
    }
}

/// The server collection of a new store: the folder's name plus a hash of
/// its absolute path, so two stores named alike do not share vectors.
fn collection_name(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "corpus".into());
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let digest = Sha256::digest(absolute.to_string_lossy().as_bytes());
    let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("folio_{clean}_{tag}")
}
