//! The block-quantized matrix-vector kernels against plain references on
//! random blocks (random scales, nibbles and fifth bits; never zeros).

use folio_kernels::quant::{
    matvec, row_dot_scalar, BlockFormat, BlockMatrix, QuantizedInput, BLOCK,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn random_matrix(rng: &mut StdRng, format: BlockFormat, rows: usize, cols: usize) -> BlockMatrix {
    let mut data = Vec::new();
    for _ in 0..rows * cols / BLOCK {
        let d = half::f16::from_f32(rng.random_range(0.001f32..0.05));
        data.extend(d.to_le_bytes());
        if matches!(format, BlockFormat::Q4_1 | BlockFormat::Q5_1) {
            data.extend(half::f16::from_f32(rng.random_range(-0.4f32..0.1)).to_le_bytes());
        }
        let rest = format.block_bytes() - data.len() % format.block_bytes();
        data.extend((0..rest % format.block_bytes()).map(|_| rng.random::<u8>()));
    }
    BlockMatrix::new(format, rows, cols, data).unwrap()
}

#[test]
fn avx2_and_scalar_dots_agree_and_match_dequantized_f64() {
    let mut rng = StdRng::seed_from_u64(11);
    for format in [
        BlockFormat::Q4_0,
        BlockFormat::Q4_1,
        BlockFormat::Q5_0,
        BlockFormat::Q5_1,
        BlockFormat::Q8_0,
    ] {
        let (rows, cols) = (150, 576);
        let w = random_matrix(&mut rng, format, rows, cols);
        let x: Vec<f32> = (0..2 * cols)
            .map(|_| rng.random_range(-3.0f32..3.0))
            .collect();
        let mut y = vec![0f32; 2 * rows];
        matvec(&w, &x, 2, &mut y);
        for (xi, x_row) in x.chunks_exact(cols).enumerate() {
            let q = QuantizedInput::new(x_row);
            for r in 0..rows {
                let got = y[xi * rows + r];
                // Same integer sums, different float summation order: 1e-4 relative.
                let scalar = row_dot_scalar(
                    format,
                    &w.data()[r * cols / BLOCK * format.block_bytes()..]
                        [..cols / BLOCK * format.block_bytes()],
                    &q,
                );
                let w_row = w.dequantize_row(r);
                let exact: f64 = w_row
                    .iter()
                    .zip(x_row)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum();
                let magnitude: f64 = w_row
                    .iter()
                    .zip(x_row)
                    .map(|(a, b)| (*a as f64 * *b as f64).abs())
                    .sum();
                assert!(
                    (got - scalar).abs() as f64 <= 1e-4 * magnitude,
                    "{format:?} row {r}: simd {got} vs scalar {scalar}"
                );
                // 8-bit activations: error within 1% of Σ|w·x|.
                assert!(
                    (got as f64 - exact).abs() <= 1e-2 * magnitude,
                    "{format:?} row {r}: {got} vs exact {exact}"
                );
            }
        }
    }
}

#[test]
fn a_matrix_that_is_not_whole_blocks_is_refused() {
    assert!(BlockMatrix::new(BlockFormat::Q4_1, 2, 48, vec![0; 60]).is_err());
    assert!(BlockMatrix::new(BlockFormat::Q4_K, 2, 128, vec![0; 144]).is_err());
    assert!(BlockMatrix::new(BlockFormat::Q5_0, 2, 64, vec![0; 87]).is_err());
}

#[test]
fn q8_0_quantization_round_trips_within_half_a_step() {
    let mut rng = StdRng::seed_from_u64(9);
    let (rows, cols) = (7, 96);
    let w: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random_range(-1.5f32..1.5))
        .collect();
    let m = BlockMatrix::quantize_q8_0(rows, cols, &w).unwrap();
    for r in 0..rows {
        let back = m.dequantize_row(r);
        for (b, block) in w[r * cols..(r + 1) * cols].chunks_exact(BLOCK).enumerate() {
            let step = block.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            for (j, v) in block.iter().enumerate() {
                // Half a step, plus the f16 rounding of the scale (2^-11 relative, times 127).
                assert!(
                    (back[b * BLOCK + j] - v).abs() <= 0.5 * step + 127.0 * step * 1e-3,
                    "{v} vs {}",
                    back[b * BLOCK + j]
                );
            }
        }
    }
}
