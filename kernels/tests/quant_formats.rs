//! Every block type folio multiplies in place (F32, F16, BF16, Q4_0, Q4_1,
//! Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K), on random blocks (random scales,
//! nibbles, high bits and sub-scales; never zeros), against plain references:
//! - the canonical form reproduces ggml's dequantization formulas;
//! - the AVX2 and portable canonical kernels agree on the same 8-bit inputs;
//! - the K-quants' interleaved kernel ([`quad`]) agrees with the canonical
//!   one, also at the largest weights and activations (its i16 sums);
//! - [`matmul`] is within the bound that 8-bit activations allow of an f64
//!   product with the dequantized weights and the unquantized activations.

use folio_kernels::dot::Isa;
use folio_kernels::quant::blocks::{self, CanonRow};
use folio_kernels::quant::canon::{self, CanonBuffer};
use folio_kernels::quant::quad::{self, QuadBuffer};
use folio_kernels::quant::{matmul, matvec, Activations, BlockFormat, BlockMatrix};
use half::{bf16, f16};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Random bytes with every float field set to a sane random value.
fn random_row(rng: &mut StdRng, format: BlockFormat, cols: usize) -> Vec<u8> {
    let blocks = cols / format.block_weights();
    let mut data = Vec::new();
    for _ in 0..blocks {
        let mut block: Vec<u8> = (0..format.block_bytes()).map(|_| rng.random()).collect();
        let mut put =
            |at: usize, v: f32| block[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
        match format {
            BlockFormat::F32 => block.copy_from_slice(&rng.random_range(-2f32..2.0).to_le_bytes()),
            BlockFormat::F16 => put(0, rng.random_range(-2f32..2.0)),
            BlockFormat::Bf16 => {
                block.copy_from_slice(&bf16::from_f32(rng.random_range(-2f32..2.0)).to_le_bytes())
            }
            BlockFormat::Q4_1 | BlockFormat::Q5_1 => {
                put(0, rng.random_range(0.001f32..0.05));
                put(2, rng.random_range(-0.4f32..0.1));
            }
            BlockFormat::Q4_K | BlockFormat::Q5_K => {
                put(0, rng.random_range(0.0005f32..0.004));
                put(2, rng.random_range(0.0005f32..0.01));
            }
            BlockFormat::Q6_K => put(208, rng.random_range(0.0002f32..0.002)),
            _ => put(0, rng.random_range(0.001f32..0.05)),
        }
        data.extend(block);
    }
    data
}

fn random_matrix(rng: &mut StdRng, format: BlockFormat, rows: usize, cols: usize) -> BlockMatrix {
    let data = (0..rows)
        .flat_map(|_| random_row(rng, format, cols))
        .collect();
    BlockMatrix::new(format, rows, cols, data).unwrap()
}

fn integer_formats() -> impl Iterator<Item = BlockFormat> {
    BlockFormat::ALL.into_iter().filter(|f| !f.is_float())
}

#[test]
fn canonical_rows_reproduce_the_dequantized_weights() {
    let mut rng = StdRng::seed_from_u64(21);
    let cols = 512;
    for format in integer_formats() {
        let row = random_row(&mut rng, format, cols);
        let mut reference = vec![0f32; cols];
        blocks::dequantize(format, &row, &mut reference);
        let (mut u, mut scales, mut biases) =
            (vec![0u8; cols], vec![0f32; cols / 4], vec![0f32; cols / 16]);
        let k = format.is_k_quant();
        let mut k_scales = vec![0i16; if k { cols / 2 } else { 0 }];
        let mut k_d = vec![0f32; if k { cols / 256 } else { 0 }];
        blocks::unpack(
            format,
            &row,
            &mut CanonRow {
                u: &mut u,
                scales: &mut scales,
                biases: &mut biases,
                k_scales: &mut k_scales,
                k_d: &mut k_d,
            },
        );
        // A K-quant's scale is its super-block scale times the integer sub-scale.
        let scale = |i: usize| {
            let (g, half) = (i / 32, (i % 32) / 16);
            if k {
                k_d[g / 8] * k_scales[16 * g + 8 * half] as f32
            } else {
                scales[8 * g + 4 * half]
            }
        };
        let mut distinct = std::collections::HashSet::new();
        for i in 0..cols {
            let q = if format == BlockFormat::Q8_0 {
                u[i] as i8 as f32
            } else {
                u[i] as f32
            };
            assert!(
                format == BlockFormat::Q8_0 || u[i] < 64,
                "{format:?}: u {} overflows maddubs",
                u[i]
            );
            let s = scale(i);
            let w = s * q + biases[i / 16];
            // Same products, summed in another order: 1e-5 of the sub-block's scale range.
            let tol = 1e-5 * (s.abs() * 64.0 + biases[i / 16].abs()) + 1e-7;
            assert!(
                (w - reference[i]).abs() <= tol,
                "{format:?} weight {i}: {w} vs {}",
                reference[i]
            );
            distinct.insert(reference[i].to_bits());
        }
        assert!(
            distinct.len() > 16,
            "{format:?}: random blocks must give varied weights"
        );
    }
}

#[test]
fn avx2_and_portable_unpacking_give_identical_rows() {
    if Isa::detect() != Isa::Avx2Fma {
        eprintln!("no AVX2 on this CPU: only the portable unpacking runs");
        return;
    }
    let mut rng = StdRng::seed_from_u64(25);
    let (rows, cols) = (3, 1024);
    for format in integer_formats() {
        let w = random_matrix(&mut rng, format, rows, cols);
        let (mut fast, mut slow) = (CanonBuffer::default(), CanonBuffer::default());
        fast.fill(format, w.data(), w.row_bytes(), cols, rows, Isa::Avx2Fma);
        slow.fill(format, w.data(), w.row_bytes(), cols, rows, Isa::Baseline);
        assert_eq!(fast.u, slow.u, "{format:?} values");
        assert_eq!(fast.scales, slow.scales, "{format:?} scales");
        assert_eq!(fast.biases, slow.biases, "{format:?} biases");
        assert_eq!(
            fast.k_scales, slow.k_scales,
            "{format:?} integer sub-scales"
        );
        assert_eq!(fast.k_d, slow.k_d, "{format:?} super-block scales");
    }
}

#[test]
fn avx2_and_portable_canonical_kernels_agree() {
    if Isa::detect() != Isa::Avx2Fma {
        eprintln!("no AVX2 on this CPU: only the portable kernel runs");
        return;
    }
    let mut rng = StdRng::seed_from_u64(22);
    let (rows, cols, x_rows) = (6, 768, 7);
    for format in integer_formats() {
        let w = random_matrix(&mut rng, format, rows, cols);
        let x: Vec<f32> = (0..x_rows * cols)
            .map(|_| rng.random_range(-3f32..3.0))
            .collect();
        let q = Activations::new(&x, x_rows, cols);
        let q = q.quantized(format);
        let mut buf = CanonBuffer::default();
        buf.fill(format, w.data(), w.row_bytes(), cols, rows, Isa::Baseline);
        for r in 0..rows {
            let (mut fast, mut slow) = (vec![0f32; x_rows], vec![0f32; x_rows]);
            canon::dot_rows(&buf, r, format, q, 0..x_rows, &mut fast, Isa::Avx2Fma);
            canon::dot_rows(&buf, r, format, q, 0..x_rows, &mut slow, Isa::Baseline);
            let magnitude: f32 = w.dequantize_row(r).iter().map(|v| v.abs() * 3.0).sum();
            for t in 0..x_rows {
                // Same integer sums, another float order: 1e-5 of Σ|w|·max|x|.
                assert!(
                    (fast[t] - slow[t]).abs() <= 1e-5 * magnitude,
                    "{format:?} {r},{t}: {} vs {}",
                    fast[t],
                    slow[t]
                );
            }
        }
    }
}

/// `y = x·Wᵀ` in f64 from the dequantized weights, and the most 8-bit
/// activations can move each value: half a step (`max|x|/127` per 32
/// values) times `Σ|w|` over the block.
fn reference(w: &BlockMatrix, x: &[f32], x_rows: usize) -> (Vec<f64>, Vec<f64>) {
    let cols = w.cols;
    // K-quants multiply activations quantized per 256 values (llama.cpp's Q8_K).
    let group = if w.format.is_k_quant() { 256 } else { 32 };
    let mut y = vec![0f64; x_rows * w.rows];
    let mut bound = vec![0f64; x_rows * w.rows];
    for n in 0..w.rows {
        let row = w.dequantize_row(n);
        for t in 0..x_rows {
            let xt = &x[t * cols..(t + 1) * cols];
            let (mut sum, mut err, mut magnitude) = (0f64, 0f64, 0f64);
            for (b, block) in xt.chunks_exact(group).enumerate() {
                let step = block.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 / 127.0;
                for (j, v) in block.iter().enumerate() {
                    let wv = row[group * b + j] as f64;
                    sum += wv * *v as f64;
                    err += wv.abs() * step * 0.5;
                    magnitude += (wv * *v as f64).abs();
                }
            }
            y[t * w.rows + n] = sum;
            let quantized = if w.format.is_float() { 0.0 } else { err };
            bound[t * w.rows + n] = quantized + 1e-5 * magnitude + 1e-6;
        }
    }
    (y, bound)
}

#[test]
fn matmul_matches_an_f64_product_within_the_8_bit_bound() {
    let mut rng = StdRng::seed_from_u64(23);
    for format in BlockFormat::ALL {
        for (rows, cols, x_rows) in [(37, 256, 1), (70, 512, 4), (9, 768, 9)] {
            let w = random_matrix(&mut rng, format, rows, cols);
            let x: Vec<f32> = (0..x_rows * cols)
                .map(|_| rng.random_range(-3f32..3.0))
                .collect();
            let (want, bound) = reference(&w, &x, x_rows);
            // Written into columns 5.. of a wider output, the rest untouched.
            let y_cols = rows + 8;
            let mut y = vec![7.5f32; x_rows * y_cols];
            matmul(&w, &Activations::new(&x, x_rows, cols), &mut y, y_cols, 5);
            for t in 0..x_rows {
                for c in 0..y_cols {
                    let got = y[t * y_cols + c];
                    if !(5..5 + rows).contains(&c) {
                        assert_eq!(
                            got, 7.5,
                            "{format:?}: column {c} outside the matrix was written"
                        );
                        continue;
                    }
                    let i = t * rows + c - 5;
                    assert!(
                        (got as f64 - want[i]).abs() <= bound[i],
                        "{format:?} {rows}x{cols} row {t} col {c}: {got} vs {} (bound {})",
                        want[i],
                        bound[i]
                    );
                }
            }
            // The generation entry point gives the same values.
            let mut z = vec![0f32; x_rows * rows];
            matvec(&w, &x, x_rows, &mut z);
            for i in 0..x_rows * rows {
                assert!(
                    (z[i] as f64 - want[i]).abs() <= bound[i],
                    "{format:?} matvec {i}: {} vs {}",
                    z[i],
                    want[i]
                );
            }
        }
    }
}

#[test]
fn the_bound_is_tight_enough_to_catch_a_wrong_scale() {
    // A kernel that used the wrong half's scale would be off by far more than
    // the 8-bit bound: check the bound is that tight on Q6_K (per-16 scales).
    let mut rng = StdRng::seed_from_u64(24);
    let w = random_matrix(&mut rng, BlockFormat::Q6_K, 4, 256);
    let x: Vec<f32> = (0..256).map(|_| rng.random_range(-3f32..3.0)).collect();
    let (want, bound) = reference(&w, &x, 1);
    let mut data = w.data().to_vec();
    data.swap(192, 193); // exchange the first two sub-scales of row 0
    let swapped = BlockMatrix::new(BlockFormat::Q6_K, 4, 256, data).unwrap();
    let mut y = vec![0f32; 4];
    matmul(&swapped, &Activations::new(&x, 1, 256), &mut y, 4, 0);
    assert!(
        (y[0] as f64 - want[0]).abs() > bound[0],
        "the bound must detect swapped sub-scales"
    );
}

#[test]
fn fused_and_canonical_kernels_agree_on_the_same_inputs() {
    let mut rng = StdRng::seed_from_u64(26);
    let (rows, cols) = (64, 576);
    for format in [
        BlockFormat::Q4_0,
        BlockFormat::Q4_1,
        BlockFormat::Q5_0,
        BlockFormat::Q5_1,
        BlockFormat::Q8_0,
        BlockFormat::Q4_K,
        BlockFormat::Q5_K,
        BlockFormat::Q6_K,
    ] {
        let cols = if format.is_k_quant() { 768 } else { cols };
        let w = random_matrix(&mut rng, format, rows, cols);
        let x: Vec<f32> = (0..cols).map(|_| rng.random_range(-3f32..3.0)).collect();
        let (mut fused, mut canonical) = (vec![0f32; rows], vec![0f32; rows]);
        matvec(&w, &x, 1, &mut fused);
        matmul(&w, &Activations::new(&x, 1, cols), &mut canonical, rows, 0);
        for r in 0..rows {
            let magnitude: f32 = w.dequantize_row(r).iter().map(|v| v.abs() * 3.0).sum();
            assert!(
                (fused[r] - canonical[r]).abs() <= 1e-5 * magnitude,
                "{format:?} row {r}: fused {} vs canonical {}",
                fused[r],
                canonical[r]
            );
        }
    }
}

/// The interleaved kernel against the canonical one on the same 8-bit
/// activations, for every activation count per call (1 to 4).
fn check_interleaved(format: BlockFormat, w: &BlockMatrix, x: &[f32], x_rows: usize) {
    let cols = w.cols;
    let acts = Activations::new(x, x_rows, cols);
    let q = acts.quantized(format);
    let mut buf = CanonBuffer::default();
    buf.fill(format, w.data(), w.row_bytes(), cols, w.rows, Isa::Baseline);
    let groups = w.rows / quad::QUAD;
    let mut quads = QuadBuffer::default();
    quads.fill(format, &buf, w.data(), w.row_bytes(), groups);
    let max_x = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    for n in 1..=quad::ROWS {
        for t0 in (0..x_rows).step_by(n) {
            let tn = n.min(x_rows - t0);
            let mut tile = [[0f32; quad::QUAD]; quad::ROWS];
            for g in 0..groups {
                quads.dot(g, format, q, t0..t0 + tn, &mut tile);
                for r in 0..quad::QUAD {
                    let row = quad::QUAD * g + r;
                    let mut want = vec![0f32; tn];
                    canon::dot_rows(&buf, row, format, q, t0..t0 + tn, &mut want, Isa::Baseline);
                    let magnitude: f32 =
                        w.dequantize_row(row).iter().map(|v| v.abs() * max_x).sum();
                    for (i, (got, want)) in tile.iter().zip(&want).enumerate() {
                        // Same integer sums, another float order: 1e-5 of Σ|w|·max|x|.
                        assert!(
                            (got[r] - want).abs() <= 1e-5 * magnitude,
                            "{format:?} group {g} row {r}, activation {}: {} vs {want}",
                            t0 + i,
                            got[r]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn interleaved_and_canonical_k_quant_kernels_agree() {
    if Isa::detect() != Isa::Avx2Fma {
        eprintln!("no AVX2 on this CPU: the interleaved kernel does not run");
        return;
    }
    let mut rng = StdRng::seed_from_u64(27);
    for format in [BlockFormat::Q4_K, BlockFormat::Q5_K, BlockFormat::Q6_K] {
        let (rows, cols, x_rows) = (12, 768, 7);
        let w = random_matrix(&mut rng, format, rows, cols);
        let x: Vec<f32> = (0..x_rows * cols)
            .map(|_| rng.random_range(-3f32..3.0))
            .collect();
        check_interleaved(format, &w, &x, x_rows);
    }
}

#[test]
fn interleaved_i16_sums_hold_at_the_largest_weights_and_activations() {
    if Isa::detect() != Isa::Avx2Fma {
        eprintln!("no AVX2 on this CPU: the interleaved kernel does not run");
        return;
    }
    let mut rng = StdRng::seed_from_u64(28);
    for format in [BlockFormat::Q4_K, BlockFormat::Q5_K, BlockFormat::Q6_K] {
        let (rows, cols) = (8, 512);
        // Every quant bit set: unsigned weights 15, 31 or 63 everywhere.
        let mut data = random_matrix(&mut rng, format, rows, cols).data().to_vec();
        for block in data.chunks_exact_mut(format.block_bytes()) {
            let bits = match format {
                BlockFormat::Q4_K => 16..144,
                BlockFormat::Q5_K => 16..176,
                _ => 0..192,
            };
            block[bits].fill(0xFF);
        }
        let w = BlockMatrix::new(format, rows, cols, data).unwrap();
        // Activations at ±max: every 8-bit value is ±127, same sign per row.
        let x: Vec<f32> = (0..4 * cols)
            .map(|i| if i / cols % 2 == 0 { 2.5 } else { -2.5 })
            .collect();
        check_interleaved(format, &w, &x, 4);
        // And the sums against the f64 product (a wrapped i16 would be far off).
        let (want, bound) = reference(&w, &x, 4);
        let mut y = vec![0f32; 4 * rows];
        matmul(&w, &Activations::new(&x, 4, cols), &mut y, rows, 0);
        for i in 0..4 * rows {
            assert!(
                (y[i] as f64 - want[i]).abs() <= bound[i],
                "{format:?} {i}: {} vs {} (bound {})",
                y[i],
                want[i],
                bound[i]
            );
        }
    }
}
