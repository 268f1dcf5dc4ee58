//! Running a suite: every item through every strategy, one JSON line per
//! answer appended as soon as it exists, so a killed run resumes where it
//! stopped.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use folio_engine::ask::{AskOptions, Asker, Corpus, Models};
use folio_engine::llm::{Eviction, EvictionPolicy, GenerateOptions};
use folio_engine::router::{Budget, DeviceProfile, StrategyKind};

use super::items::{Item, ItemDoc};
use super::record::EvalRecord;

/// A strategy an evaluation compares: one forced kind, or the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalStrategy {
    /// One strategy kind, whatever the router would choose.
    Forced(StrategyKind),
    /// The router's choice within the budget, with Self-Route fallback.
    Auto,
}

impl EvalStrategy {
    /// The name in records and reports.
    pub fn name(self) -> &'static str {
        match self {
            EvalStrategy::Forced(k) => k.name(),
            EvalStrategy::Auto => "auto",
        }
    }
}

impl std::str::FromStr for EvalStrategy {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(EvalStrategy::Auto),
            other => other.parse().map(EvalStrategy::Forced).map_err(|_| {
                anyhow::anyhow!("unknown strategy {other:?}: rag, compress, full or auto")
            }),
        }
    }
}

/// How to answer the items and where the results go.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Run in this order; `auto` should come last so it can reuse a forced
    /// run that chose the same plan.
    pub strategies: Vec<EvalStrategy>,
    /// The output folder (results.jsonl, the item documents, scratch
    /// indexes).
    pub out: PathBuf,
    /// `auto`'s budget. Forced retrieval and compression keep only its
    /// token limit, a forced full read none of it (their point is to
    /// measure the strategy, whatever it costs).
    pub budget: Budget,
    /// Chunks a retrieval plan reads.
    pub rag_k: usize,
    /// Most answer tokens generated per item.
    pub max_tokens: usize,
    /// The answering model's id, written in every record.
    pub model: String,
    /// Answers scored below this are withheld ("not in the documents");
    /// 0 keeps every answer, so the report can sweep thresholds over the
    /// recorded scores; `None`: the model's calibrated threshold.
    pub min_confidence: Option<f64>,
    /// Quote and score each answer (`false`: `--no-quote`).
    pub ground: bool,
    /// Full reads with KV eviction, each a column of its own beside the
    /// strategies (before `auto`).
    pub evictions: Vec<EvalEviction>,
}

/// A full read with KV eviction: the policy and its budget, a share of
/// each item's context or a number of positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalEviction {
    /// Which positions are kept.
    pub policy: EvictionPolicy,
    /// How many.
    pub budget: EvictBudget,
}

/// An eviction budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EvictBudget {
    /// This share of the item's context tokens (at least what the policy
    /// keeps anyway).
    Share(f64),
    /// This many positions per layer and KV head.
    Positions(usize),
}

impl EvalEviction {
    /// The column's name in records and reports, e.g. `full+snapkv@25%`.
    pub fn label(&self) -> String {
        match self.budget {
            EvictBudget::Share(s) => {
                format!("full+{}@{}%", self.policy.name(), (s * 100.0).round())
            }
            EvictBudget::Positions(n) => format!("full+{}@{n}", self.policy.name()),
        }
    }

    /// The eviction of an item whose context is `tokens` long.
    fn for_context(&self, tokens: usize) -> Eviction {
        let floor = match self.policy {
            EvictionPolicy::SnapKv { window, .. } => window + 1,
            EvictionPolicy::Streaming { sinks } => sinks + 1,
            EvictionPolicy::H2o { recent } => recent + 1,
        };
        let budget = match self.budget {
            EvictBudget::Share(s) => (tokens as f64 * s).ceil() as usize,
            EvictBudget::Positions(n) => n,
        };
        Eviction {
            policy: self.policy,
            budget: budget.max(floor),
        }
    }
}

/// One column of a run: a strategy, or a full read with eviction.
struct Variant {
    strategy: EvalStrategy,
    eviction: Option<EvalEviction>,
    label: String,
}

