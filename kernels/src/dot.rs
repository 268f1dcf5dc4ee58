//! Vector primitives shared by the kernels, written so that LLVM vectorises
//! them, and compiled twice: once for the baseline target and once with
//! AVX2+FMA, chosen at run time by [`Isa::detect`].

/// The instruction set a kernel instance is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Whatever the build target guarantees (SSE2 on x86_64).
    Baseline,
    /// x86_64 with AVX2, FMA and F16C (every x86-64-v3 CPU).
    Avx2Fma,
}

impl Isa {
    /// The best instruction set this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2Fma;
            }
        }
        Isa::Baseline
    }
}

/// `a * b + c`, fused when the instance is compiled with FMA (a libm call
/// otherwise, hence the flag).
#[inline(always)]
pub fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Dot product with eight independent accumulators, which breaks the
/// dependency chain of a naive sum and maps onto one 256-bit register.
#[inline(always)]
pub fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let mut tail = 0f32;
    for (x, y) in chunks_a.remainder().iter().zip(chunks_b.remainder()) {
        tail = madd::<FMA>(*x, *y, tail);
    }
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] = madd::<FMA>(ca[i], cb[i], acc[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha * x`, the accumulation step of attention's weighted sum of values.
#[inline(always)]
pub fn axpy<const FMA: bool>(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = madd::<FMA>(alpha, *xi, *yi);
    }
}

/// `e^x` for `x <= 0` (softmax after subtracting the max), branch-free so a
/// loop over it vectorises. Range reduction `x = n·ln2 + r`, `|r| <= ln2/2`,
/// then a degree-6 polynomial for `e^r`: relative error below 3e-7 (about 2 ulp) on
/// [-87, 0] (tested); inputs below -87 give e^-87 (1.6e-38), nothing next to
/// the softmax's largest term, which is 1.
#[inline(always)]
pub fn exp_neg<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.max(-87.0);
    // Round to nearest through the float adder (vectorises without SSE4.1).
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = madd::<FMA>(n, -LN2_LO, madd::<FMA>(n, -LN2_HI, x));
    // Taylor coefficients 1/k! for k = 6..0, Horner form.
    let mut p = 1.0 / 720.0;
    p = madd::<FMA>(p, r, 1.0 / 120.0);
    p = madd::<FMA>(p, r, 1.0 / 24.0);
    p = madd::<FMA>(p, r, 1.0 / 6.0);
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r, 1.0);
    p = madd::<FMA>(p, r, 1.0);
    // 2^n through the exponent bits (n >= -126 because x >= -87).
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `x · sigmoid(x)` (SiLU) for any finite `x`, through [`exp_neg`] so that
/// it vectorises: for `x >= 0`, `sigmoid(x) = 1 / (1 + e^-x)`; for `x < 0`,
/// `e^x / (1 + e^x)`.
#[inline(always)]
pub fn silu<const FMA: bool>(x: f32) -> f32 {
    let e = exp_neg::<FMA>(-x.abs());
    let sigmoid = if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    x * sigmoid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_on_odd_lengths() {
        for n in [1usize, 7, 8, 9, 64, 67] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot::<false>(&a, &b) as f64 - naive).abs() < 1e-5, "n={n}");
            assert!((dot::<true>(&a, &b) as f64 - naive).abs() < 1e-5, "n={n}");
        }
    }

    #[test]
    fn exp_neg_is_within_3e7_relative_of_libm() {
        let mut worst = 0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let want = (x as f64).exp();
            let got = exp_neg::<false>(x) as f64;
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_neg::<false>(-1000.0), exp_neg::<false>(-87.0));
    }

    #[test]
    fn silu_matches_its_definition() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.05;
            let want = x as f64 / (1.0 + (-(x as f64)).exp());
            let got = silu::<true>(x) as f64;
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "x={x}: {got} vs {want}"
            );
        }
    }
}
