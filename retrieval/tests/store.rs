//! The corpus store end to end with the real tantivy index, the real
//! fastembed model and the real in-process vector index (HNSW on LMDB) on real text.

mod common;

use folio_retrieval::vector::{HnswStore, VectorStore};
use folio_retrieval::{ChunkerConfig, CorpusStore, IngestOptions, Mode, StoreOptions};
use rand::{Rng, SeedableRng};

fn opts() -> StoreOptions {
    StoreOptions {
        threads: Some(2),
        ..Default::default()
    }
}

fn small_chunks() -> ChunkerConfig {
    ChunkerConfig {
        max_tokens: 96,
        overlap_tokens: 16,
    }
}

#[test]
fn ingest_search_and_incremental_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let files = common::jargon_files(&docs, 4, 6000);
    std::fs::write(
        docs.join("tides.md"),
        "# Tides\n\nThe harbour of Saint-Malo has some of the largest tidal ranges in Europe, \
         often above twelve metres.\n\n## Safety\n\nWalkers crossing to the Grand Bé island must \
         return before the sea covers the causeway.\n",
    )
    .unwrap();
    let store_dir = tmp.path().join("store");
    let ingest_opts = IngestOptions {
        commit_every: 50,
        ..Default::default()
    };

    let mut store = CorpusStore::open_writer(&store_dir, small_chunks(), true, opts()).unwrap();
    let r = store
        .ingest(std::slice::from_ref(&docs), &ingest_opts)
        .unwrap();
    assert_eq!((r.files, r.added, r.skipped.len()), (5, 5, 0), "{r:?}");
    assert!(r.chunks_added > 20);
    assert_eq!(r.embedded, r.chunks_added);
    let total = store.chunk_count();
    assert_eq!(store.index_counts().unwrap(), (total, Some(total as usize)));

    // Each retriever finds the Jargon File's "fork bunny" for a paraphrase.
    for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid] {
        let rep = store
            .search("what is another name for a fork bomb", mode, 3)
            .unwrap();
        assert!(
            rep.hits.iter().any(|h| h.text.contains("fork bunny")),
            "{mode:?}: {:#?}",
            rep.hits.iter().map(|h| &h.text).collect::<Vec<_>>()
        );
    }
    // Dense retrieval works without shared words; hybrid reports both lists.
    let rep = store
        .search("coastal water level differences", Mode::Dense, 2)
        .unwrap();
    assert!(rep.hits[0].path.ends_with("tides.md"), "{:?}", rep.hits[0]);
    let rep = store.search("Grand Bé causeway", Mode::Hybrid, 3).unwrap();
    let top = &rep.hits[0];
    assert!(top.bm25.is_some() && top.dense.is_some(), "{top:?}");
    assert_eq!(top.heading_path, ["Tides", "Safety"]);
    let src = std::fs::read(docs.join("tides.md")).unwrap();
    let s = top.source_span.unwrap();
    assert_eq!(&src[s.start..s.end], top.text.as_bytes());

    // Order-preserving assembly: document order, overlapping chunks merged.
    let rep = store.search("fork", Mode::Bm25, 6).unwrap();
    let passages = store.assemble(&rep.hits).unwrap();
    for w in passages.windows(2) {
        assert!(
            w[0].path < w[1].path || (w[0].path == w[1].path && w[0].span.end < w[1].span.start)
        );
    }
    let merged: usize = passages.iter().map(|p| p.chunk_ids.len()).sum();
    assert_eq!(merged, rep.hits.len());
    drop(store);

    // Re-ingest: nothing changes. Then edit one file and delete another.
    let mut store = CorpusStore::open_writer(&store_dir, small_chunks(), true, opts()).unwrap();
    let r = store
        .ingest(std::slice::from_ref(&docs), &ingest_opts)
        .unwrap();
    assert_eq!(
        (r.unchanged, r.added, r.updated, r.chunks_added),
        (5, 0, 0, 0)
    );
    std::fs::write(
        &files[0],
        "Zymurgy is the chemistry of fermentation in brewing.\n",
    )
    .unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    let r = store
        .ingest(std::slice::from_ref(&docs), &ingest_opts)
        .unwrap();
    assert_eq!((r.unchanged, r.updated, r.removed), (3, 1, 1), "{r:?}");
    let total = store.chunk_count();
    assert_eq!(store.index_counts().unwrap(), (total, Some(total as usize)));
    let rep = store.search("zymurgy brewing", Mode::Hybrid, 1).unwrap();
    assert!(rep.hits[0].text.starts_with("Zymurgy"));
    drop(store);

    // A reader sees the same. One writer at a time: a second one is refused,
    // clearly; readers are not, even while a writer holds the store.
    let reader = CorpusStore::open(&store_dir, opts()).unwrap();
    assert_eq!(reader.chunk_count(), total);
    drop(reader);
    let writer = CorpusStore::open_writer(&store_dir, small_chunks(), true, opts()).unwrap();
    let again = CorpusStore::open_writer(&store_dir, small_chunks(), true, opts());
    let msg = again.err().unwrap().to_string();
    assert!(
        msg.contains("another folio (pid") && msg.contains("is ingesting"),
        "{msg}"
    );
    let reader = CorpusStore::open(&store_dir, opts()).unwrap();
    let rep = reader.search("zymurgy brewing", Mode::Hybrid, 1).unwrap();
    assert!(rep.hits[0].text.starts_with("Zymurgy"));
    drop(writer);
}

