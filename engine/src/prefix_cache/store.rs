//! The cache folder: listing, least-recently-used eviction under the cap,
//! and clearing. "Used" is the file's modification time, set on each
//! restore. Only `*.kv` files and this module's temporary files are ever
//! removed; anything else in the folder is left alone.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::Serialize;

use super::file;

/// One saved prefix, as `folio cache list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The file.
    pub path: PathBuf,
    /// What was read (document names).
    pub label: String,
    /// The model that read it.
    pub model: String,
    /// Prompt tokens cached.
    pub tokens: usize,
    /// KV element type.
    pub dtype: String,
    /// Bytes on disk.
    pub bytes: u64,
    /// Seconds since it was last written or restored.
    pub idle_seconds: u64,
    /// Why the file cannot be read, when it cannot (it would be discarded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// The saved prefixes in `dir`, most recently used first.
pub fn list(dir: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (path, bytes, used) in cache_files(dir)? {
        let idle_seconds = SystemTime::now()
            .duration_since(used)
            .map_or(0, |d| d.as_secs());
        let entry = match file::open(&path) {
            Ok(o) => Entry {
                path,
                label: o.header.label,
                model: o.header.model,
                tokens: o.header.tokens.len(),
                dtype: o.header.dtype.name().to_string(),
                bytes,
                idle_seconds,
                unreadable: None,
            },
            Err(e) => Entry {
                path,
                label: String::new(),
                model: String::new(),
                tokens: 0,
                dtype: String::new(),
                bytes,
                idle_seconds,
                unreadable: Some(format!("{e:#}")),
            },
        };
        out.push(entry);
    }
    out.sort_by_key(|e| e.idle_seconds);
    Ok(out)
}

/// Marks `path` as just used.
pub fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Removes the least recently used files until the folder holds at most
/// `max_bytes`, never `keep` (just written). Another process removing a
/// file first is not an error.
pub fn evict(dir: &Path, max_bytes: u64, keep: &Path) {
    let Ok(mut files) = cache_files(dir) else {
        return;
    };
    files.sort_by_key(|(_, _, used)| *used);
    let mut total: u64 = files.iter().map(|(_, b, _)| b).sum();
    for (path, bytes, _) in files {
        if total <= max_bytes {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= bytes;
        }
    }
}

/// Removes every cache file and leftover temporary file in `dir`.
pub fn clear(dir: &Path) -> Result<(usize, u64)> {
    let (mut count, mut bytes) = (0, 0);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if is_cache_file(&path) || is_temp_file(&path) {
            let size = entry.metadata().map_or(0, |m| m.len());
            if std::fs::remove_file(&path).is_ok() {
                count += 1;
                bytes += size;
            }
        }
    }
    Ok((count, bytes))
}

/// `(path, bytes, last used)` of every `*.kv` file in `dir`.
fn cache_files(dir: &Path) -> Result<Vec<(PathBuf, u64, SystemTime)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    Ok(entries
        .flatten()
        .filter(|e| is_cache_file(&e.path()))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()?))
        })
        .collect())
}

fn is_cache_file(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "kv")
}

fn is_temp_file(path: &Path) -> bool {
    path.is_file()
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(file::TEMP_PREFIX))
}

/// The last measured speeds of restoring and saving a prefix on this
/// folder's disk, which the router prices a full read with.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Rates {
    /// Bytes per second of the last restore from disk.
    pub restore_bytes_per_s: Option<f64>,
    /// Bytes per second of the last save.
    pub save_bytes_per_s: Option<f64>,
}

const RATES: &str = "rates.json";

/// The rates recorded in `dir` (none yet: both `None`).
pub fn rates(dir: &Path) -> Rates {
    std::fs::read(dir.join(RATES))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records one restore's or save's speed (written to a temporary file and
/// renamed, so a reader sees the old rates or the new, never half).
pub fn record_rate(dir: &Path, restore: bool, bytes: u64, seconds: f64) {
    if seconds <= 0.0 || bytes == 0 {
        return;
    }
    let mut r = rates(dir);
    let rate = Some(bytes as f64 / seconds);
    if restore {
        r.restore_bytes_per_s = rate;
    } else {
        r.save_bytes_per_s = rate;
    }
    let temp = dir.join(format!(
        "{}{}-{RATES}",
        file::TEMP_PREFIX,
        std::process::id()
    ));
    if let Ok(json) = serde_json::to_vec(&r) {
        if std::fs::write(&temp, json).is_ok() && std::fs::rename(&temp, dir.join(RATES)).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
}
