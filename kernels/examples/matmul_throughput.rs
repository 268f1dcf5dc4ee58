//! Prompt-processing throughput of the block matrix product
//! (`quant::matmul`) on Qwen2.5-1.5B's layer shapes (hidden 1536, FFN
//! 8960), 512 prompt rows, per block type; and one decoding row
//! (`quant::matvec`).
//!
//! `cargo run --release -p folio-kernels --example matmul_throughput -- THREADS`

use std::time::Instant;

use folio_kernels::quant::{matmul, matvec, Activations, BlockFormat, BlockMatrix};

/// Arbitrary non-zero blocks whose f16 fields stay small and finite.
fn matrix(format: BlockFormat, rows: usize, cols: usize) -> BlockMatrix {
    let bytes = rows * format.row_bytes(cols).expect("whole blocks");
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7919 % 251) as u8 & 0x3b).collect();
    BlockMatrix::new(format, rows, cols, data).expect("valid shape")
}

/// Dequantization speed (the f32 prompt path's tiles).
fn dequantize_speed(format: BlockFormat, threads: usize) {
    let w = matrix(format, 8960, 1536);
    let mut out = vec![0f32; 8960 * 1536];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| {
        w.dequantize_rows(0, &mut out);
        let start = Instant::now();
        for _ in 0..5 {
            w.dequantize_rows(0, &mut out);
        }
        let s = start.elapsed().as_secs_f64() / 5.0;
        println!(
            "{format:?} dequantize 8960x1536: {:.1} ms, {:.2} ns/weight",
            s * 1e3,
            s * 1e9 / (8960.0 * 1536.0)
        );
    });
}

fn main() {
    if std::env::args().nth(2).as_deref() == Some("dequantize") {
        for f in [
            BlockFormat::Q4_K,
            BlockFormat::Q6_K,
            BlockFormat::Q5_0,
            BlockFormat::Q8_0,
            BlockFormat::Q4_1,
        ] {
            dequantize_speed(f, 2);
        }
        return;
    }
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let (hidden, ffn) = (1536, 8960);
    let only = std::env::args().nth(2);
    for format in [
        BlockFormat::Q4_K,
        BlockFormat::Q6_K,
        BlockFormat::Q5_0,
        BlockFormat::Q8_0,
        BlockFormat::Q4_0,
    ] {
        if only.as_ref().is_some_and(|f| *f != format!("{format:?}")) {
            continue;
        }
        let up = matrix(format, 2 * ffn, hidden);
        let down = matrix(format, hidden, ffn);
        let only_rows: Option<usize> = std::env::args().nth(3).and_then(|s| s.parse().ok());
        for rows in [512usize, 1] {
            if only_rows.is_some_and(|n| n != rows) {
                continue;
            }
            let x: Vec<f32> = (0..rows * hidden)
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            let act: Vec<f32> = (0..rows * ffn).map(|i| (i as f32 * 0.11).cos()).collect();
            let (mut y_up, mut y_down) = (vec![0f32; rows * 2 * ffn], vec![0f32; rows * hidden]);
            pool.install(|| {
                // As the engine does: one row (generation) through `matvec`.
                let run = |y_up: &mut [f32], y_down: &mut [f32]| {
                    if rows == 1 {
                        matvec(&up, &x, 1, y_up);
                        matvec(&down, &act, 1, y_down);
                    } else {
                        matmul(&up, &Activations::new(&x, rows, hidden), y_up, 2 * ffn, 0);
                        matmul(&down, &Activations::new(&act, rows, ffn), y_down, hidden, 0);
                    }
                };
                run(&mut y_up, &mut y_down);
                let reps = if rows == 1 { 200 } else { 2 };
                let start = Instant::now();
                for _ in 0..reps {
                    run(&mut y_up, &mut y_down);
                }
                let seconds = start.elapsed().as_secs_f64() / reps as f64;
                let flops = 2.0 * rows as f64 * (3 * ffn * hidden) as f64;
                println!(
                    "{format:?} FFN of 1.5B, {rows} rows: {:.1} ms, {:.1} GFLOP/s, {threads} threads",
                    seconds * 1e3,
                    flops / seconds / 1e9
                );
            });
        }
    }
}
