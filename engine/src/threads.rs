//! One place that decides how many CPU threads folio computes with.
//!
//! rayon's default uses every core, which collapses when another process is
//! busy on one of them; candle's matrix products read `RAYON_NUM_THREADS`.

use std::sync::OnceLock;

static THREADS: OnceLock<usize> = OnceLock::new();

/// Sets the thread count for rayon and candle, once per process, before any
/// parallel work. Later calls return the count already in force.
pub fn init(threads: Option<usize>) -> usize {
    *THREADS.get_or_init(|| {
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
        // SAFETY-relevant ordering: this runs before folio starts any thread of
        // its own; candle reads the variable on every matrix product.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
        n
    })
}
