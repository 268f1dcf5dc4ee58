//! Memory bandwidth of the block-quantized matrix-vector kernels on matrices
//! of the default model's shapes (output layer, one and sixteen FFN layers).
//!
//! `cargo run --release -p folio-kernels --example matvec_bandwidth -- THREADS`

use std::time::Instant;

use folio_kernels::quant::{matvec, BlockFormat, BlockMatrix, BLOCK};

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let shapes = [
        (BlockFormat::Q8_0, 151_936, 896),
        (BlockFormat::Q5_0, 9_728, 896),
        (BlockFormat::Q5_0, 9_728 * 16, 896),
    ];
    for (format, rows, cols) in shapes {
        // Arbitrary but non-zero blocks (scales stay finite: the high byte of each f16 is < 0x3c).
        let data: Vec<u8> = (0..rows * cols / BLOCK * format.block_bytes())
            .map(|i| (i * 7919 % 251) as u8 & 0x3b)
            .collect();
        let w = BlockMatrix::new(format, rows, cols, data).expect("valid shape");
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.1).sin()).collect();
        let mut y = vec![0f32; rows];
        pool.install(|| {
            for _ in 0..3 {
                matvec(&w, &x, 1, &mut y);
            }
            let reps = 20;
            let start = Instant::now();
            for _ in 0..reps {
                matvec(&w, &x, 1, &mut y);
            }
            let seconds = start.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{format:?} {rows}x{cols} ({:.0} MB): {:.2} ms per product, {:.1} GB/s, {threads} threads",
                w.data().len() as f64 / 1e6,
                seconds * 1e3,
                w.data().len() as f64 / seconds / 1e9
            );
        });
    }
}
