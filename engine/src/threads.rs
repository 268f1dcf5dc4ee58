//! One place that decides how many CPU threads folio computes with, and the
//! pool they live in.
//!
//! rayon's default uses every core, which collapses when another process is
//! busy on one of them; candle's matrix products read `RAYON_NUM_THREADS`.
//! Work is run *inside* the pool ([`install`]): a caller outside the pool
//! would sit beside its workers, and on a 2-core machine the workers' spinning
//! between parallel steps would steal the core the caller's serial steps need.

use std::sync::OnceLock;

use rayon::ThreadPool;

static POOL: OnceLock<(usize, ThreadPool)> = OnceLock::new();

/// The most threads folio starts, whatever it is asked for: each one is an
/// OS thread with its own stack, and far more than the cores only slows
/// compute down (the command line refuses more, `FOLIO_THREADS` is capped).
pub const MAX_THREADS: usize = 1024;

/// Sets the thread count for rayon and candle, once per process, before any
/// parallel work. Later calls return the count already in force.
pub fn init(threads: Option<usize>) -> usize {
    pool_with(threads).0
}

fn pool_with(threads: Option<usize>) -> &'static (usize, ThreadPool) {
    POOL.get_or_init(|| {
        let n = threads
            .or_else(|| {
                std::env::var("FOLIO_THREADS")
                    .ok()
                    .and_then(|s| s.parse().ok())
            })
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .min(MAX_THREADS);
        // Runs before folio starts threads of its own; candle reads the
        // variable on every matrix product.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let build = |n: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("folio-compute-{i}"))
                .build()
        };
        // The OS may refuse threads (limits, memory): fall back to one
        // rather than abort; a single thread is slow but answers.
        match build(n) {
            Ok(pool) => (n, pool),
            Err(e) => {
                log::warn!("could not start {n} compute threads ({e}); using 1");
                std::env::set_var("RAYON_NUM_THREADS", "1");
                (1, build(1).expect("a pool of one thread"))
            }
        }
    })
}

/// Runs `work` on the compute pool (the caller waits).
pub fn install<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    pool_with(None).1.install(work)
}
