//! The models folio can run: where they come from, how they are fetched and
//! verified, and where they live on disk.

pub mod local;
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

/// Fetches `id` if needed (with a progress bar when `progress`) and loads
/// it. `id` may also be a model of the user's recorded by `folio models add`
/// ([`local`]), or the path of a GGUF file (anything ending in `.gguf`, or
/// an existing file), loaded in place.
pub fn load_model(id: &str, progress: bool) -> anyhow::Result<crate::llm::Model> {
    if let Some(m) = local::find(id)? {
        return Ok(crate::llm::Model::load(&local::checked_path(&m)?)?.with_known_sha256(&m.sha256));
    }
    if let Some(path) = user_model_path(id) {
        if !path.is_file() {
            anyhow::bail!(
                "{} is not a file: give --model a GGUF file's path or one of: {}",
                path.display(),
                MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
            );
        }
        return crate::llm::Model::load(&path);
    }
    let spec = find_model(id)?;
    let path = ensure_model(spec, &models_dir(), progress)?;
    Ok(crate::llm::Model::load(&path)?.with_known_sha256(spec.sha256))
}

/// `id` as the path of a model file of the user's, when it names one rather
/// than a pinned model: it ends in `.gguf` or is an existing file.
pub fn user_model_path(id: &str) -> Option<PathBuf> {
    let path = PathBuf::from(id);
    let gguf = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    let named = find_model(id).is_ok() || local::find(id).ok().flatten().is_some();
    (!named && (gguf || path.is_file())).then_some(path)
}
