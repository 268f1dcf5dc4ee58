//! Choosing the next token from logits.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Decoding strategy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Sampling {
    /// Always the most likely token: reproducible answers (the default).
    Greedy,
    /// Temperature then nucleus (top-p) sampling, seeded for reproducibility.
    TopP {
        /// Logits are divided by it; 0 or less means greedy.
        temperature: f32,
        /// Smallest set of likely tokens whose probabilities sum to at least this.
        top_p: f32,
        /// Seed of the generator: the same seed gives the same answer.
        seed: u64,
    },
}

/// Stateful sampler (owns the random generator of seeded sampling).
pub struct Sampler {
    sampling: Sampling,
    rng: StdRng,
    scratch: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler for `sampling`, its generator seeded from it.
    pub fn new(sampling: Sampling) -> Self {
        let seed = match sampling {
            Sampling::TopP { seed, .. } => seed,
            Sampling::Greedy => 0,
        };
        Self {
            sampling,
            rng: StdRng::seed_from_u64(seed),
            scratch: Vec::new(),
        }
    }

    /// Picks a token id from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        match self.sampling {
            Sampling::Greedy => argmax(logits),
            Sampling::TopP { temperature, .. } if temperature <= 0.0 => argmax(logits),
            Sampling::TopP {
                temperature, top_p, ..
            } => {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                self.scratch.clear();
                self.scratch.extend(
                    logits
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (i as u32, ((l - max) / temperature).exp())),
                );
                self.scratch.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
                let total: f32 = self.scratch.iter().map(|p| p.1).sum();
                // Keep the smallest prefix whose mass reaches top_p.
                let mut mass = 0f32;
                let mut keep = self.scratch.len();
                for (i, p) in self.scratch.iter().enumerate() {
                    mass += p.1 / total;
                    if mass >= top_p {
                        keep = i + 1;
                        break;
                    }
                }
                let kept = &self.scratch[..keep];
                let kept_total: f32 = kept.iter().map(|p| p.1).sum();
                let mut r = self.rng.random::<f32>() * kept_total;
                for p in kept {
                    r -= p.1;
                    if r <= 0.0 {
                        return p.0;
                    }
                }
                kept[keep - 1].0
            }
        }
    }
}

/// Index of the largest logit (first one on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_only_draws_from_the_nucleus() {
        // Token 2 holds ~84% of the mass, token 0 ~11%; with top_p 0.9 both are
        // in the nucleus and token 1 (tiny) never is.
        let logits = [2.0f32, -5.0, 4.0];
        let mut s = Sampler::new(Sampling::TopP {
            temperature: 1.0,
            top_p: 0.9,
            seed: 3,
        });
        let draws: Vec<u32> = (0..500).map(|_| s.sample(&logits)).collect();
        assert!(draws.iter().all(|&t| t != 1));
        assert!(draws.contains(&0) && draws.contains(&2));
        assert_eq!(argmax(&logits), 2);
    }
}
