//! Rotary position embeddings with pluggable frequencies.
//!
//! Positional range is its own problem, apart from attention cost: a model
//! has only seen rotation angles up to its trained context. [`RopeScaling`]
//! decides the per-pair inverse frequencies and the attention temperature
//! for positions beyond it; [`Rope`] applies them.
//!
//! The modes, with `s` the scaling factor, `b` the base (theta), `d` the
//! rotated dims and `θ_i = b^(-2i/d)`:
//! - `None`: `θ_i`.
//! - `Linear` (Position Interpolation, Chen et al. 2023): `θ_i / s`; every
//!   position is squeezed into the trained range, high frequencies included.
//! - `Ntk` ("NTK-aware", bloc97 2023): base `b · s^(d/(d-2))`; high frequencies
//!   are almost untouched and the lowest one is divided by exactly `s`.
//! - `Yarn` (Peng et al. 2023, "NTK-by-parts" + temperature): with the
//!   wavelength `λ_i = 2π/θ_i` and `r_i = L/λ_i` rotations over the original
//!   context `L`, the ramp `γ = clamp((r - β_slow)/(β_fast - β_slow), 0, 1)`
//!   mixes `θ_i/s` (γ = 0: dims that never complete a turn are interpolated)
//!   with `θ_i` (γ = 1: fast dims are extrapolated); logits are multiplied by
//!   `(0.1·ln s + 1)²` (both q and k by the paper's `√(1/t) = 0.1·ln s + 1`).
//!   The ramp here is the paper's, linear in `r`; Hugging Face and llama.cpp
//!   ramp linearly over the dim index between rounded correction dims, which
//!   differs slightly in the few dims inside the ramp.
//! - `Dynamic` (dynamic NTK): NTK whose base is chosen from the length of the
//!   request, `b · (s·len/L - (s-1))^(d/(d-2))` once `len > L`, and the
//!   trained frequencies below that. It is resolved once per request at the
//!   first prefill (see [`RopeScaling::resolve`]), so every cached key was
//!   rotated with the same frequencies (Hugging Face re-computes per step and
//!   mixes bases inside one cache).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How rotary pairs are laid out inside a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RopeLayout {
    /// Pairs `(2i, 2i+1)`: llama GGUF files (Q/K rows permuted at conversion).
    Interleaved,
    /// Pairs `(i, i + dim/2)`: Qwen2 ("NeoX" style).
    Halves,
}

/// YaRN's ramp defaults (the paper's β = 32, α = 1 for Llama-family models).
pub const YARN_BETA_FAST: f32 = 32.0;
/// See [`YARN_BETA_FAST`].
pub const YARN_BETA_SLOW: f32 = 1.0;

/// How positions are mapped to rotation angles (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RopeScaling {
    /// The trained frequencies.
    None,
    /// Position Interpolation: every frequency divided by `factor`.
    Linear {
        /// `s`: the trained context is stretched `factor` times.
        factor: f32,
    },
    /// NTK-aware: the base raised so the lowest frequency is divided by `factor`.
    Ntk {
        /// `s`: the trained context is stretched `factor` times.
        factor: f32,
    },
    /// YaRN: NTK-by-parts over `original_context`, plus its temperature.
    Yarn {
        /// `s`: positions up to `factor × original_context` stay in the trained angles.
        factor: f32,
        /// The context the model was trained on (`L`), which the ramp is measured over.
        original_context: usize,
        /// Rotations over `L` above which a dim keeps its trained frequency (β_fast).
        beta_fast: f32,
        /// Rotations over `L` below which a dim is fully interpolated (β_slow).
        beta_slow: f32,
    },
    /// Dynamic NTK: `factor` and base picked from the request's length.
    Dynamic {
        /// `s` of the base formula (module docs): how fast the base grows with length.
        factor: f32,
        /// The context the model was trained on; shorter requests run unscaled.
        original_context: usize,
    },
}