#[test]
fn bm25_only_store_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    common::jargon_files(&docs, 2, 3000);
    std::fs::write(docs.join("bad.txt"), b"\xff\xfe\x00binary").unwrap();
    let dir = tmp.path().join("store");
    let mut store = CorpusStore::open_writer(&dir, small_chunks(), false, opts()).unwrap();
    let r = store.ingest(&[docs], &IngestOptions::default()).unwrap();
    assert_eq!((r.added, r.skipped.len(), r.embedded), (2, 1, 0));
    assert!(r.skipped[0].reason.contains("binary"), "{:?}", r.skipped);
    assert!(!store.has_dense());
    assert!(!store.search("fork", Mode::Bm25, 3).unwrap().hits.is_empty());
    assert!(store.search("fork", Mode::Hybrid, 3).is_err());
    drop(store);
    let other = ChunkerConfig {
        max_tokens: 50,
        overlap_tokens: 5,
    };
    assert!(CorpusStore::open_writer(&dir, other, false, opts()).is_err());
}

#[test]
fn vector_index_upserts_searches_deletes_and_persists() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let dims = 32;
    let points: Vec<(u64, Vec<f32>)> = (0..300u64)
        .map(|id| {
            (
                id,
                (0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
            )
        })
        .collect();
    {
        let store = HnswStore::open_or_create(tmp.path(), dims).unwrap();
        store.upsert(&points).unwrap();
        store.commit().unwrap();
        assert_eq!(store.len().unwrap(), 300);
        let hits = store.search(&points[42].1, 3).unwrap();
        assert_eq!(hits[0].0, 42);
        assert!((hits[0].1 - 1.0).abs() < 1e-4, "{hits:?}");
        store.delete_range(100, Some(200)).unwrap();
        store.delete_range(250, None).unwrap();
        assert_eq!(
            store.len().unwrap(),
            300,
            "changes show only once committed"
        );
        store.commit().unwrap();
        assert_eq!(store.len().unwrap(), 150);
        let hits = store.search(&points[150].1, 5).unwrap();
        assert!(hits
            .iter()
            .all(|(id, _)| *id < 100 || (200..250).contains(id)));
    }
    let store = HnswStore::open_or_create(tmp.path(), dims).unwrap();
    assert_eq!(store.len().unwrap(), 150);
    assert_eq!(store.search(&points[7].1, 1).unwrap()[0].0, 7);
}

/// The in-process index is approximate (an HNSW graph): its top-10 must
/// hold nearly all of the exact top-10, on embedding-sized vectors that
/// cluster by topic as sentence embeddings do (uniform random vectors, with
/// no structure at all, are a case no embedding model produces), with a
/// reader opened before the writer's commits seeing them.
#[test]
fn vector_index_recall_against_exact_search() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let dims = 384;
    let normalize = |v: Vec<f32>| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let mut noise = |scale: f32| -> Vec<f32> {
        (0..dims)
            .map(|_| scale * rng.random_range(-1.0f32..1.0))
            .collect()
    };
    let topics: Vec<Vec<f32>> = (0..40).map(|_| noise(1.0)).collect();
    let near = |topic: &Vec<f32>, n: Vec<f32>| {
        normalize(topic.iter().zip(n).map(|(a, b)| a + b).collect())
    };
    let points: Vec<(u64, Vec<f32>)> = (0..3000u64)
        .map(|id| (id, near(&topics[id as usize % 40], noise(0.6))))
        .collect();
    let reader = HnswStore::open_or_create(tmp.path(), dims).unwrap();
    let writer = HnswStore::open_or_create(tmp.path(), dims).unwrap();
    for part in points.chunks(1000) {
        writer.upsert(part).unwrap();
        writer.commit().unwrap();
    }
    assert_eq!(reader.len().unwrap(), 3000);
    let (mut found, mut wanted) = (0, 0);
    for i in 0..50 {
        let q = near(&topics[i % 40], noise(0.6));
        let mut exact: Vec<(u64, f32)> = points
            .iter()
            .map(|(id, v)| (*id, v.iter().zip(&q).map(|(a, b)| a * b).sum()))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let got = reader.search(&q, 10).unwrap();
        assert_eq!(got.len(), 10);
        for (id, score) in &got {
            let truth: f32 = points[*id as usize]
                .1
                .iter()
                .zip(&q)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (score - truth).abs() < 1e-4,
                "cosine of {id}: {score} vs {truth}"
            );
        }
        wanted += 10;
        found += exact[..10]
            .iter()
            .filter(|(id, _)| got.iter().any(|(g, _)| g == id))
            .count();
    }
    let recall = found as f64 / wanted as f64;
    eprintln!("recall@10 = {recall:.3}");
    assert!(recall >= 0.9, "recall@10 {recall:.3}");
}

