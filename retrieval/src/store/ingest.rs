//! Incremental, crash-safe ingest: unchanged files (same sha256) are skipped,
//! changed ones replaced, deleted ones removed; work is committed in batches,
//! each made durable in the indexes before the manifest points at it.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use folio_corpora::{discover, load_bytes, Format, LoadError, LoadOptions};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::manifest::{sync_dir, DocEntry, StoredDoc};
use super::{pack_path, CorpusStore};

/// Texts per call to the embedder when converting a store.
const EMBED_BATCH: usize = 256;

/// Knobs of an ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// How files are read (the size limit).
    pub load: LoadOptions,
    /// Chunks per committed batch: smaller batches lose less work to a kill
    /// and cost more commits.
    pub commit_every: usize,
    /// Texts per embedding call.
    pub embed_batch: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            load: LoadOptions::default(),
            commit_every: 4096,
            embed_batch: 256,
        }
    }
}

/// A file that was not ingested, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    /// The file's path, as found.
    pub path: String,
    /// Why it was skipped (the load error, in words).
    pub reason: String,
}

/// What an ingest did, for `folio ingest` and `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Files found under the given paths.
    pub files: usize,
    /// Files new to the store.
    pub added: usize,
    /// Files in the store whose bytes changed, re-ingested.
    pub updated: usize,
    /// Files skipped because their sha256 is the one the store has.
    pub unchanged: usize,
    /// Files taken out of the store: gone from disk, or unreadable now.
    pub removed: usize,
    /// Files that were not ingested, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// Chunks made from the files added or updated.
    pub chunks_added: u64,
    /// Chunks embedded and written to the vector store (0 for a BM25-only store).
    pub embedded: u64,
    /// Bytes of normalised text of the documents added or updated.
    pub text_bytes: u64,
    /// Wall-clock time of the whole ingest, in seconds.
    pub seconds: f64,
    /// The part of `seconds` spent embedding.
    pub embed_seconds: f64,
    /// Totals of the store after the ingest.
    pub store_docs: usize,
    /// Chunks in the store after the ingest.
    pub store_chunks: u64,
}

struct Bars {
    files: ProgressBar,
    chunks: ProgressBar,
    embeds: ProgressBar,
    _multi: MultiProgress,
}

