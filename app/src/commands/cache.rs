//! `folio cache list` and `folio cache clear`: the document prefixes full
//! reads saved for later questions.

use anyhow::Result;
use folio_engine::prefix_cache::PrefixCache;

use crate::cli::CacheAction;
use crate::output::{human_bytes, print_json};

pub fn run(action: CacheAction) -> Result<()> {
    let (CacheAction::List { dir, .. } | CacheAction::Clear { dir, .. }) = &action;
    let dir = dir.clone().unwrap_or_else(PrefixCache::default_dir);
    // Listing and clearing see every file whatever the cap.
    let cache = PrefixCache::on_disk(dir.clone(), u64::MAX);
    match action {
        CacheAction::List { json, .. } => {
            let entries = cache.list()?;
            if json {
                return print_json(&entries);
            }
            if entries.is_empty() {
                println!(
                    "no saved document prefixes in {} (a full read saves one)",
                    dir.display()
                );
                return Ok(());
            }
            let total: u64 = entries.iter().map(|e| e.bytes).sum();
            println!(
                "{} saved prefixes in {}, {}:",
                entries.len(),
                dir.display(),
                human_bytes(total)
            );
            for e in entries {
                match &e.unreadable {
                    Some(why) => println!(
                        "  {}  {}  unreadable ({why}); the next read discards it",
                        e.path.display(),
                        human_bytes(e.bytes)
                    ),
                    None => println!(
                        "  {:<32} {:<28} {:>7} tokens {:>10} {:<4} used {} ago",
                        e.label,
                        e.model,
                        e.tokens,
                        human_bytes(e.bytes),
                        e.dtype,
                        ago(e.idle_seconds)
                    ),
                }
            }
            Ok(())
        }
        CacheAction::Clear { json, .. } => {
            let (files, bytes) = cache.clear()?;
            if json {
                return print_json(
                    &serde_json::json!({ "removed_files": files, "removed_bytes": bytes }),
                );
            }
            println!(
                "removed {files} cache files ({}) from {}",
                human_bytes(bytes),
                dir.display()
            );
            Ok(())
        }
    }
}

fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}
