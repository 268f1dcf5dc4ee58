//! The in-process vector index: hannoy's HNSW graph (the successor of
//! Meilisearch's arroy, by its authors) in an LMDB environment in the store
//! folder.
//!
//! Why LMDB: its memory-mapped MVCC lets any number of processes read while
//! one writes. A read transaction sees the last committed state for as long
//! as it lives and never blocks the writer; a commit is atomic. Qdrant's
//! engine (`qdrant-edge`) takes an exclusive lock on its shard and writes on
//! close, so a store on it served one process at a time.
//!
//! Invariants:
//! - Readers open a read transaction per search and drop it before
//!   returning, so a long-lived reader (the TUI) neither pins old pages nor
//!   misses later commits.
//! - The writer applies every change since the last commit in one write
//!   transaction that also updates the graph, so a committed state is
//!   always searchable (hannoy refuses to read an index that needs a build).
//! - One LMDB environment per folder per process (LMDB forbids opening a
//!   file twice in one process); [`shared_env`] hands out the open one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use anyhow::{anyhow, bail, Context, Result};
use hannoy::distances::Cosine;
use hannoy::{Reader, Writer};
use heed::{Env, EnvOpenOptions};
use rand_hnsw::rngs::StdRng;
use rand_hnsw::SeedableRng;

use super::VectorStore;

/// The hannoy index number inside the LMDB environment (one per store).
const INDEX: u16 = 0;

/// Address space LMDB reserves for the file: it bounds the store, not its
/// memory (the file grows with the vectors). 64 GiB holds about 20 million
/// 384-dimensional vectors with their graph.
const MAP_SIZE: usize = 64 << 30;

/// HNSW links per node (upper layers, layer 0): hannoy's example values.
const LINKS: usize = 16;
const LINKS_0: usize = 32;
/// Candidates kept while building, and at least while searching (more for
/// a deeper search): recall against exact search is measured in the tests
/// and in BENCHMARKS.md.
const EF_CONSTRUCTION: usize = 100;
const EF_SEARCH: usize = 100;

type Database = hannoy::Database<'static, Cosine>;

/// Vectors in a hannoy HNSW graph on LMDB, in a folder of the store.
pub struct HnswStore {
    env: Arc<Env>,
    db: Database,
    dims: usize,
    dir: PathBuf,
    /// Changes since the last commit, applied in order by [`commit`].
    pending: Mutex<Vec<Change>>,
}

enum Change {
    Upsert(Vec<(u64, Vec<f32>)>),
    Delete(u64, Option<u64>),
}

static ENVS: LazyLock<Mutex<HashMap<PathBuf, Weak<Env>>>> = LazyLock::new(Default::default);

/// The process's LMDB environment for `dir`, opened if no store in this
/// process holds it.
fn shared_env(dir: &Path) -> Result<Arc<Env>> {
    let key = dir
        .canonicalize()
        .with_context(|| format!("opening {}", dir.display()))?;
    let mut envs = ENVS
        .lock()
        .map_err(|_| anyhow!("vector store table poisoned"))?;
    if let Some(env) = envs.get(&key).and_then(Weak::upgrade) {
        return Ok(env);
    }
    // A store dropped on another thread may still be closing its
    // environment: heed refuses to reopen it until that finishes.
    let mut tries = 0;
    let env = loop {
        // SAFETY: LMDB's rule is that a process opens an environment once
        // and nothing but LMDB writes its files. The table above keeps one
        // `Env` per canonical path in this process, and the folder belongs
        // to the store (folio writes nothing else into it).
        let opened = unsafe { EnvOpenOptions::new().map_size(MAP_SIZE).open(&key) };
        match opened {
            Err(heed::Error::EnvAlreadyOpened) if tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.with_context(|| format!("opening LMDB in {}", key.display()))?,
        }
    };
    let env = Arc::new(env);
    envs.insert(key, Arc::downgrade(&env));
    Ok(env)
}

fn item_id(id: u64) -> Result<u32> {
    u32::try_from(id).map_err(|_| {
        anyhow!(
            "chunk id {id} is past the in-process vector index's 2^32 ids; ingest into a new \
             store, or keep vectors on a Qdrant server (--qdrant-url)"
        )
    })
}

fn lmdb_err(e: hannoy::Error) -> anyhow::Error {
    match e {
        hannoy::Error::Heed(heed::Error::Mdb(heed::MdbError::MapFull)) => anyhow!(
            "the in-process vector index is full ({} GiB); keep this corpus's vectors on a \
             Qdrant server (--qdrant-url)",
            MAP_SIZE >> 30
        ),
        e => anyhow!("vector index: {e}"),
    }
}

