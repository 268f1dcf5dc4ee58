//! The corpus manifest: the single source of truth of a store. A chunk
//! exists iff a manifest entry's id range holds it; the indexes may hold
//! more (a killed ingest's work), which searches ignore and the next writer
//! deletes. The manifest is replaced only by an atomic rename.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use folio_corpora::{Format, Section, SourceMap, Span};
use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, ChunkerConfig};

/// Bumped when the layout changes incompatibly.
pub const VERSION: u32 = 1;
/// File name of the manifest in a store folder.
pub const FILE: &str = "manifest.json";
/// [`Manifest::vector_index`] of stores whose vectors are a hannoy HNSW graph on
/// LMDB in `STORE/vectors/`.
pub const LOCAL_VECTORS: &str = "hannoy-lmdb";

/// The state of a store: which files are in it and where their chunks are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version the store was written with; only [`VERSION`] is read.
    pub version: u32,
    /// The embedding model of the vectors; `None` for a BM25-only store.
    pub embed_model: Option<String>,
    /// The Qdrant server collection holding the vectors; `None` when they
    /// are in the in-process engine (`STORE/qdrant/`). The server's URL is
    /// not kept: it is given each time (`--qdrant-url`, `FOLIO_QDRANT_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdrant_collection: Option<String>,
    /// The in-process vector index's format ([`LOCAL_VECTORS`]) when the
    /// vectors are in `STORE/vectors/`. A dense store without it and without
    /// a collection was made by an older folio, whose vectors were in
    /// Qdrant's engine (`STORE/qdrant/`); the next ingest converts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_index: Option<String>,
    /// Bumped by every save: readers holding a store open compare it to
    /// see that a writer has committed since.
    #[serde(default)]
    pub generation: u64,
    /// How the documents were chunked; later ingests must use the same settings.
    pub chunker: ChunkerConfig,
    /// Every chunk id below this was handed out at some point; ids at or
    /// above it are leftovers of an interrupted ingest.
    pub next_id: u64,
    /// Documents sorted by path.
    pub docs: Vec<DocEntry>,
    /// Id ranges `[start, end)` of replaced or removed documents whose chunks
    /// may still be in the indexes.
    pub garbage: Vec<(u64, u64)>,
    /// Packs no document points at any more, with when (Unix seconds) they
    /// stopped being used. A reader that opened an older manifest may still
    /// read them, so a writer deletes them only [`PACK_GRACE_SECS`] later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_packs: Vec<(u64, u64)>,
}

/// How long a pack outlives the last manifest that used it: longer than a
/// reader works from one manifest (commands finish, the TUI refreshes
/// before each question).
pub const PACK_GRACE_SECS: u64 = 3600;

/// One ingested file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocEntry {
    /// Absolute path of the file.
    pub path: String,
    /// sha256 of the file's bytes: unchanged files are skipped.
    pub sha256: String,
    /// Size of the file in bytes when it was ingested.
    pub bytes: u64,
    /// How the file was read.
    pub format: Format,
    /// Chunk ids `first_id .. first_id + n_chunks`, in document order.
    pub first_id: u64,
    /// Number of chunks the document was cut into.
    pub n_chunks: u64,
    /// Where the document's [`StoredDoc`] record is: pack number, offset
    /// and length in bytes.
    pub pack: u64,
    /// Byte offset of the record in the pack file.
    pub offset: u64,
    /// Length of the record in bytes.
    pub len: u64,
}

impl DocEntry {
    /// The chunk id range of this document.
    pub fn ids(&self) -> (u64, u64) {
        (self.first_id, self.first_id + self.n_chunks)
    }
}

