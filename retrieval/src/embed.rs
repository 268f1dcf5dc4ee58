//! Dense embeddings with fastembed: all-MiniLM-L6-v2 (int8 ONNX, 384 dims,
//! mean pooling, L2-normalised) on ONNX Runtime loaded at run time from the
//! pinned PyPI wheel. A missing or too old runtime is an error, not a panic.

use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

use crate::models;

/// Identifies the embedding model in a corpus manifest: vectors from another
/// model are not comparable, so a store refuses to mix them.
pub const MODEL_ID: &str = "all-minilm-l6-v2-int8";
/// Dimensions of the embedding vectors.
pub const DIMS: usize = 384;
/// Tokens the model reads per text (longer texts are truncated).
pub const MAX_TOKENS: usize = 256;

static ORT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime from the fetched library once per process and
/// returns the process's one environment.
fn init_ort(progress: bool) -> Result<ort::environment::Environment> {
    let path = models::path(&models::ONNXRUNTIME, progress)?;
    let result = ORT.get_or_init(|| {
        ort::init_from(&path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?
            .with_name("folio")
            .build()
            .map_err(|e| format!("ONNX Runtime environment: {e}"))
    });
    result.clone().map_err(|e| anyhow!("{e}"))
}

/// The embedding model, ready to embed batches of texts. Thread-safe: calls
/// are serialised (ONNX Runtime parallelises inside one call).
pub struct Embedder {
    model: Mutex<TextEmbedding>,
    batch: usize,
}

impl Embedder {
    /// Fetches (once) and loads the model; `threads` caps ONNX Runtime's
    /// intra-op threads (`None`: all cores).
    pub fn load(threads: Option<usize>, progress: bool) -> Result<Self> {
        let env = init_ort(progress)?;
        let read = |a: &folio_corpora::fetch::Artifact| -> Result<Vec<u8>> {
            let p = models::path(a, progress)?;
            std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
        };
        let files = TokenizerFiles {
            tokenizer_file: read(&models::MINILM_TOKENIZER)?,
            config_file: read(&models::MINILM_CONFIG)?,
            special_tokens_map_file: read(&models::MINILM_SPECIAL_TOKENS)?,
            tokenizer_config_file: read(&models::MINILM_TOKENIZER_CONFIG)?,
        };
        let model = UserDefinedEmbeddingModel::new(read(&models::MINILM_ONNX)?, files)
            .with_pooling(Pooling::Mean);
        let mut opts = InitOptionsUserDefined::new()
            .with_environment(env)
            .with_max_length(MAX_TOKENS);
        if let Some(t) = threads {
            opts = opts.with_intra_threads(t.max(1));
        }
        let model = TextEmbedding::try_new_from_user_defined(model, opts)
            .map_err(|e| anyhow!("cannot load the embedding model: {e}"))?;
        Ok(Self {
            model: Mutex::new(model),
            batch: 32,
        })
    }

    /// Unit-length embeddings of `texts`, in order.
    pub fn embed<S: AsRef<str> + Send + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Batches are padded to their longest text: embed in length order so
        // that texts of similar length share a batch, then restore the order.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].as_ref().len());
        let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_ref()).collect();
        let mut model = self
            .model
            .lock()
            .map_err(|_| anyhow!("embedder poisoned"))?;
        let vecs = model
            .embed(&sorted, Some(self.batch))
            .map_err(|e| anyhow!("embedding failed: {e}"))?;
        let mut out = vec![Vec::new(); texts.len()];
        for (i, mut v) in order.into_iter().zip(vecs) {
            normalize(&mut v);
            out[i] = v;
        }
        Ok(out)
    }

    /// The embedding of one query.
    pub fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        self.embed(&[query])?
            .pop()
            .ok_or_else(|| anyhow!("no embedding returned"))
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
