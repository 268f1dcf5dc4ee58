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
            });
        // Runs before folio starts threads of its own; candle reads the
        // variable on every matrix product.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("folio-compute-{i}"))
            .build()
            .expect("building the compute thread pool");
        (n, pool)
    })
}

/// Runs `work` on the compute pool (the caller waits).
pub fn install<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    pool_with(None).1.install(work)
}