/// `--store` pointed at a folder of the user's that holds folders named like
/// a store's parts (`packs/`, `tantivy/`, `qdrant/`) must not delete them: an
/// unmarked non-empty folder is refused and left byte for byte as it was.
#[test]
fn a_foreign_folder_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    for sub in ["packs", "tantivy", "qdrant"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join("notes.txt"), sub).unwrap();
    }
    let err = CorpusStore::open_writer(&dir, small_chunks(), false, opts())
        .err()
        .expect("a foreign folder must be refused")
        .to_string();
    assert!(err.contains("not a folio store"), "{err}");
    for sub in ["packs", "tantivy", "qdrant"] {
        let kept = std::fs::read_to_string(dir.join(sub).join("notes.txt")).unwrap();
        assert_eq!(kept, sub);
    }
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(names.len(), 3, "nothing was written into the folder");

    // A plain file given as the store is refused too, not overwritten.
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "keep me").unwrap();
    assert!(CorpusStore::open_writer(&file, small_chunks(), false, opts()).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // An empty folder becomes a store, and a killed first ingest (marker,
    // parts, no manifest) is cleaned up by the next writer.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    drop(CorpusStore::open_writer(&fresh, small_chunks(), false, opts()).unwrap());
    assert!(fresh.join(folio_retrieval::store::MARKER).is_file());
    std::fs::write(fresh.join("packs").join("7.jsonl"), "half").unwrap();
    drop(CorpusStore::open_writer(&fresh, small_chunks(), false, opts()).unwrap());
    assert!(!fresh.join("packs").join("7.jsonl").exists());
}

/// A manifest whose record span runs past its pack (a damaged or crafted
/// store) is an error on reading, not an allocation of its length.
#[test]
fn a_record_span_past_its_pack_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    common::jargon_files(&docs, 1, 2000);
    let dir = tmp.path().join("store");
    let mut store = CorpusStore::open_writer(&dir, small_chunks(), false, opts()).unwrap();
    store.ingest(&[docs], &IngestOptions::default()).unwrap();
    drop(store);
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["docs"][0]["len"] = serde_json::json!(1_000_000_000_000_000u64);
    std::fs::write(&path, manifest.to_string()).unwrap();
    let store = CorpusStore::open(&dir, opts()).unwrap();
    let err = store.load_doc(0).unwrap_err().to_string();
    assert!(err.contains("runs past the end of pack"), "{err}");
}

/// A store of an older folio (vectors in Qdrant's engine under `qdrant/`, no
/// `vector_index` in the manifest) is refused by readers with the command
/// that converts it, and the next ingest converts it from its own packs: the
/// old shard is gone, every live chunk has a vector, dense search works.
#[test]
fn an_older_store_is_converted_by_the_next_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    common::jargon_files(&docs, 2, 3000);
    let dir = tmp.path().join("store");
    let mut store = CorpusStore::open_writer(&dir, small_chunks(), true, opts()).unwrap();
    store
        .ingest(std::slice::from_ref(&docs), &IngestOptions::default())
        .unwrap();
    let total = store.chunk_count();
    drop(store);

    // Make it look as an older folio left it.
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("vector_index");
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    std::fs::remove_dir_all(dir.join("vectors")).unwrap();
    std::fs::create_dir_all(dir.join("qdrant").join("segments")).unwrap();
    std::fs::write(dir.join("qdrant").join("edge_config.json"), "{}").unwrap();
    // The source files are gone: the conversion must not need them.
    std::fs::remove_dir_all(&docs).unwrap();

    let err = CorpusStore::open(&dir, opts())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("older folio") && err.contains("folio ingest --store"),
        "{err}"
    );
    drop(CorpusStore::open_writer(&dir, small_chunks(), true, opts()).unwrap());
    assert!(!dir.join("qdrant").exists());
    let store = CorpusStore::open(&dir, opts()).unwrap();
    assert_eq!(store.chunk_count(), total);
    assert_eq!(store.index_counts().unwrap(), (total, Some(total as usize)));
    let rep = store
        .search("what is another name for a fork bomb", Mode::Dense, 3)
        .unwrap();
    assert!(
        rep.hits.iter().any(|h| h.text.contains("fork bunny")),
        "{:#?}",
        rep.hits
    );
}