impl Bars {
    fn new(show: bool, files: usize, dense: bool) -> Self {
        let multi = MultiProgress::new();
        if !show {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let style = |t: &str| ProgressStyle::with_template(t).expect("static template");
        let f = multi.add(ProgressBar::new(files as u64));
        f.set_style(style("{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg}").progress_chars("=> "));
        f.set_prefix("files");
        let c = multi.add(ProgressBar::no_length());
        c.set_style(style("{prefix:>10} {pos} ({per_sec})"));
        c.set_prefix("chunks");
        let e = if dense {
            let e = multi.add(ProgressBar::no_length());
            e.set_style(style("{prefix:>10} {pos} ({per_sec})"));
            e.set_prefix("embeddings");
            e
        } else {
            ProgressBar::hidden()
        };
        Self {
            files: f,
            chunks: c,
            embeds: e,
            _multi: multi,
        }
    }
}

/// The batch being written: new entries, its pack file, texts to embed.
struct Batch {
    pack_no: u64,
    pack: Option<File>,
    pack_len: u64,
    entries: Vec<DocEntry>,
    removed: Vec<String>,
    to_embed: Vec<(u64, String)>,
    chunks: usize,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl CorpusStore {
    /// Ingests the files under `paths` (files and directories) and removes
    /// from the store the files under them that no longer exist.
    pub fn ingest(&mut self, paths: &[PathBuf], opts: &IngestOptions) -> Result<IngestReport> {
        let t0 = Instant::now();
        let roots: Vec<PathBuf> = paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let (files, unreadable) = discover(&roots);
        let mut report = IngestReport {
            files: files.len(),
            ..Default::default()
        };
        for s in unreadable {
            report.skipped.push(SkippedFile {
                path: s.path.display().to_string(),
                reason: s.error.to_string(),
            });
        }
        let chunker = self.chunker()?;
        let bars = Bars::new(self.options.progress, files.len(), self.vectors.is_some());
        let mut next_id = self.manifest.next_id;
        // Past retired packs too: a reader of an older manifest may read one.
        let mut next_pack = self
            .manifest
            .docs
            .iter()
            .map(|d| d.pack + 1)
            .chain(self.manifest.retired_packs.iter().map(|r| r.0 + 1))
            .max()
            .unwrap_or(0);
        let mut batch = self.new_batch(&mut next_pack);
        let mut seen = std::collections::HashSet::new();
        for path in &files {
            let key = path.display().to_string();
            seen.insert(key.clone());
            bars.files.set_message(key.clone());
            bars.files.inc(1);
            let existing = self.manifest.find(&key).ok();
            let read = folio_corpora::read_bounded(path, opts.load.max_bytes);
            let (bytes, hash) = match read {
                Ok(b) => {
                    let h = sha256_hex(&b);
                    (b, h)
                }
                Err(e) => {
                    self.skip(&mut report, &mut batch, &key, existing, e);
                    continue;
                }
            };
            if existing.is_some_and(|i| self.manifest.docs[i].sha256 == hash) {
                report.unchanged += 1;
                continue;
            }
            let format = Format::from_path(path).unwrap_or(Format::Text);
            let doc = match load_bytes(path, &bytes, format, &opts.load) {
                Ok(d) => d,
                Err(e) => {
                    self.skip(&mut report, &mut batch, &key, existing, e);
                    continue;
                }
            };
            let chunks = chunker.chunk(&doc)?;
            let first_id = next_id;
            for (i, c) in chunks.iter().enumerate() {
                let id = first_id + i as u64;
                let text = c.index_text(&doc.text);
                self.bm25.add(id, &text)?;
                if self.vectors.is_some() {
                    batch.to_embed.push((id, text));
                }
            }
            next_id += chunks.len() as u64;
            bars.chunks.inc(chunks.len() as u64);
            report.chunks_added += chunks.len() as u64;
            report.text_bytes += doc.text.len() as u64;
            if existing.is_some() {
                report.updated += 1;
            } else {
                report.added += 1;
            }
            batch.chunks += chunks.len();
            let n_chunks = chunks.len() as u64;
            let record = serde_json::to_vec(&StoredDoc {
                id: doc.id,
                source: doc.source,
                text: doc.text,
                sections: doc.sections,
                source_map: doc.source_map,
                pages: doc.pages,
                chunks,
            })?;
            let offset = batch.pack_len;
            self.write_pack(&mut batch, &record)?;
            batch.entries.push(DocEntry {
                path: key,
                sha256: hash,
                bytes: bytes.len() as u64,
                format,
                first_id,
                n_chunks,
                pack: batch.pack_no,
                offset,
                len: record.len() as u64,
            });
            if batch.to_embed.len() >= opts.embed_batch {
                self.embed_pending(&mut batch, &bars, &mut report)?;
            }
            if batch.chunks >= opts.commit_every {
                self.commit_batch(&mut batch, next_id, &bars, &mut report)?;
                batch = self.new_batch(&mut next_pack);
            }
        }
        // Files under the given roots that are gone.
        for d in &self.manifest.docs {
            let under = roots.iter().any(|r| {
                let r = r.display().to_string();
                d.path == r || d.path.starts_with(&format!("{}/", r.trim_end_matches('/')))
            });
            if under && !seen.contains(&d.path) {
                batch.removed.push(d.path.clone());
            }
        }
        self.commit_batch(&mut batch, next_id, &bars, &mut report)?;
        self.purge_garbage()?;
        if let Some(v) = &self.vectors {
            v.optimize()?;
        }
        bars.files.finish_and_clear();
        bars.chunks.finish_and_clear();
        bars.embeds.finish_and_clear();
        report.seconds = t0.elapsed().as_secs_f64();
        report.store_docs = self.manifest.docs.len();
        report.store_chunks = self.chunk_count();
        Ok(report)
    }

    fn skip(
        &self,
        report: &mut IngestReport,
        batch: &mut Batch,
        key: &str,
        existing: Option<usize>,
        e: LoadError,
    ) {
        report.skipped.push(SkippedFile {
            path: key.to_string(),
            reason: e.to_string(),
        });
        if existing.is_some() {
            // It was ingested before and is unreadable now: drop the old copy.
            batch.removed.push(key.to_string());
        }
    }

    fn new_batch(&self, next_pack: &mut u64) -> Batch {
        let b = Batch {
            pack_no: *next_pack,
            pack: None,
            pack_len: 0,
            entries: Vec::new(),
            removed: Vec::new(),
            to_embed: Vec::new(),
            chunks: 0,
        };
        *next_pack += 1;
        b
    }

    fn write_pack(&self, batch: &mut Batch, record: &[u8]) -> Result<()> {
        if batch.pack.is_none() {
            let p = pack_path(&self.dir, batch.pack_no);
            batch.pack =
                Some(File::create(&p).with_context(|| format!("creating {}", p.display()))?);
        }
        let f = batch.pack.as_mut().expect("just opened");
        f.write_all(record)?;
        f.write_all(b"\n")?;
        batch.pack_len += record.len() as u64 + 1;
        Ok(())
    }

    /// Converts a store of an older folio: embeds every live chunk again,
    /// from the texts in the packs, into the in-process index, and only then
    /// records the new format in the manifest (a kill before that starts the
    /// conversion over).
    pub(super) fn embed_all_again(&mut self) -> Result<()> {
        let (Some(v), Some(e)) = (&self.vectors, &self.embedder) else {
            return Ok(());
        };
        let bar = if self.options.progress {
            ProgressBar::new(self.chunk_count())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "converting vectors [{bar:30}] {pos}/{len} chunks ({per_sec}, {eta} left)",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        v.delete_range(0, None)?;
        let mut pending: Vec<(u64, String)> = Vec::new();
        let flush = |pending: &mut Vec<(u64, String)>, commit: bool| -> Result<()> {
            if !pending.is_empty() {
                let texts: Vec<&str> = pending.iter().map(|(_, t)| t.as_str()).collect();
                let vecs = e.embed(&texts)?;
                let points: Vec<(u64, Vec<f32>)> =
                    pending.iter().map(|(id, _)| *id).zip(vecs).collect();
                v.upsert(&points)?;
                bar.inc(points.len() as u64);
                pending.clear();
            }
            if commit {
                v.commit()?;
            }
            Ok(())
        };
        let mut since_commit = 0;
        for doc in 0..self.manifest.docs.len() {
            let stored = self.load_doc(doc)?;
            let first = self.manifest.docs[doc].first_id;
            for (i, c) in stored.chunks.iter().enumerate() {
                pending.push((first + i as u64, c.index_text(&stored.text)));
                if pending.len() == EMBED_BATCH {
                    since_commit += EMBED_BATCH;
                    flush(&mut pending, since_commit >= 4096)?;
                    since_commit %= 4096;
                }
            }
        }
        flush(&mut pending, true)?;
        bar.finish_and_clear();
        self.manifest.vector_index = Some(super::manifest::LOCAL_VECTORS.to_string());
        self.manifest.save(&self.dir)
    }

    fn embed_pending(
        &self,
        batch: &mut Batch,
        bars: &Bars,
        report: &mut IngestReport,
    ) -> Result<()> {
        let (Some(v), Some(e)) = (&self.vectors, &self.embedder) else {
            batch.to_embed.clear();
            return Ok(());
        };
        if batch.to_embed.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let texts: Vec<&str> = batch.to_embed.iter().map(|(_, t)| t.as_str()).collect();
        let vecs = e.embed(&texts)?;
        report.embed_seconds += t.elapsed().as_secs_f64();
        let points: Vec<(u64, Vec<f32>)> =
            batch.to_embed.iter().map(|(id, _)| *id).zip(vecs).collect();
        v.upsert(&points)?;
        report.embedded += points.len() as u64;
        bars.embeds.inc(points.len() as u64);
        batch.to_embed.clear();
        Ok(())
    }

    /// Makes the batch durable in the indexes and the pack, then publishes it
    /// with one atomic manifest write.
    fn commit_batch(
        &mut self,
        batch: &mut Batch,
        next_id: u64,
        bars: &Bars,
        report: &mut IngestReport,
    ) -> Result<()> {
        self.embed_pending(batch, bars, report)?;
        if batch.entries.is_empty() && batch.removed.is_empty() {
            return Ok(());
        }
        self.bm25.commit()?;
        if let Some(v) = &self.vectors {
            v.commit()?;
        }
        if let Some(f) = batch.pack.take() {
            f.sync_all()?;
            sync_dir(&self.dir.join("packs"))?;
        }
        let m = &mut self.manifest;
        let live_before = m.live_packs();
        for path in batch.removed.drain(..) {
            if let Ok(i) = m.find(&path) {
                let old = m.docs.remove(i);
                m.garbage.push(old.ids());
                report.removed += 1;
            }
        }
        for e in batch.entries.drain(..) {
            match m.find(&e.path) {
                Ok(i) => {
                    let old = std::mem::replace(&mut m.docs[i], e);
                    m.garbage.push(old.ids());
                }
                Err(i) => m.docs.insert(i, e),
            }
        }
        m.next_id = next_id;
        m.retire_packs(&live_before);
        m.save(&self.dir)?;
        self.reindex();
        Ok(())
    }

    /// Deletes garbage ranges from the indexes, then clears them from the
    /// manifest.
    fn purge_garbage(&mut self) -> Result<()> {
        if self.manifest.garbage.is_empty() {
            return Ok(());
        }
        for &(a, b) in &self.manifest.garbage {
            self.bm25.delete_range(a, Some(b))?;
            if let Some(v) = &self.vectors {
                v.delete_range(a, Some(b))?;
            }
        }
        self.bm25.commit()?;
        if let Some(v) = &self.vectors {
            v.commit()?;
        }
        self.manifest.garbage.clear();
        self.manifest.save(&self.dir)
    }
}