/// What a store keeps of a document: its text, structure and chunks (one
/// JSON line in a pack file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredDoc {
    /// The document's id (its file name).
    pub id: String,
    /// Where the text came from: the path it was loaded from.
    pub source: String,
    /// The normalised text that every span and chunk indexes.
    pub text: String,
    /// Sections under headings, in document order.
    pub sections: Vec<Section>,
    /// Text offsets → source file bytes, for citations (empty for PDF).
    pub source_map: SourceMap,
    /// The span of each PDF page in `text` (empty for other formats).
    pub pages: Vec<Span>,
    /// The chunks, in document order; chunk `i` has id `first_id + i`.
    pub chunks: Vec<Chunk>,
}

impl Manifest {
    /// The manifest of a store with nothing in it yet.
    pub fn empty(
        embed_model: Option<String>,
        qdrant_collection: Option<String>,
        chunker: ChunkerConfig,
    ) -> Self {
        let vector_index = (embed_model.is_some() && qdrant_collection.is_none())
            .then(|| LOCAL_VECTORS.to_string());
        Self {
            version: VERSION,
            embed_model,
            qdrant_collection,
            vector_index,
            generation: 0,
            chunker,
            next_id: 0,
            docs: Vec::new(),
            garbage: Vec::new(),
            retired_packs: Vec::new(),
        }
    }

    /// Reads the manifest of `dir`; `None` when the store has never
    /// committed anything.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(FILE);
        let raw = match std::fs::read(&path) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let m: Manifest = serde_json::from_slice(&raw)
            .with_context(|| format!("{} is not a folio manifest", path.display()))?;
        anyhow::ensure!(
            m.version == VERSION,
            "{} has layout version {} (this folio reads {VERSION}); re-ingest into a new store",
            path.display(),
            m.version
        );
        m.check()
            .with_context(|| format!("{} is damaged; ingest into a new store", path.display()))?;
        Ok(Some(m))
    }

    /// Writes the manifest durably and atomically: a temp file, fsync,
    /// rename over the old one, fsync of the folder.
    pub fn save(&mut self, dir: &Path) -> Result<()> {
        self.generation += 1;
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(self)?)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(FILE))?;
        sync_dir(dir)
    }

    /// Checks what the rest of the store relies on: every document's chunk
    /// ids and pack span are ranges that do not overflow, its chunks were
    /// handed out (below `next_id`), and garbage ranges are ordered.
    fn check(&self) -> Result<()> {
        for d in &self.docs {
            let end = d.first_id.checked_add(d.n_chunks);
            anyhow::ensure!(
                end.is_some_and(|e| e <= self.next_id),
                "{} claims chunks {}+{} beyond the {} handed out",
                d.path,
                d.first_id,
                d.n_chunks,
                self.next_id
            );
            anyhow::ensure!(
                d.offset.checked_add(d.len).is_some(),
                "{} claims bytes {}+{} of pack {}",
                d.path,
                d.offset,
                d.len,
                d.pack
            );
        }
        for &(a, b) in &self.garbage {
            anyhow::ensure!(a <= b, "a garbage range {a}..{b} runs backwards");
        }
        Ok(())
    }

    /// Packs some document points at.
    pub fn live_packs(&self) -> std::collections::HashSet<u64> {
        self.docs.iter().map(|d| d.pack).collect()
    }

    /// Records packs that were live before a change and are not now.
    pub fn retire_packs(&mut self, before: &std::collections::HashSet<u64>) {
        let now = unix_now();
        let live = self.live_packs();
        for &p in before {
            if !live.contains(&p) && !self.retired_packs.iter().any(|r| r.0 == p) {
                self.retired_packs.push((p, now));
            }
        }
    }

    /// Whether this is a dense store of an older folio, with its vectors
    /// in Qdrant's engine (`STORE/qdrant/`), one process at a time.
    pub fn has_legacy_vectors(&self) -> bool {
        self.embed_model.is_some()
            && self.qdrant_collection.is_none()
            && self.vector_index.is_none()
    }

    /// Index of the entry for `path`, if any (docs are sorted by path).
    pub fn find(&self, path: &str) -> Result<usize, usize> {
        self.docs.binary_search_by(|d| d.path.as_str().cmp(path))
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// fsyncs a directory so that renames in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}