/// The columns of a run in order: the forced strategies, the evicted full
/// reads, then `auto` (last, so it can reuse a forced run's record).
fn variants(config: &RunConfig) -> Vec<Variant> {
    let plain = |s: &EvalStrategy| Variant {
        strategy: *s,
        eviction: None,
        label: s.name().to_string(),
    };
    let mut out: Vec<Variant> = config
        .strategies
        .iter()
        .filter(|s| **s != EvalStrategy::Auto)
        .map(plain)
        .collect();
    out.extend(config.evictions.iter().map(|e| Variant {
        strategy: EvalStrategy::Forced(StrategyKind::Full),
        eviction: Some(*e),
        label: e.label(),
    }));
    out.extend(
        config
            .strategies
            .iter()
            .filter(|s| **s == EvalStrategy::Auto)
            .map(plain),
    );
    out
}

/// Answers per item a run gives: one per strategy and eviction.
pub fn columns(config: &RunConfig) -> usize {
    config.strategies.len() + config.evictions.len()
}

/// The results file in an output folder.
pub fn results_path(out: &Path) -> PathBuf {
    out.join("results.jsonl")
}

/// Records in `path` (none when it does not exist), the latest per
/// (suite, item, strategy): a retried answer replaces an earlier error. A
/// torn last line (a run killed mid-write) is ignored; any other bad line is
/// an error.
pub fn read_results(path: &Path) -> Result<Vec<EvalRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut latest: Vec<EvalRecord> = Vec::new();
    let mut at: HashMap<Key, usize> = HashMap::new();
    for (n, (i, line)) in lines.iter().enumerate() {
        let record: EvalRecord = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{} line {} is not an eval record; move the file away to start over",
                        path.display(),
                        i + 1
                    )
                })
            }
        };
        let k = key(&record.suite, &record.id, &record.strategy);
        match at.get(&k) {
            Some(&slot) => latest[slot] = record,
            None => {
                at.insert(k, latest.len());
                latest.push(record);
            }
        }
    }
    Ok(latest)
}

type Key = (String, String, String);

fn key(suite: &str, id: &str, strategy: &str) -> Key {
    (suite.to_string(), id.to_string(), strategy.to_string())
}

/// How many of `items` × strategies already have an answer in `out`.
pub fn already_done(config: &RunConfig, items: &[Item]) -> Result<usize> {
    let done: std::collections::HashSet<Key> = read_results(&results_path(&config.out))?
        .into_iter()
        .filter(|r| r.error.is_none())
        .map(|r| key(&r.suite, &r.id, &r.strategy))
        .collect();
    let variants = variants(config);
    Ok(items
        .iter()
        .flat_map(|i| variants.iter().map(move |v| (i, v)))
        .filter(|(i, v)| done.contains(&key(i.suite, &i.id, &v.label)))
        .count())
}

/// Answers every item with every strategy not yet in `results.jsonl`,
/// appending each record and handing it to `on_record`.
pub fn run(
    config: &RunConfig,
    items: &[Item],
    models: Models,
    profile: &DeviceProfile,
    on_record: &mut dyn FnMut(&EvalRecord),
) -> Result<()> {
    std::fs::create_dir_all(&config.out)
        .with_context(|| format!("creating {}", config.out.display()))?;
    let path = results_path(&config.out);
    // Answers that failed are tried again (the new record replaces them).
    let mut done: HashMap<Key, EvalRecord> = read_results(&path)?
        .into_iter()
        .filter(|r| r.error.is_none())
        .map(|r| (key(&r.suite, &r.id, &r.strategy), r))
        .collect();
    repair_torn_tail(&path)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let variants = variants(config);
    for item in items {
        let pending: Vec<&Variant> = variants
            .iter()
            .filter(|v| !done.contains_key(&key(item.suite, &item.id, &v.label)))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let files = write_item(config, item);
        for variant in pending {
            let record = match files
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|f| f.open())
            {
                Ok(corpus) => answer(config, item, variant, corpus, models, profile, &done),
                Err(e) => {
                    let mut r = EvalRecord::new(item, &variant.label, &config.model);
                    r.error = Some(format!("{e:#}"));
                    r
                }
            };
            // One write per record, its newline included: a kill leaves
            // whole records and at most one torn tail.
            let mut line = serde_json::to_string(&record)?;
            line.push('\n');
            file.write_all(line.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            on_record(&record);
            done.insert(key(item.suite, &item.id, &variant.label), record);
        }
        // The item's records are on disk before its scratch files go.
        file.sync_data()
            .with_context(|| format!("syncing {}", path.display()))?;
        if let Ok(f) = files {
            // Scratch indexes are rebuilt on a rerun; the documents stay.
            let _ = std::fs::remove_dir_all(&f.store_dir);
        }
    }
    Ok(())
}