impl RopeScaling {
    /// YaRN with the paper's default ramp.
    pub fn yarn(factor: f32, original_context: usize) -> Self {
        RopeScaling::Yarn {
            factor,
            original_context,
            beta_fast: YARN_BETA_FAST,
            beta_slow: YARN_BETA_SLOW,
        }
    }

    /// Short name for reports and flags (`none`, `pi`, `ntk`, `yarn`, `dynamic`).
    pub fn name(&self) -> &'static str {
        match self {
            RopeScaling::None => "none",
            RopeScaling::Linear { .. } => "pi",
            RopeScaling::Ntk { .. } => "ntk",
            RopeScaling::Yarn { .. } => "yarn",
            RopeScaling::Dynamic { .. } => "dynamic",
        }
    }

    /// Rejects factors that would shrink or break the angles.
    pub fn validate(&self) -> anyhow::Result<()> {
        let f = self.factor();
        anyhow::ensure!(
            f.is_finite() && f >= 1.0,
            "RoPE scaling factor must be a number >= 1 (got {f})"
        );
        if let RopeScaling::Yarn {
            beta_fast,
            beta_slow,
            ..
        } = self
        {
            anyhow::ensure!(
                beta_fast > beta_slow,
                "YaRN needs beta_fast > beta_slow (got {beta_fast} and {beta_slow})"
            );
        }
        Ok(())
    }

    /// The scaling a request of `tokens` total tokens runs with: `Dynamic`
    /// becomes `Ntk` (or `None` within the trained range); the others are
    /// fixed already.
    pub fn resolve(&self, tokens: usize) -> RopeScaling {
        match *self {
            RopeScaling::Dynamic {
                factor,
                original_context,
            } if tokens > original_context => {
                let stretch = factor as f64 * tokens as f64 / original_context as f64;
                RopeScaling::Ntk {
                    factor: (stretch - (factor as f64 - 1.0)) as f32,
                }
            }
            RopeScaling::Dynamic { .. } => RopeScaling::None,
            other => other,
        }
    }

    /// Inverse frequency of each rotary pair for a head of `dim` rotated dims.
    /// `Dynamic` must be [`resolve`](Self::resolve)d first; unresolved it uses
    /// the trained frequencies.
    pub fn inverse_frequencies(&self, theta: f32, dim: usize) -> Vec<f32> {
        let theta = theta as f64;
        let d = dim as f64;
        let base =
            |b: f64| -> Vec<f64> { (0..dim / 2).map(|i| b.powf(-2.0 * i as f64 / d)).collect() };
        let freqs = match *self {
            RopeScaling::None | RopeScaling::Dynamic { .. } => base(theta),
            RopeScaling::Linear { factor } => {
                base(theta).into_iter().map(|f| f / factor as f64).collect()
            }
            RopeScaling::Ntk { factor } => base(theta * (factor as f64).powf(d / (d - 2.0))),
            RopeScaling::Yarn {
                factor,
                original_context,
                beta_fast,
                beta_slow,
            } => base(theta)
                .into_iter()
                .map(|f| {
                    let rotations = original_context as f64 * f / (2.0 * std::f64::consts::PI);
                    let ramp = ((rotations - beta_slow as f64) / (beta_fast - beta_slow) as f64)
                        .clamp(0.0, 1.0);
                    (1.0 - ramp) * f / factor as f64 + ramp * f
                })
                .collect(),
        };
        freqs.into_iter().map(|f| f as f32).collect()
    }

    /// Multiplier on the attention logits' `1/sqrt(d)` scale: YaRN's
    /// temperature, 1 otherwise.
    pub fn attention_factor(&self) -> f32 {
        match *self {
            RopeScaling::Yarn { factor, .. } if factor > 1.0 => {
                let m = 0.1 * factor.ln() + 1.0;
                m * m
            }
            _ => 1.0,
        }
    }

    /// The factor by which positions are stretched (1 for none).
    pub fn factor(&self) -> f32 {
        match *self {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor }
            | RopeScaling::Ntk { factor }
            | RopeScaling::Yarn { factor, .. }
            | RopeScaling::Dynamic { factor, .. } => factor,
        }
    }

    /// Positions this scaling claims to cover: the trained context times the
    /// factor (`Dynamic` adapts to any length).
    pub fn covered_context(&self, trained: usize) -> usize {
        match self {
            RopeScaling::Dynamic { .. } => usize::MAX,
            other => (trained as f64 * other.factor() as f64) as usize,
        }
    }
}

