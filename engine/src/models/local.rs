//! Models the user brings: GGUF files recorded by `folio models add` under
//! an id of their choosing, listed beside the pinned ones.
//!
//! The registry is one JSON file in the models folder, rewritten atomically
//! (temporary file, fsync, rename). A file is checked when added (it must
//! load: architecture, tensor types, tokenizer) and hashed; each load checks
//! that its size is still the recorded one, so a file replaced behind
//! folio's back is an error that says to add it again.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{find_model, models_dir, MODELS};

/// One model file of the user's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LocalModel {
    /// The id it is asked for by (`--model ID`).
    pub id: String,
    /// Absolute path of the GGUF file (used in place, never copied).
    pub path: PathBuf,
    /// Size in bytes when added; every load checks it is unchanged.
    pub size: u64,
    /// Hex sha256 when added, re-checked by `folio models verify`.
    pub sha256: String,
    /// `general.name` from the file.
    pub name: String,
}

/// The registry file.
pub fn registry_path() -> PathBuf {
    models_dir().join("local.json")
}

/// Every recorded model (none when the registry does not exist).
pub fn list() -> Result<Vec<LocalModel>> {
    let path = registry_path();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a model list; move it away and add your models again",
            path.display()
        )
    })
}

/// The recorded model `id`, if any.
pub fn find(id: &str) -> Result<Option<LocalModel>> {
    Ok(list()?.into_iter().find(|m| m.id == id))
}

/// Checks that `path` is a GGUF folio runs, hashes it and records it as
/// `id` (default: the file name without `.gguf`). Re-adding an id replaces
/// its entry.
pub fn add(path: &Path, id: Option<&str>) -> Result<LocalModel> {
    let path =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let meta = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    let id = match id {
        Some(id) => id.to_string(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".into()),
    };
    if id.is_empty() || id.ends_with(".gguf") || id.contains(['/', '\\']) {
        bail!("'{id}' is not a usable model id: give --id a short name without slashes");
    }
    if find_model(&id).is_ok() {
        bail!(
            "'{id}' is a pinned model's id ({}); give --id another name",
            MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
        );
    }
    let model = crate::llm::Model::load(&path)
        .with_context(|| format!("{} cannot be added", path.display()))?;
    let entry = LocalModel {
        id,
        size: meta.len(),
        sha256: sha256_file(&path)?,
        name: model.config.name.clone(),
        path,
    };
    let mut all = list()?;
    all.retain(|m| m.id != entry.id);
    all.push(entry.clone());
    save(&all)?;
    Ok(entry)
}

/// The path of a recorded model, checked to be the file that was added (by
/// its size; `folio models verify` re-hashes).
pub fn checked_path(m: &LocalModel) -> Result<PathBuf> {
    let size = std::fs::metadata(&m.path).map(|meta| meta.len()).ok();
    if size != Some(m.size) {
        bail!(
            "{} ({}) has changed or gone since `folio models add` ({} bytes recorded, {}); \
             run `folio models add {} --id {}` again",
            m.id,
            m.path.display(),
            m.size,
            size.map_or("missing".to_string(), |s| format!("{s} now")),
            m.path.display(),
            m.id
        );
    }
    Ok(m.path.clone())
}

/// sha256 of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn save(all: &[LocalModel]) -> Result<()> {
    let path = registry_path();
    let dir = path
        .parent()
        .expect("the registry lives in the models folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, serde_json::to_string_pretty(all)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}