/// Makes the results file end on a whole line, in place: a last record that
/// is complete but lacks its newline gets one (it counts as answered, as
/// [`read_results`] reads it), and a torn last line is cut off by truncating
/// the file there. Nothing before the tail is rewritten.
fn repair_torn_tail(path: &Path) -> Result<()> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("repairing {}", path.display()))?;
    if serde_json::from_slice::<EvalRecord>(&bytes[keep..]).is_ok() {
        (&file).write_all(b"\n")?;
    } else {
        file.set_len(keep as u64)?;
    }
    file.sync_data()
        .with_context(|| format!("repairing {}", path.display()))
}

/// An item's documents on disk and where its scratch index goes.
struct ItemFiles {
    paths: Vec<PathBuf>,
    store_dir: PathBuf,
}

impl ItemFiles {
    /// A fresh corpus over the files with no index yet: each strategy that
    /// retrieves builds (and reports) its own.
    fn open(&self) -> Result<Corpus> {
        let mut corpus = Corpus::open(&self.paths, false)?;
        if !corpus.skipped.is_empty() {
            bail!("{}", corpus.skipped.join("; "));
        }
        if self.store_dir.exists() {
            std::fs::remove_dir_all(&self.store_dir)
                .with_context(|| format!("removing {}", self.store_dir.display()))?;
        }
        corpus.store_dir = self.store_dir.clone();
        Ok(corpus)
    }
}

/// Writes the item's generated documents to files under the run's folder.
fn write_item(config: &RunConfig, item: &Item) -> Result<ItemFiles> {
    let safe: String = item
        .id
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = config.out.join("docs").join(item.suite).join(&safe);
    let mut paths = Vec::new();
    for doc in &item.docs {
        match doc {
            ItemDoc::Text { name, text } => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join(name);
                if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                paths.push(path);
            }
            ItemDoc::File(path) => paths.push(path.clone()),
        }
    }
    Ok(ItemFiles {
        paths,
        store_dir: config
            .out
            .join("stores")
            .join(format!("{}-{safe}", item.suite)),
    })
}

fn answer(
    config: &RunConfig,
    item: &Item,
    variant: &Variant,
    mut corpus: Corpus,
    models: Models,
    profile: &DeviceProfile,
    done: &HashMap<Key, EvalRecord>,
) -> EvalRecord {
    let strategy = variant.strategy;
    let mut record = EvalRecord::new(item, &variant.label, &config.model);
    let mut options = options(config, strategy);
    if let Some(e) = variant.eviction {
        match corpus.stats(models.answerer) {
            Ok(stats) => options.eviction = Some(e.for_context(stats.tokens)),
            Err(err) => {
                record.error = Some(format!("{err:#}"));
                return record;
            }
        }
    }
    let mut asker = Asker::new(&mut corpus, models, profile, options);
    if strategy == EvalStrategy::Auto {
        if let Some(reused) = reuse(config, item, &mut asker, done) {
            return reused;
        }
    }
    folio_corpora::memory::reset_peak_rss();
    match asker.ask(&item.question, &mut |_| {}) {
        Ok(answer) => record.fill(item, &answer),
        Err(e) => record.error = Some(format!("{e:#}")),
    }
    record
}

fn options(config: &RunConfig, strategy: EvalStrategy) -> AskOptions {
    let (budget, forced) = match strategy {
        EvalStrategy::Auto => (config.budget, None),
        // A full read is the whole corpus whatever the token limit.
        EvalStrategy::Forced(StrategyKind::Full) => (Budget::default(), Some(StrategyKind::Full)),
        EvalStrategy::Forced(kind) => (
            Budget {
                context_tokens: config.budget.context_tokens,
                ..Default::default()
            },
            Some(kind),
        ),
    };
    AskOptions {
        budget,
        forced,
        rag_k: config.rag_k,
        generate: GenerateOptions {
            max_new_tokens: config.max_tokens,
            ..Default::default()
        },
        self_route: strategy == EvalStrategy::Auto,
        progress: false,
        ground: config.ground,
        min_confidence: config.min_confidence,
        // Each item is measured as a first read: nothing carried over.
        prefix_cache: None,
        eviction: None,
    }
}

