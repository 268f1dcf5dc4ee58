//! Many readers at once: `folio search` and `folio ask` processes read one
//! store, round after round, while `folio ingest` replaces and adds
//! documents in it. Every reader succeeds, every hit it returns is text the
//! store held at some committed state (a version of its file that was
//! ingested), and every ingest completes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Every text each file has had, by absolute path.
type Versions = Arc<Mutex<HashMap<String, Vec<String>>>>;

fn folio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(args)
        .output()
        .expect("running folio")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Consecutive Jargon File slices, `bytes` each, from entry `skip` on.
fn jargon_slices(n: usize, bytes: usize, skip: usize) -> Vec<String> {
    let text = folio_corpora::bundled::jargon().text;
    let mut at = text.find("\n   :fork:").unwrap_or(0);
    let mut out = Vec::new();
    while out.len() < n + skip {
        let mut end = (at + bytes).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if let Some(next) = text[end..].find("\n   :") {
            end += next + 1;
        }
        out.push(text[at..end].to_string());
        at = end;
    }
    out.split_off(skip)
}

fn write_version(versions: &Versions, path: &Path, text: &str) {
    let key = std::path::absolute(path).unwrap().display().to_string();
    // Recorded before it is on disk: a reader can only see it after.
    versions
        .lock()
        .unwrap()
        .entry(key)
        .or_default()
        .push(text.to_string());
    std::fs::write(path, text).unwrap();
}

fn ingest(store: &Path, docs: &Path) {
    let out = folio(&[
        "ingest",
        "--json",
        "--threads",
        "1",
        "--commit-every",
        "16",
        "--store",
        store.to_str().unwrap(),
        docs.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "ingest: {}", stderr(&out));
}

/// One `folio search` over the store: it succeeds and each hit is part of
/// a version of its file.
fn search_once(store: &Path, query: &str, versions: &Versions) {
    let out = folio(&[
        "search",
        "--json",
        "--threads",
        "1",
        "-k",
        "8",
        "--store",
        store.to_str().unwrap(),
        query,
    ]);
    assert!(out.status.success(), "search: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hits = report["hits"].as_array().expect("hits");
    assert!(!hits.is_empty(), "{report}");
    let versions = versions.lock().unwrap();
    for h in hits {
        let path = h["path"].as_str().unwrap();
        let text = h["text"].as_str().unwrap();
        let known = versions.get(path).expect("a file the test wrote");
        assert!(
            known.iter().any(|v| v.contains(text)),
            "hit from no committed state: {path}: {text:?}"
        );
    }
}

#[test]
fn readers_search_and_ask_while_an_ingest_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    let store = tmp.path().join("store");
    std::fs::create_dir(&docs).unwrap();
    let versions: Versions = Arc::default();
    let slices = jargon_slices(14, 2500, 0);
    let files: Vec<PathBuf> = (0..6)
        .map(|i| docs.join(format!("part-{i:02}.txt")))
        .collect();
    for (f, text) in files.iter().zip(&slices) {
        write_version(&versions, f, text);
    }
    ingest(&store, &docs);

    let writer_done = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for (r, query) in ["fork bomb", "hacker slang for a program", "frobnicate"]
        .into_iter()
        .enumerate()
    {
        let (store, versions, done, searches) = (
            store.clone(),
            versions.clone(),
            writer_done.clone(),
            searches.clone(),
        );
        readers.push(std::thread::spawn(move || {
            let mut rounds = 0;
            while rounds < 4 || !done.load(Ordering::SeqCst) {
                search_once(&store, query, &versions);
                rounds += 1;
                searches.fetch_add(1, Ordering::SeqCst);
            }
            eprintln!("reader {r}: {rounds} searches");
        }));
    }
    let asker = {
        let (store, done) = (store.clone(), writer_done.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while rounds < 2 || !done.load(Ordering::SeqCst) {
                let out = folio(&[
                    "ask",
                    "What is a fork bunny?",
                    "--corpus",
                    store.to_str().unwrap(),
                    "--strategy",
                    "rag",
                    "--model",
                    "smollm2-135m",
                    "--max-tokens",
                    "8",
                    "--json",
                    "--threads",
                    "1",
                ]);
                assert!(out.status.success(), "ask: {}", stderr(&out));
                let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(record["trade_offs"]["plan"]["strategy"]["strategy"], "rag");
                rounds += 1;
            }
            eprintln!("asker: {rounds} answers");
        })
    };

    // The writer: each round replaces one file and adds one.
    for round in 0..4 {
        write_version(&versions, &files[round], &slices[6 + 2 * round]);
        let added = docs.join(format!("new-{round:02}.txt"));
        write_version(&versions, &added, &slices[7 + 2 * round]);
        ingest(&store, &docs);
    }
    writer_done.store(true, Ordering::SeqCst);
    for r in readers {
        r.join().expect("a reader failed");
    }
    asker.join().expect("the asker failed");
    assert!(searches.load(Ordering::SeqCst) >= 12);

    // The final state holds exactly the files on disk, each indexed once.
    let s = folio_retrieval::CorpusStore::open(&store, Default::default()).unwrap();
    assert_eq!(s.manifest().docs.len(), 10);
    let live = s.chunk_count();
    let (bm25, vectors) = s.index_counts().unwrap();
    assert_eq!((bm25, vectors), (live, Some(live as usize)));
}

/// A second writer is refused with the holder's pid and command while the
/// first one runs; readers are not.
#[test]
fn a_second_writer_is_told_which_process_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    let store = tmp.path().join("store");
    std::fs::create_dir(&docs).unwrap();
    let versions: Versions = Arc::default();
    for (i, text) in jargon_slices(40, 4000, 0).iter().enumerate() {
        write_version(&versions, &docs.join(format!("part-{i:02}.txt")), text);
    }
    let mut first = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["ingest", "--json", "--threads", "1", "--store"])
        .arg(&store)
        .arg(&docs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it holds the lock (its pid is in the lock file).
    let lock = store.join(".writer.lock");
    let pid = first.id().to_string();
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&pid)) {
        assert!(
            t.elapsed().as_secs() < 120,
            "first ingest never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = folio(&[
        "ingest",
        "--json",
        "--store",
        store.to_str().unwrap(),
        docs.to_str().unwrap(),
    ]);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first ingest (about 200 chunks to embed) ended before the second started"
    );
    assert!(!second.status.success());
    let msg = stderr(&second);
    assert!(
        msg.contains(&format!("pid {pid}")) && msg.contains("ingest"),
        "{msg}"
    );
    assert!(first.wait().unwrap().success());
    search_once(&store, "fork bomb", &versions);
}