/// A reader that opened an older manifest keeps working while a writer
/// replaces documents and starts again: the packs it may read are retired,
/// not deleted, and `refresh` moves it to the new state.
#[test]
fn a_reader_of_an_older_manifest_survives_later_ingests() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let files = common::jargon_files(&docs, 3, 2000);
    let dir = tmp.path().join("store");
    let ingest = |dir: &std::path::Path| {
        let mut w = CorpusStore::open_writer(dir, small_chunks(), true, opts()).unwrap();
        w.ingest(std::slice::from_ref(&docs), &IngestOptions::default())
            .unwrap();
    };
    ingest(&dir);
    let mut reader = CorpusStore::open(&dir, opts()).unwrap();
    let before = reader.manifest().generation;

    std::fs::write(&files[0], "The Saint-Malo causeway floods at high tide.\n").unwrap();
    ingest(&dir);
    ingest(&dir); // a second writer run reconciles: retired packs stay
    for i in 0..reader.manifest().docs.len() {
        reader
            .load_doc(i)
            .expect("the old manifest's packs are still there");
    }
    let rep = reader.search("fork bunny", Mode::Hybrid, 5).unwrap();
    assert!(!rep.hits.is_empty());
    assert!(rep.hits.iter().all(|h| !h.text.contains("Saint-Malo")));

    assert!(reader.refresh().unwrap());
    assert!(reader.manifest().generation > before);
    assert!(!reader.refresh().unwrap(), "nothing new since");
    let rep = reader
        .search("causeway high tide", Mode::Hybrid, 3)
        .unwrap();
    assert!(rep.hits[0].text.contains("Saint-Malo"), "{:#?}", rep.hits);
}

#[global_allocator]
static HEAP: folio_corpora::peak_alloc::PeakAlloc = folio_corpora::peak_alloc::PeakAlloc::new();

/// Bounded-time fuzzing of the store's manifest: 1 000 mutated copies of a
/// real one (a BM25-only store of three documents). Each either opens, and
/// then every document reads or is an error and searching works or is an
/// error, or is refused; nothing panics and nothing allocates what a bogus
/// offset or length claims.
#[test]
fn mutated_manifests_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    common::jargon_files(&docs, 3, 1500);
    let dir = tmp.path().join("store");
    let mut w = CorpusStore::open_writer(&dir, small_chunks(), false, opts()).unwrap();
    w.ingest(std::slice::from_ref(&docs), &IngestOptions::default())
        .unwrap();
    drop(w);
    let path = dir.join("manifest.json");
    let good = std::fs::read(&path).unwrap();
    let mut m = folio_corpora::mutate::Mutator::new(27);
    let mut opened = 0;
    for round in 0..1000 {
        // Half byte-level mutations, half a number of the manifest set to
        // an extreme value (what a crafted store would hold).
        let bytes = if round % 2 == 0 {
            m.mutate(&good)
        } else {
            let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
            let mut numbers = Vec::new();
            collect_numbers(&mut v, &mut numbers);
            let pick = m.below(numbers.len());
            let extreme = [0u64, 1, 7, u32::MAX as u64, 1_000_000_000_000_000, u64::MAX];
            *numbers.swap_remove(pick) = extreme[m.below(extreme.len())].into();
            serde_json::to_vec(&v).unwrap()
        };
        std::fs::write(&path, &bytes).unwrap();
        HEAP.reset_peak();
        let before = HEAP.live();
        let result = std::panic::catch_unwind(|| {
            let store = CorpusStore::open(&dir, opts())?;
            for i in 0..store.manifest().docs.len() {
                let _ = store.load_doc(i);
            }
            let _ = store.search("fork", Mode::Bm25, 5);
            anyhow::Ok(())
        });
        let peak = HEAP.peak().saturating_sub(before);
        assert!(
            result.is_ok(),
            "round {round}: panicked on {}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(peak <= 64 << 20, "round {round}: {peak} bytes of heap");
        opened += usize::from(matches!(result, Ok(Ok(()))));
    }
    eprintln!("{opened} of 1000 mutated manifests opened");
}

/// Every number in a JSON value, to be overwritten.
fn collect_numbers<'a>(v: &'a mut serde_json::Value, out: &mut Vec<&'a mut serde_json::Value>) {
    match v {
        serde_json::Value::Number(_) => out.push(v),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| collect_numbers(i, out)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| collect_numbers(i, out)),
        _ => {}
    }
}
