//! Hand-made mutations of real files for the test suites' bounded-time
//! fuzzing ("mutation tests"): every loader folio has (HTML, Markdown, PDF,
//! GGUF headers, store manifests, evaluation JSONL) is fed thousands of
//! mutated copies of a valid input and must answer each with a value or an
//! error, never a panic and never an allocation past its bound.
//!
//! It lives here, in the lowest crate, so that every crate's tests use the
//! same mutations; nothing in folio's commands calls it.

/// A deterministic source of mutations (xorshift64*, seeded).
pub struct Mutator {
    state: u64,
}

/// Byte strings that loaders give meaning to, spliced in by [`Mutator`].
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"<!--",
    b"-->",
    b"&",
    b"&#",
    b"&#x",
    b";",
    b"<style>",
    b"<script>",
    b"<pre>",
    b"<h1>",
    b"# ",
    b"\n\n",
    b"\r",
    b"\0",
    b"\xff\xfe",
    b"\xe4\xb8",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"-1",
    b"1e308",
    b"18446744073709551615",
    b"NaN",
    b"%PDF-1.5",
    b"obj",
    b"endobj",
    b"stream",
    b"endstream",
    b"<<",
    b">>",
    b"/Length 999999999",
    b"xref",
    b"trailer",
    b"GGUF",
];

impl Mutator {
    /// A mutator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        }
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A copy of `input` with one to four mutations: bytes flipped, set to
    /// extreme values, removed, duplicated, inserted from [`TOKENS`], or the
    /// tail cut off. Offsets favour the start, where headers are.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let len = out.len().max(1);
            let at = if self.below(2) == 0 {
                self.below(len.min(256))
            } else {
                self.below(len)
            };
            let at = at.min(out.len());
            match self.below(7) {
                0 if at < out.len() => out[at] ^= 1 << self.below(8),
                1 if at < out.len() => out[at] = [0x00, 0xff, 0x7f, 0x80][self.below(4)],
                2 => {
                    let end = (at + 1 + self.below(16)).min(out.len());
                    out.drain(at..end);
                }
                3 => {
                    let end = (at + 1 + self.below(64)).min(out.len());
                    let copy = out[at..end].to_vec();
                    out.splice(at..at, copy);
                }
                4 | 5 => {
                    let token = TOKENS[self.below(TOKENS.len())];
                    out.splice(at..at, token.iter().copied());
                }
                _ => out.truncate(at),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_change_the_input() {
        let input = b"<p>some text &amp; more</p>".to_vec();
        let (mut a, mut b) = (Mutator::new(7), Mutator::new(7));
        let mut changed = 0;
        for _ in 0..200 {
            let (x, y) = (a.mutate(&input), b.mutate(&input));
            assert_eq!(x, y);
            changed += usize::from(x != input);
        }
        assert!(changed > 180, "{changed} of 200 changed");
    }
}
