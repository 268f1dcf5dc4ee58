//! Crash safety of the corpus store: `folio ingest` is SIGKILLed at random
//! moments (24 times); after each kill the store opens, is consistent and
//! searchable, and a final ingest completes with exactly the chunks of the
//! files on disk.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use folio_corpora::{load_path, LoadOptions};
use folio_retrieval::{ChunkerConfig, CorpusStore, Mode, StoreOptions};
use rand::{Rng, SeedableRng};

const CHUNKS: ChunkerConfig = ChunkerConfig {
    max_tokens: 96,
    overlap_tokens: 16,
};

fn ingest_cmd(docs: &Path, store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_folio"));
    c.args(["ingest", "--json", "--threads", "2", "--commit-every", "24"])
        .args(["--chunk-tokens", "96", "--overlap", "16", "--store"])
        .arg(store)
        .arg(docs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Opens the store as a reader and checks that the manifest, the packs and
/// the indexes agree; returns the number of live chunks.
fn check_consistent(store: &Path) -> u64 {
    if !store.join("manifest.json").exists() {
        return 0; // killed before the first commit: an empty store
    }
    let s = CorpusStore::open(store, StoreOptions::default()).expect("store opens after a kill");
    let m = s.manifest();
    for (i, d) in m.docs.iter().enumerate() {
        let rec = s.load_doc(i).expect("pack record readable");
        assert_eq!(rec.chunks.len() as u64, d.n_chunks, "{}", d.path);
    }
    let live = s.chunk_count();
    let (bm25, vectors) = s.index_counts().unwrap();
    // The indexes hold at least every live chunk (leftovers are ignored).
    assert!(bm25 >= live, "bm25 {bm25} < live {live}");
    assert!(vectors.unwrap() >= live as usize);
    if live > 0 {
        for mode in [Mode::Bm25, Mode::Hybrid] {
            let r = s.search("hacker slang for a program", mode, 5).unwrap();
            assert!(!r.hits.is_empty());
        }
    }
    live
}

fn write_docs(dir: &Path) {
    let text = folio_corpora::bundled::jargon().text;
    let mut at = text.find("\n   :a:").unwrap_or(0);
    for i in 0..40 {
        let mut end = (at + 4000).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        std::fs::write(dir.join(format!("part-{i:02}.txt")), &text[at..end]).unwrap();
        at = end;
    }
}

#[test]
fn ingest_survives_sigkill_at_random_moments() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    let store = tmp.path().join("store");
    std::fs::create_dir(&docs).unwrap();
    write_docs(&docs);
    let seed: u64 = std::env::var("FOLIO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (FOLIO_CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut kills = 0;
    let mut finished = 0;
    let mut round = 0;
    while kills < 24 {
        round += 1;
        assert!(round < 200, "ingest never ran long enough to be killed");
        if round == 12 {
            // Change the corpus mid-way: one file edited, one deleted.
            std::fs::write(
                docs.join("part-00.txt"),
                "Edited: the quux is a metasyntactic variable.\n",
            )
            .unwrap();
            let _ = std::fs::remove_file(docs.join("part-01.txt"));
        }
        let mut child = ingest_cmd(&docs, &store).spawn().unwrap();
        let wait = Duration::from_millis(rng.random_range(50..2500));
        let t = Instant::now();
        let mut exited = None;
        while t.elapsed() < wait {
            if let Some(status) = child.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match exited {
            Some(status) => {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(status.success(), "ingest failed: {err}");
                finished += 1;
                // A complete store: start over so later kills hit real work.
                std::fs::remove_dir_all(&store).unwrap();
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
        check_consistent(&store);
    }
    eprintln!("{kills} kills, {finished} runs finished before their kill time");

    // A final ingest completes and the store matches the files exactly.
    let out = ingest_cmd(&docs, &store).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok =
        folio_retrieval::models::path(&folio_retrieval::models::MINILM_TOKENIZER, false).unwrap();
    let chunker = folio_retrieval::Chunker::from_file(&tok, CHUNKS).unwrap();
    let mut expected = 0;
    let mut files = 0;
    for e in std::fs::read_dir(&docs).unwrap() {
        let doc = load_path(&e.unwrap().path(), &LoadOptions::default()).unwrap();
        expected += chunker.chunk(&doc).unwrap().len() as u64;
        files += 1;
    }
    let s = CorpusStore::open(&store, StoreOptions::default()).unwrap();
    assert_eq!(s.manifest().docs.len(), files);
    assert_eq!(s.chunk_count(), expected);
    assert_eq!(
        s.index_counts().unwrap(),
        (expected, Some(expected as usize))
    );
    assert!(s.manifest().garbage.is_empty());
    let r = s.search("metasyntactic quux", Mode::Hybrid, 1).unwrap();
    assert!(r.hits[0].path.ends_with("part-00.txt"), "{:?}", r.hits[0]);
}
