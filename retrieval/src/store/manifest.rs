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

/// The state of a store: which files are in it and where their chunks are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// The embedding model of the vectors; `None` for a BM25-only store.
    pub embed_model: Option<String>,
    /// The Qdrant server collection holding the vectors; `None` when they
    /// are in the in-process engine (`STORE/qdrant/`). The server's URL is
    /// not kept: it is given each time (`--qdrant-url`, `FOLIO_QDRANT_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdrant_collection: Option<String>,
    pub chunker: ChunkerConfig,
    /// Every chunk id below this was handed out at some point; ids at or
    /// above it are leftovers of an interrupted ingest.
    pub next_id: u64,
    /// Documents sorted by path.
    pub docs: Vec<DocEntry>,
    /// Id ranges `[start, end)` of replaced or removed documents whose chunks
    /// may still be in the indexes.
    pub garbage: Vec<(u64, u64)>,
}

/// One ingested file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocEntry {
    /// Absolute path of the file.
    pub path: String,
    /// sha256 of the file's bytes: unchanged files are skipped.
    pub sha256: String,
    pub bytes: u64,
    pub format: Format,
    /// Chunk ids `first_id .. first_id + n_chunks`, in document order.
    pub first_id: u64,
    pub n_chunks: u64,
    /// Where the document's [`StoredDoc`] record is: pack number, offset
    /// and length in bytes.
    pub pack: u64,
    pub offset: u64,
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
    pub id: String,
    pub source: String,
    pub text: String,
    pub sections: Vec<Section>,
    pub source_map: SourceMap,
    pub pages: Vec<Span>,
    pub chunks: Vec<Chunk>,
}

impl Manifest {
    /// The manifest of a store with nothing in it yet.
    pub fn empty(
        embed_model: Option<String>,
        qdrant_collection: Option<String>,
        chunker: ChunkerConfig,
    ) -> Self {
        Self {
            version: VERSION,
            embed_model,
            qdrant_collection,
            chunker,
            next_id: 0,
            docs: Vec::new(),
            garbage: Vec::new(),
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
        Ok(Some(m))
    }

    /// Writes the manifest durably and atomically: a temp file, fsync,
    /// rename over the old one, fsync of the folder.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(self)?)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(FILE))?;
        sync_dir(dir)
    }

    /// Index of the entry for `path`, if any (docs are sorted by path).
    pub fn find(&self, path: &str) -> Result<usize, usize> {
        self.docs.binary_search_by(|d| d.path.as_str().cmp(path))
    }
}

/// fsyncs a directory so that renames in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}
