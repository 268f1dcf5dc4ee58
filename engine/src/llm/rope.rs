//! Rotary position embeddings with pluggable frequencies.
//!
//! [`RopeScaling`] decides the per-pair inverse frequencies and the attention
//! temperature; [`Rope`] applies them. Positions beyond the trained context
//! need a scaling (issue: Position Interpolation, NTK, YaRN); the seam for them
//! is [`RopeScaling::inverse_frequencies`].

use rayon::prelude::*;
use serde::Serialize;

/// How rotary pairs are laid out inside a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RopeLayout {
    /// Pairs `(2i, 2i+1)`: llama GGUF files (Q/K rows permuted at conversion).
    Interleaved,
    /// Pairs `(i, i + dim/2)`: Qwen2 ("NeoX" style).
    Halves,
}

/// How positions are mapped to rotation angles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RopeScaling {
    /// The trained frequencies `theta^(-2i/d)`.
    None,
    /// Position Interpolation: every frequency divided by `factor`.
    Linear { factor: f32 },
}

impl RopeScaling {
    /// Inverse frequency of each rotary pair for a head of `dim` rotated dims.
    pub fn inverse_frequencies(&self, theta: f32, dim: usize) -> Vec<f32> {
        let base: Vec<f32> = (0..dim / 2)
            .map(|i| 1.0 / (theta as f64).powf(2.0 * i as f64 / dim as f64) as f32)
            .collect();
        match *self {
            RopeScaling::None => base,
            RopeScaling::Linear { factor } => base.into_iter().map(|f| f / factor).collect(),
        }
    }

    /// Multiplier on the attention logits' `1/sqrt(d)` scale.
    pub fn attention_factor(&self) -> f32 {
        1.0
    }

    /// The factor by which positions are stretched (1 for none).
    pub fn factor(&self) -> f32 {
        match *self {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor } => factor,
        }
    }
}

/// Rotates query and key heads in place.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    layout: RopeLayout,
    pub scaling: RopeScaling,
}

/// Cosines and sines of every (position, rotary pair) of one forward chunk,
/// computed once and shared by all layers' queries and keys.
pub struct RopeTable {
    cos_sin: Vec<(f32, f32)>,
    pairs: usize,
}

impl Rope {
    pub fn new(theta: f32, rotary_dim: usize, layout: RopeLayout, scaling: RopeScaling) -> Self {
        Self {
            inv_freq: scaling.inverse_frequencies(theta, rotary_dim),
            layout,
            scaling,
        }
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