/// Rotates query and key heads in place.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    layout: RopeLayout,
    /// The scaling these frequencies came from (`Dynamic` already resolved).
    pub scaling: RopeScaling,
}

/// Cosines and sines of every (position, rotary pair) of one forward chunk,
/// computed once and shared by all layers' queries and keys.
pub struct RopeTable {
    cos_sin: Vec<(f32, f32)>,
    pairs: usize,
}

impl Rope {
    /// Frequencies for `rotary_dim` dims of base `theta` under `scaling`.
    pub fn new(theta: f32, rotary_dim: usize, layout: RopeLayout, scaling: RopeScaling) -> Self {
        Self {
            inv_freq: scaling.inverse_frequencies(theta, rotary_dim),
            layout,
            scaling,
        }
    }

    /// Divides each pair's frequency by the model's factor for it (Llama
    /// 3.1's `rope_freqs`, Phi-3's LongRoPE factors), as llama.cpp does on
    /// top of any scaling. Factors of the wrong count are the loader's
    /// error, checked there; here they are ignored past the pairs.
    pub fn with_factors(mut self, factors: Option<&[f32]>) -> Self {
        if let Some(factors) = factors {
            for (f, factor) in self.inv_freq.iter_mut().zip(factors) {
                *f /= factor;
            }
        }
        self
    }

