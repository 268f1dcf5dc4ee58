//! folio's reading of every GGUF block type against candle's, an
//! independent implementation of ggml's formulas, on random blocks (random
//! scales, nibbles, high bits and sub-scales; never zeros). folio's kernels
//! are tested against `folio_kernels::quant::blocks::dequantize`; this pins
//! that reference to what the files mean.

use candle_core::quantized::k_quants::{
    BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8_0, GgmlType,
};
use folio_kernels::quant::{blocks, BlockFormat};
use half::f16;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// `n` random blocks of `format` with sane f16 scales.
fn random_blocks(rng: &mut StdRng, format: BlockFormat, n: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..n {
        let mut block: Vec<u8> = (0..format.block_bytes()).map(|_| rng.random()).collect();
        let mut put =
            |at: usize, v: f32| block[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
        match format {
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

/// candle's dequantization of `bytes` read as blocks of `T`.
fn candle_floats<T: GgmlType>(bytes: &[u8]) -> Vec<f32> {
    let size = std::mem::size_of::<T>();
    assert_eq!(
        bytes.len() % size,
        0,
        "candle's block size differs from ggml's"
    );
    let n = bytes.len() / size;
    let mut blocks: Vec<T> = Vec::with_capacity(n);
    // SAFETY: the blocks are plain-old-data structs of ggml's layout (f16,
    // u8 and i8 fields, any bit pattern valid); the copy fills exactly the
    // `n` blocks' bytes of an allocation aligned for `T`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), blocks.as_mut_ptr() as *mut u8, n * size);
        blocks.set_len(n);
    }
    let mut out = vec![0f32; n * T::BLCK_SIZE];
    T::to_float(&blocks, &mut out);
    out
}

#[test]
fn every_block_type_reads_as_candle_reads_it() {
    let mut rng = StdRng::seed_from_u64(31);
    type Reader = fn(&[u8]) -> Vec<f32>;
    let cases: [(BlockFormat, Reader); 8] = [
        (BlockFormat::Q4_0, candle_floats::<BlockQ4_0>),
        (BlockFormat::Q4_1, candle_floats::<BlockQ4_1>),
        (BlockFormat::Q5_0, candle_floats::<BlockQ5_0>),
        (BlockFormat::Q5_1, candle_floats::<BlockQ5_1>),
        (BlockFormat::Q8_0, candle_floats::<BlockQ8_0>),
        (BlockFormat::Q4_K, candle_floats::<BlockQ4K>),
        (BlockFormat::Q5_K, candle_floats::<BlockQ5K>),
        (BlockFormat::Q6_K, candle_floats::<BlockQ6K>),
    ];
    for (format, candle) in cases {
        let bytes = random_blocks(&mut rng, format, 24);
        let theirs = candle(&bytes);
        let mut ours = vec![0f32; theirs.len()];
        blocks::dequantize(format, &bytes, &mut ours);
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            // The same formula, products grouped differently: 1e-6 of the largest weight.
            assert!(
                (a - b).abs() <= 1e-6 * scale,
                "{format:?} weight {i}: folio {a}, candle {b}"
            );
        }
    }
}
