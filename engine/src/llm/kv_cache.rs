//! The key/value cache of a session.
//!
//! Layout per layer: `[position, kv_head, head_dim]`, appended one chunk at a
//! time, as `folio_kernels::attention` expects.

/// Keys and values of one layer.
#[derive(Debug, Default, Clone)]
pub struct LayerKv {
    pub keys: Vec<f32>,
    pub values: Vec<f32>,
}

/// Keys and values of every layer for the tokens seen so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub layers: Vec<LayerKv>,
    /// Tokens cached.
    pub len: usize,
    row: usize,
}

impl KvCache {
    /// An empty cache for `n_layers` layers of `n_kv_heads × head_dim` rows.
    pub fn new(n_layers: usize, n_kv_heads: usize, head_dim: usize) -> Self {
        Self {
            layers: vec![LayerKv::default(); n_layers],
            len: 0,
            row: n_kv_heads * head_dim,
        }
    }

    /// Reserves room for `tokens` more positions so a long prefill does not
    /// reallocate layer by layer.
    pub fn reserve(&mut self, tokens: usize) {
        for l in &mut self.layers {
            l.keys.reserve(tokens * self.row);
            l.values.reserve(tokens * self.row);
        }
    }

    /// Bytes held by cached keys and values.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| (l.keys.len() + l.values.len()) * std::mem::size_of::<f32>())
            .sum()
    }

    /// Forgets everything (the allocation is kept for the next prompt).
    pub fn clear(&mut self) {
        for l in &mut self.layers {
            l.keys.clear();
            l.values.clear();
        }
        self.len = 0;
    }
}