    /// A short hash of the frequencies, layout and scaling: two ropes with
    /// the same fingerprint rotate every position alike, which a saved KV
    /// cache must match to be reused.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(format!("{:?} {:?}", self.layout, self.scaling));
        for f in &self.inv_freq {
            h.update(f.to_bits().to_le_bytes());
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The angles of `rows` consecutive positions from `first_pos`.
    pub fn table(&self, first_pos: usize, rows: usize) -> RopeTable {
        let pairs = self.inv_freq.len();
        let mut cos_sin = Vec::with_capacity(rows * pairs);
        for r in 0..rows {
            // f64 angles: positions reach 10^5 and f32 would lose the phase.
            let pos = (first_pos + r) as f64;
            cos_sin.extend(self.inv_freq.iter().map(|f| {
                let (s, c) = (pos * *f as f64).sin_cos();
                (c as f32, s as f32)
            }));
        }
        RopeTable { cos_sin, pairs }
    }

    /// Rotates `x`, laid out `[rows, n_heads, head_dim]`, with the angles of
    /// `table` (row `r` of `x` uses row `r` of the table).
    pub fn apply(&self, table: &RopeTable, x: &mut [f32], n_heads: usize, head_dim: usize) {
        let half = table.pairs;
        x.par_chunks_mut(n_heads * head_dim)
            .zip(table.cos_sin.par_chunks(half))
            .for_each(|(row, cos_sin)| {
                for head in row.chunks_exact_mut(head_dim) {
                    for (i, &(c, s)) in cos_sin.iter().enumerate() {
                        let (a, b) = match self.layout {
                            RopeLayout::Interleaved => (2 * i, 2 * i + 1),
                            RopeLayout::Halves => (i, i + half),
                        };
                        let (x0, x1) = (head[a], head[b]);
                        head[a] = x0 * c - x1 * s;
                        head[b] = x0 * s + x1 * c;
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    //! Frequencies against independent computations of the papers' formulas,
    //! written from the definitions (wavelengths, bases) rather than from
    //! the code above.
    use super::*;
    use std::f64::consts::PI;

    const THETA: f32 = 100_000.0;
    const DIM: usize = 64;

    fn trained(i: usize) -> f64 {
        1.0 / (THETA as f64).powf(2.0 * i as f64 / DIM as f64)
    }

    fn close(a: f32, b: f64) -> bool {
        ((a as f64 - b) / b).abs() < 1e-6
    }

    #[test]
    fn linear_divides_every_frequency() {
        let f = RopeScaling::Linear { factor: 4.0 }.inverse_frequencies(THETA, DIM);
        for (i, x) in f.iter().enumerate() {
            assert!(close(*x, trained(i) / 4.0), "pair {i}");
        }
    }

    #[test]
    fn ntk_keeps_the_highest_and_divides_the_lowest_frequency() {
        let s = 4.0f64;
        let f = RopeScaling::Ntk { factor: s as f32 }.inverse_frequencies(THETA, DIM);
        // bloc97: base' = base · s^(d/(d-2)).
        let base = THETA as f64 * s.powf(DIM as f64 / (DIM as f64 - 2.0));
        for (i, x) in f.iter().enumerate() {
            assert!(
                close(*x, base.powf(-2.0 * i as f64 / DIM as f64)),
                "pair {i}"
            );
        }
        assert_eq!(f[0], 1.0);
        assert!(close(f[DIM / 2 - 1], trained(DIM / 2 - 1) / s));
    }

    #[test]
    fn yarn_follows_ntk_by_parts_and_its_temperature() {
        let (s, original) = (4.0f64, 8192usize);
        let scaling = RopeScaling::yarn(s as f32, original);
        let f = scaling.inverse_frequencies(THETA, DIM);
        let (alpha, beta) = (1.0f64, 32.0f64);
        let (mut interpolated, mut extrapolated, mut mixed) = (0, 0, 0);
        for (i, x) in f.iter().enumerate() {
            // Paper, section 3.2: λ = 2π/θ, r = L/λ, γ ramps from α to β.
            let wavelength = 2.0 * PI * (THETA as f64).powf(2.0 * i as f64 / DIM as f64);
            let r = original as f64 / wavelength;
            let want = if r < alpha {
                interpolated += 1;
                trained(i) / s
            } else if r > beta {
                extrapolated += 1;
                trained(i)
            } else {
                mixed += 1;
                let gamma = (r - alpha) / (beta - alpha);
                (1.0 - gamma) * trained(i) / s + gamma * trained(i)
            };
            assert!(close(*x, want), "pair {i}: {x} vs {want}");
        }
        // With theta 1e5 over 8192 positions all three regimes occur.
        assert!(interpolated > 0 && extrapolated > 0 && mixed > 0);
        let t = 0.1 * s.ln() + 1.0;
        assert!(close(scaling.attention_factor(), t * t));
    }

    #[test]
    fn dynamic_is_ntk_at_the_request_length() {
        let dynamic = RopeScaling::Dynamic {
            factor: 1.0,
            original_context: 8192,
        };
        assert_eq!(dynamic.resolve(4000), RopeScaling::None);
        assert_eq!(dynamic.resolve(16384), RopeScaling::Ntk { factor: 2.0 });
        let scaled = RopeScaling::Dynamic {
            factor: 2.0,
            original_context: 1000,
        };
        // Hugging Face's formula: s·len/L - (s - 1) = 2·3000/1000 - 1.
        assert_eq!(scaled.resolve(3000), RopeScaling::Ntk { factor: 5.0 });
    }

    #[test]
    fn factors_below_one_are_refused() {
        assert!(RopeScaling::Linear { factor: 0.5 }.validate().is_err());
        assert!(RopeScaling::Ntk { factor: f32::NAN }.validate().is_err());
        assert!(RopeScaling::yarn(2.0, 8192).validate().is_ok());
    }
}