impl HnswStore {
    /// Opens the index in `dir` (creating the folder and an empty index if
    /// there is none) for `dims`-dimensional cosine vectors.
    pub fn open_or_create(dir: &Path, dims: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let env = shared_env(dir)?;
        // Reader slots of killed processes would otherwise keep old pages
        // alive; LMDB checks each slot's pid.
        env.clear_stale_readers()
            .with_context(|| format!("checking readers of {}", dir.display()))?;
        let rtxn = env.read_txn()?;
        let db = env
            .open_databases_and_commit(rtxn, |opener, rtxn| -> heed::Result<_> {
                Ok(heed::CommitOrAbort::<_, ()>::Commit(
                    opener.open_database(rtxn, None)?,
                ))
            })?
            .unwrap_commit()
            .ok_or_else(|| anyhow!("{} has no LMDB main database", dir.display()))?;
        let store = Self {
            env,
            db,
            dims,
            dir: dir.to_path_buf(),
            pending: Mutex::new(Vec::new()),
        };
        let rtxn = store.env.read_txn()?;
        match Reader::open(&rtxn, INDEX, store.db) {
            Ok(r) if r.dimensions() != dims => bail!(
                "{} holds {}-dimensional vectors, not {dims}",
                dir.display(),
                r.dimensions()
            ),
            Ok(_) | Err(hannoy::Error::MissingMetadata(_)) => {}
            Err(e) => return Err(lmdb_err(e)),
        }
        drop(rtxn);
        Ok(store)
    }

    /// Applies the pending changes and updates the graph in one write
    /// transaction.
    fn apply(&self, changes: Vec<Change>) -> Result<()> {
        let mut wtxn = self.env.write_txn()?;
        let writer = Writer::<Cosine>::new(self.db, INDEX, self.dims);
        let mut ids = match Reader::open(&wtxn, INDEX, self.db) {
            Ok(r) => r.item_ids().clone(),
            Err(hannoy::Error::MissingMetadata(_)) => Default::default(),
            Err(e) => return Err(lmdb_err(e)),
        };
        for change in changes {
            match change {
                Change::Upsert(points) => {
                    for (id, v) in points {
                        let id = item_id(id)?;
                        writer.add_item(&mut wtxn, id, &v).map_err(lmdb_err)?;
                        ids.insert(id);
                    }
                }
                Change::Delete(start, end) => {
                    let doomed: Vec<u32> = ids
                        .iter()
                        .filter(|&i| u64::from(i) >= start && end.is_none_or(|e| u64::from(i) < e))
                        .collect();
                    for id in doomed {
                        writer.del_item(&mut wtxn, id).map_err(lmdb_err)?;
                        ids.remove(id);
                    }
                }
            }
        }
        // A fixed seed ("folio" in ASCII): the same vectors build the same graph.
        let mut rng = StdRng::seed_from_u64(0x0066_6f6c_696f);
        writer
            .builder(&mut rng)
            .ef_construction(EF_CONSTRUCTION)
            .build::<LINKS, LINKS_0>(&mut wtxn)
            .map_err(lmdb_err)?;
        wtxn.commit().map_err(|e| lmdb_err(e.into()))
    }
}

impl VectorStore for HnswStore {
    fn upsert(&self, points: &[(u64, Vec<f32>)]) -> Result<()> {
        for (id, v) in points {
            item_id(*id)?;
            if v.len() != self.dims {
                bail!(
                    "vector of chunk {id} has {} dimensions, not {}",
                    v.len(),
                    self.dims
                );
            }
        }
        self.pending
            .lock()
            .map_err(|_| anyhow!("vector store poisoned"))?
            .push(Change::Upsert(points.to_vec()));
        Ok(())
    }

    fn delete_range(&self, start: u64, end: Option<u64>) -> Result<()> {
        self.pending
            .lock()
            .map_err(|_| anyhow!("vector store poisoned"))?
            .push(Change::Delete(start, end));
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let rtxn = self.env.read_txn()?;
        let reader = match Reader::open(&rtxn, INDEX, self.db) {
            Ok(r) => r,
            Err(hannoy::Error::MissingMetadata(_)) => return Ok(Vec::new()),
            Err(e) => return Err(lmdb_err(e)),
        };
        let hits = reader
            .nns(k)
            .ef_search(EF_SEARCH.max(k))
            .by_vector(&rtxn, query)
            .map_err(lmdb_err)?
            .into_nns();
        // hannoy's cosine distance is (1 - cos) / 2.
        Ok(hits
            .into_iter()
            .map(|(id, d)| (u64::from(id), 1.0 - 2.0 * d))
            .collect())
    }

    fn commit(&self) -> Result<()> {
        let changes = std::mem::take(
            &mut *self
                .pending
                .lock()
                .map_err(|_| anyhow!("vector store poisoned"))?,
        );
        if changes.is_empty() {
            return Ok(());
        }
        self.apply(changes)
    }

    fn len(&self) -> Result<usize> {
        let rtxn = self.env.read_txn()?;
        match Reader::open(&rtxn, INDEX, self.db) {
            Ok(r) => Ok(r.n_items() as usize),
            Err(hannoy::Error::MissingMetadata(_)) => Ok(0),
            Err(e) => Err(lmdb_err(e)),
        }
    }

    fn describe(&self) -> String {
        format!("hannoy HNSW on LMDB at {}", self.dir.display())
    }
}
