//! The Qdrant server backend (`--qdrant-url`, qdrant-client) over real gRPC:
//! a server on 127.0.0.1 built from qdrant-client's service definitions and
//! backed by Qdrant's in-process engine (`loopback/`), the real fastembed
//! model and real text.

mod common;
mod loopback;

use folio_retrieval::vector::{HnswStore, ServerStore, VectorStore};
use folio_retrieval::{ChunkerConfig, CorpusStore, IngestOptions, Mode, StoreOptions};
use rand::{Rng, SeedableRng};

fn random_points(n: u64, dims: usize, seed: u64) -> Vec<(u64, Vec<f32>)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|id| {
            let v = (0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            (id, v)
        })
        .collect()
}

/// Writes through gRPC give the same searches as the engine used directly.
#[test]
fn server_store_matches_the_in_process_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let server = loopback::start(tmp.path().join("server"));
    let dims = 24;
    let points = random_points(600, dims, 11);
    let remote = ServerStore::connect(&server.url, "folio_test", dims).unwrap();
    let local = HnswStore::open_or_create(&tmp.path().join("local"), dims).unwrap();
    for store in [&remote as &dyn VectorStore, &local] {
        store.upsert(&points).unwrap();
        store.delete_range(100, Some(200)).unwrap();
        store.delete_range(550, None).unwrap();
        store.commit().unwrap();
    }
    assert_eq!(remote.len().unwrap(), 450);
    assert_eq!(local.len().unwrap(), 450);
    for probe in [0usize, 150, 420, 599] {
        let q = &points[probe].1;
        let (r, l) = (remote.search(q, 8).unwrap(), local.search(q, 8).unwrap());
        assert_eq!(
            r.iter().map(|h| h.0).collect::<Vec<_>>(),
            l.iter().map(|h| h.0).collect::<Vec<_>>()
        );
        for ((_, a), (_, b)) in r.iter().zip(&l) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!(r
            .iter()
            .all(|(id, _)| !(100..200).contains(id) && *id < 550));
    }
    assert_eq!(remote.search(&points[7].1, 1).unwrap()[0].0, 7);

    // Reconnecting finds the collection; a different size is refused.
    let again = ServerStore::connect(&server.url, "folio_test", dims).unwrap();
    assert_eq!(again.len().unwrap(), 450);
    let msg = ServerStore::connect(&server.url, "folio_test", dims + 1)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("24-dimensional"), "{msg}");
    let calls = server.calls.lock().unwrap();
    for call in ["health_check", "create_collection", "create_field_index"] {
        assert!(calls.contains(&call), "{call} missing from {calls:?}");
    }
    assert!(calls.iter().filter(|c| **c == "upsert").count() >= 3); // 600 in batches of 256
}

/// A corpus store on the server: ingest, every search mode, an incremental
/// update (range deletes over gRPC), and the refusals that keep a store on
/// the backend it was created with.
#[test]
fn corpus_store_on_a_qdrant_server() {
    let tmp = tempfile::tempdir().unwrap();
    let server = loopback::start(tmp.path().join("server"));
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let files = common::jargon_files(&docs, 3, 5000);
    std::fs::write(
        docs.join("tides.md"),
        "# Tides\n\nThe harbour of Saint-Malo has some of the largest tidal ranges in Europe, \
         often above twelve metres.\n",
    )
    .unwrap();
    let chunker = ChunkerConfig {
        max_tokens: 96,
        overlap_tokens: 16,
    };
    let on_server = StoreOptions {
        qdrant_url: Some(server.url.clone()),
        threads: Some(2),
        ..Default::default()
    };
    let dir = tmp.path().join("store");
    let mut store = CorpusStore::open_writer(&dir, chunker, true, on_server.clone()).unwrap();
    let r = store
        .ingest(std::slice::from_ref(&docs), &IngestOptions::default())
        .unwrap();
    assert_eq!(r.added, 4);
    let total = store.chunk_count();
    assert_eq!(store.index_counts().unwrap(), (total, Some(total as usize)));
    let collection = store.manifest().qdrant_collection.clone().unwrap();
    assert!(collection.starts_with("folio_store_"), "{collection}");

    let rep = store
        .search("coastal water level differences", Mode::Dense, 2)
        .unwrap();
    assert!(rep.hits[0].path.ends_with("tides.md"), "{:?}", rep.hits[0]);
    let backend = rep.vector_store.unwrap();
    assert!(backend.contains(&server.url) && backend.contains(&collection));
    let rep = store
        .search("what is another name for a fork bomb", Mode::Hybrid, 3)
        .unwrap();
    assert!(rep.hits.iter().any(|h| h.text.contains("fork bunny")));
    assert!(rep.hits.iter().any(|h| h.dense.is_some()));

    // Replace one file: its old chunks leave the server's collection.
    std::fs::write(
        &files[0],
        "Zymurgy is the chemistry of fermentation in brewing.\n",
    )
    .unwrap();
    let r = store
        .ingest(std::slice::from_ref(&docs), &IngestOptions::default())
        .unwrap();
    assert_eq!((r.updated, r.unchanged), (1, 3));
    let total = store.chunk_count();
    assert_eq!(store.index_counts().unwrap(), (total, Some(total as usize)));
    let rep = store.search("fermenting beer", Mode::Dense, 1).unwrap();
    assert!(rep.hits[0].text.starts_with("Zymurgy"), "{:?}", rep.hits[0]);
    drop(store);

    // A reader on the server sees the same; without the URL it is told how.
    let reader = CorpusStore::open(&dir, on_server.clone()).unwrap();
    assert_eq!(reader.chunk_count(), total);
    drop(reader);
    let local = StoreOptions {
        threads: Some(2),
        ..Default::default()
    };
    let msg = CorpusStore::open(&dir, local.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains(&collection) && msg.contains("--qdrant-url"),
        "{msg}"
    );

    // A store made with the in-process engine refuses a server.
    let edge_dir = tmp.path().join("edge-store");
    let mut edge = CorpusStore::open_writer(&edge_dir, chunker, true, local).unwrap();
    edge.ingest(&[docs.join("tides.md")], &IngestOptions::default())
        .unwrap();
    drop(edge);
    let msg = CorpusStore::open(&edge_dir, on_server)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("in-process engine"), "{msg}");
}

/// Nothing listening: the error names the URL and what to do.
#[test]
fn unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let msg = ServerStore::connect(&url, "folio_x", 8)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains(&url) && msg.contains("6334"), "{msg}");
}
