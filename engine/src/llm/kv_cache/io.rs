//! A cache written to a byte stream and read back, for the prefix cache on
//! disk (`crate::prefix_cache`). Every section is a little-endian element
//! count then the elements, streamed through a small buffer: a cache of
//! gigabytes is never held twice. Reading checks each count against what
//! the header's token count implies, so a corrupt or hostile file fails
//! with an error instead of allocating what it claims.

use std::io::{Read, Write};

use anyhow::{bail, Result};
use half::f16;

use super::super::kv_int8::{Int8Kv, KEY_GROUP};
use super::{KvCache, KvDtype, LayerKv, Store};

/// Elements converted per buffered write or read.
const PIECE: usize = 1 << 16;

/// An element type of a section: how it becomes bytes.
trait Element: Copy + Default {
    const BYTES: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

impl Element for f32 {
    const BYTES: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for f16 {
    const BYTES: usize = 2;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f16::from_bits(u16::from_le_bytes([b[0], b[1]]))
    }
}

impl Element for u8 {
    const BYTES: usize = 1;
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
    fn get(b: &[u8]) -> Self {
        b[0]
    }
}

impl Element for (f32, f32) {
    const BYTES: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn get(b: &[u8]) -> Self {
        (f32::get(b), f32::get(&b[4..]))
    }
}

fn write_section<T: Element>(w: &mut dyn Write, items: &[T]) -> Result<()> {
    w.write_all(&(items.len() as u64).to_le_bytes())?;
    let mut buf = Vec::with_capacity(PIECE.min(items.len()) * T::BYTES);
    for piece in items.chunks(PIECE) {
        buf.clear();
        for &x in piece {
            x.put(&mut buf);
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Reads a section that must hold exactly `expected` elements.
fn read_section<T: Element>(r: &mut dyn Read, expected: usize, what: &str) -> Result<Vec<T>> {
    let mut count = [0u8; 8];
    r.read_exact(&mut count)?;
    let count = u64::from_le_bytes(count);
    if count != expected as u64 {
        bail!("the cache's {what} hold {count} values where {expected} were expected");
    }
    let mut out = Vec::with_capacity(expected);
    let mut buf = vec![0u8; PIECE.min(expected.max(1)) * T::BYTES];
    while out.len() < expected {
        let n = (expected - out.len()).min(PIECE);
        let bytes = &mut buf[..n * T::BYTES];
        r.read_exact(bytes)?;
        out.extend(bytes.chunks_exact(T::BYTES).map(T::get));
    }
    Ok(out)
}

impl KvCache {
    /// Writes every layer's keys and values (not the key summaries, which
    /// [`KvCache::read_from`]'s caller rebuilds from the keys).
    pub(crate) fn write_to(&self, w: &mut dyn Write) -> Result<()> {
        for layer in &self.layers {
            match &layer.store {
                Store::F32 { keys, values } => {
                    write_section(w, keys)?;
                    write_section(w, values)?;
                }
                Store::F16 { keys, values } => {
                    write_section(w, keys)?;
                    write_section(w, values)?;
                }
                Store::Int8(q) => {
                    let p = q.parts();
                    write_section(w, p.key_codes)?;
                    write_section(w, p.key_params)?;
                    write_section(w, p.key_tail)?;
                    write_section(w, p.value_codes)?;
                    write_section(w, p.value_params)?;
                }
            }
        }
        Ok(())
    }

    /// Reads a cache of `len` tokens written by [`KvCache::write_to`] for a
    /// model of this shape and `dtype`.
    pub(crate) fn read_from(
        r: &mut dyn Read,
        (n_layers, n_kv_heads, head_dim): (usize, usize, usize),
        dtype: KvDtype,
        len: usize,
    ) -> Result<KvCache> {
        let mut cache = KvCache::new(n_layers, n_kv_heads, head_dim, dtype);
        let row = cache.row;
        let values = len
            .checked_mul(row)
            .ok_or_else(|| anyhow::anyhow!("the cache claims {len} tokens"))?;
        for layer in &mut cache.layers {
            layer.store = match dtype {
                KvDtype::F32 => Store::F32 {
                    keys: read_section(r, values, "keys")?,
                    values: read_section(r, values, "values")?,
                },
                KvDtype::F16 => Store::F16 {
                    keys: read_section(r, values, "keys")?,
                    values: read_section(r, values, "values")?,
                },
                KvDtype::Int8 => {
                    let grouped = len / KEY_GROUP;
                    let grouped_values = grouped * KEY_GROUP * row;
                    Store::Int8(Int8Kv::from_parts(
                        (row, head_dim),
                        read_section(r, grouped_values, "key codes")?,
                        read_section(r, grouped * row, "key ranges")?,
                        read_section(r, values - grouped_values, "recent keys")?,
                        read_section(r, values, "value codes")?,
                        read_section(r, len * n_kv_heads, "value ranges")?,
                    ))
                }
            };
        }
        cache.len = len;
        Ok(cache)
    }
}

impl LayerKv {
    #[cfg(test)]
    fn same_values(&self, other: &LayerKv) -> bool {
        match (&self.store, &other.store) {
            (Store::F32 { keys: a, values: b }, Store::F32 { keys: c, values: d }) => {
                a == c && b == d
            }
            (Store::F16 { keys: a, values: b }, Store::F16 { keys: c, values: d }) => {
                a == c && b == d
            }
            (Store::Int8(a), Store::Int8(b)) => a.parts() == b.parts(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn filled(dtype: KvDtype, tokens: usize) -> KvCache {
        let (layers, heads, dim) = (3, 2, 16);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut cache = KvCache::new(layers, heads, dim, dtype);
        // Uneven appends, as prefill chunks and decode steps make them.
        let mut done = 0;
        for step in [5, 40, 1, tokens - 46] {
            let n = heads * dim * step;
            let keys: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
            let values: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
            for l in &mut cache.layers {
                l.append(&keys, &values);
            }
            done += step;
        }
        cache.len = done;
        cache
    }

    #[test]
    fn every_dtype_reads_back_exactly() {
        for dtype in [KvDtype::F32, KvDtype::F16, KvDtype::Int8] {
            let cache = filled(dtype, 77);
            let mut bytes = Vec::new();
            cache.write_to(&mut bytes).unwrap();
            let back = KvCache::read_from(&mut bytes.as_slice(), (3, 2, 16), dtype, 77).unwrap();
            assert_eq!(back.len, 77);
            assert_eq!(back.bytes(), cache.bytes(), "{dtype:?}");
            for (a, b) in cache.layers.iter().zip(&back.layers) {
                assert!(a.same_values(b), "{dtype:?}");
            }
        }
    }

    #[test]
    fn a_wrong_length_or_a_short_file_is_an_error() {
        let cache = filled(KvDtype::F32, 60);
        let mut bytes = Vec::new();
        cache.write_to(&mut bytes).unwrap();
        // Another token count than the one written: the counts disagree.
        let err = KvCache::read_from(&mut bytes.as_slice(), (3, 2, 16), KvDtype::F32, 61)
            .unwrap_err()
            .to_string();
        assert!(err.contains("were expected"), "{err}");
        // Cut short: an end-of-file error, not a panic.
        let cut = &bytes[..bytes.len() - 5];
        assert!(KvCache::read_from(&mut &cut[..], (3, 2, 16), KvDtype::F32, 60).is_err());
        // A count a hostile file inflates is refused before allocating it.
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(KvCache::read_from(&mut huge.as_slice(), (3, 2, 16), KvDtype::F32, 60).is_err());
    }
}