/// `auto`'s record copied from a forced run that executed the very plan
/// the router picks now (same strategy, RoPE, attention and KV settings),
/// unless that plan was retrieval whose answer `auto` would escalate.
fn reuse(
    config: &RunConfig,
    item: &Item,
    asker: &mut Asker,
    done: &HashMap<Key, EvalRecord>,
) -> Option<EvalRecord> {
    let plan = asker.plan(&item.question).ok()?;
    let chosen = plan.strategy();
    let kind = chosen.kind();
    let forced = done.get(&key(item.suite, &item.id, kind.name()))?;
    let escalates = kind == StrategyKind::Rag && forced.flagged_not_found;
    if forced.error.is_some()
        || forced.model != config.model
        || forced.chosen != chosen.describe()
        || escalates
    {
        return None;
    }
    let mut r = forced.clone();
    r.strategy = EvalStrategy::Auto.name().to_string();
    r.reused_from = Some(kind.name().to_string());
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_latest_record_and_skip_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("folio-eval-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.jsonl");
        let line = |strategy: &str, error: Option<&str>| {
            let r = EvalRecord {
                suite: "s".into(),
                id: "1".into(),
                strategy: strategy.into(),
                error: error.map(str::to_string),
                ..Default::default()
            };
            serde_json::to_string(&r).unwrap()
        };
        let text = format!(
            "{}\n{}\n{}\n{{\"suite\": \"s\", \"id",
            line("rag", Some("timed out")),
            line("full", None),
            line("rag", None)
        );
        std::fs::write(&path, text).unwrap();
        let records = read_results(&path).unwrap();
        assert_eq!(records.len(), 2);
        let rag = records.iter().find(|r| r.strategy == "rag").unwrap();
        assert!(rag.error.is_none(), "the retry replaced the error");
        // A bad line that is not the last one is an error naming it.
        std::fs::write(&path, format!("nonsense\n{}\n", line("rag", None))).unwrap();
        let err = read_results(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Bounded-time fuzzing of the resume path: 2 000 mutated results files
    /// are read, and repaired then read, without a panic; whatever reads is
    /// what the repair left.
    #[test]
    fn mutated_results_files_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let good: String = ["rag", "full", "compress"]
            .iter()
            .map(|strategy| {
                serde_json::to_string(&EvalRecord {
                    suite: "squad".into(),
                    id: "q1".into(),
                    strategy: (*strategy).into(),
                    ..Default::default()
                })
                .unwrap()
                    + "\n"
            })
            .collect();
        let mut m = folio_corpora::mutate::Mutator::new(42);
        for round in 0..2000 {
            let bytes = m.mutate(good.as_bytes());
            std::fs::write(&path, &bytes).unwrap();
            let outcome = std::panic::catch_unwind(|| {
                let _ = read_results(&path);
                if repair_torn_tail(&path).is_ok() {
                    let _ = read_results(&path);
                }
            });
            assert!(
                outcome.is_ok(),
                "round {round}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    /// A complete last record without its newline is kept (it was answered)
    /// and a torn one is cut, in place; the records before stay as written.
    #[test]
    fn repair_keeps_a_complete_tail_and_cuts_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let record = |strategy: &str| {
            serde_json::to_string(&EvalRecord {
                suite: "s".into(),
                id: "1".into(),
                strategy: strategy.into(),
                ..Default::default()
            })
            .unwrap()
        };
        let whole = format!("{}\n{}", record("rag"), record("full"));
        std::fs::write(&path, &whole).unwrap();
        repair_torn_tail(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{whole}\n")
        );
        assert_eq!(read_results(&path).unwrap().len(), 2);

        let torn = format!("{}\n{{\"suite\": \"s\", \"id", record("rag"));
        std::fs::write(&path, &torn).unwrap();
        repair_torn_tail(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", record("rag"))
        );
        // A file of one torn line is emptied, not removed.
        std::fs::write(&path, "{\"suite").unwrap();
        repair_torn_tail(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
