//! The in-process vector index under many readers: builds an index of N
//! random 384-dimensional unit vectors (MiniLM's size) in batches of 4 096
//! as an ingest commits them, then runs R reader *processes* at once, each
//! opening the index and timing Q nearest-neighbour searches of depth 50
//! (what a hybrid search asks of it). Prints build time, open time, p50/p99
//! per reader count, the readers' peak RSS, and recall@10 against exact search.
//!
//! `cargo run --release -p folio-retrieval --example readers_bench -- DIR [N] [QUERIES] [READERS...]`
//! (defaults: 100000 vectors, 500 queries, readers 1 and 4).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use folio_retrieval::vector::{HnswStore, VectorStore};
use rand::{Rng, SeedableRng};

const DIMS: usize = 384;
const DEPTH: usize = 50;

fn unit(rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIMS).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn vectors(n: usize) -> Vec<(u64, Vec<f32>)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    (0..n as u64).map(|id| (id, unit(&mut rng))).collect()
}

fn peak_rss_mb() -> f64 {
    folio_corpora::memory::peak_rss_bytes() as f64 / (1u64 << 20) as f64
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One reader process: open, search, print "open_ms rss_mb lat1 lat2 …".
fn reader(dir: &Path, queries: usize, seed: u64) -> Result<()> {
    let t = Instant::now();
    let store = HnswStore::open_or_create(dir, DIMS)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = format!("{open_ms:.2} ");
    let mut lat = Vec::with_capacity(queries);
    for _ in 0..queries {
        let q = unit(&mut rng);
        let t = Instant::now();
        let hits = store.search(&q, DEPTH)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if hits.len() != DEPTH {
            bail!("{} hits", hits.len());
        }
    }
    out += &format!("{:.1}", peak_rss_mb());
    for l in lat {
        out += &format!(" {l:.3}");
    }
    println!("{out}");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--reader") {
        return reader(Path::new(&args[2]), args[3].parse()?, args[4].parse()?);
    }
    let dir = PathBuf::from(
        args.get(1)
            .context("usage: readers_bench DIR [N] [QUERIES] [READERS...]")?,
    );
    let n: usize = args.get(2).map_or(Ok(100_000), |s| s.parse())?;
    let queries: usize = args.get(3).map_or(Ok(500), |s| s.parse())?;
    let counts: Vec<usize> = if args.len() > 4 {
        args[4..]
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    } else {
        vec![1, 4]
    };
    let points = vectors(n);
    let index = dir.join(format!("hnsw-{n}"));
    if !index.join("done").exists() {
        let store = HnswStore::open_or_create(&index, DIMS)?;
        let t = Instant::now();
        for part in points.chunks(4096) {
            store.upsert(part)?;
            store.commit()?;
        }
        std::fs::write(index.join("done"), b"")?;
        println!(
            "built {n} vectors in {:.1} s (commits of 4096)",
            t.elapsed().as_secs_f64()
        );
    }
    // Recall@10 against exact search, 50 queries.
    let store = HnswStore::open_or_create(&index, DIMS)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let (mut found, mut wanted) = (0, 0);
    for _ in 0..50 {
        let q = unit(&mut rng);
        let mut exact: Vec<(u64, f32)> = points
            .iter()
            .map(|(id, v)| (*id, v.iter().zip(&q).map(|(a, b)| a * b).sum()))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let got = store.search(&q, 10)?;
        wanted += 10;
        found += exact[..10]
            .iter()
            .filter(|(id, _)| got.iter().any(|(g, _)| g == id))
            .count();
    }
    println!("recall@10 = {:.3}", found as f64 / wanted as f64);
    drop(store);
    let me = std::env::current_exe()?;
    println!("| readers | searches | p50 ms | p99 ms | open ms (max) | peak RSS per reader MB |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for &r in &counts {
        let children = (0..r)
            .map(|i| {
                Command::new(&me)
                    .args(["--reader", &index.display().to_string()])
                    .args([queries.to_string(), (1000 + i).to_string()])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let (mut lat, mut open, mut rss) = (Vec::new(), 0.0f64, 0.0f64);
        for child in children {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!("a reader failed");
            }
            let text = String::from_utf8(out.stdout)?;
            let mut fields = text.split_whitespace().map(|f| f.parse::<f64>());
            open = open.max(fields.next().context("open time")??);
            rss = rss.max(fields.next().context("rss")??);
            for f in fields {
                lat.push(f?);
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "| {r} | {} | {:.2} | {:.2} | {open:.1} | {rss:.0} |",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
    Ok(())
}
