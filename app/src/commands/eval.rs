//! `folio eval`: run a suite with each strategy, resumably, then write
//! `summary.json`, `report.md` and the charts.

use anyhow::{bail, Context, Result};
use folio_engine::ask::Models;
use folio_engine::llm::EvictionPolicy;
use folio_engine::models::load_model;
use folio_evals::eval::{
    already_done, load_items, parse_lengths, report, run, EvalEviction, EvalStrategy, EvictBudget,
    RunConfig, Suite, SuiteOptions,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::calibrate::ensure_profile;
use crate::cli::convert::{self, budget};
use crate::cli::{EvalArgs, SeedClaimsArgs};
use crate::output::print_json;

/// Runs `folio eval`.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    let suite = Suite::parse(&args.suite, args.qa.clone(), args.docs.clone())?;
    let strategies = args
        .strategies
        .split(',')
        .map(|s| s.trim().parse::<EvalStrategy>())
        .collect::<Result<Vec<_>>>()?;
    if strategies.is_empty() {
        bail!("--strategies is empty: name some of rag, compress, full, auto");
    }
    // `auto` last: it reuses a forced run that executed the same plan.
    let mut strategies: Vec<EvalStrategy> = strategies
        .iter()
        .enumerate()
        .filter(|(i, s)| !strategies[..*i].contains(s))
        .map(|(_, s)| *s)
        .collect();
    strategies.sort_by_key(|s| *s == EvalStrategy::Auto);
    if !args.report_only {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        report::log_command(&args.out, &command_line())?;
        answer_all(&args, &suite, strategies)?;
    }
    let written = report::write_report(&args.out)?;
    if args.json {
        return print_json(&written.summary_value);
    }
    println!("{}", summary_table(&written.summary_value, suite.name()));
    println!(
        "wrote {}, {} and {} chart(s) in {}",
        file_name(&written.report),
        file_name(&written.summary),
        written.charts.len(),
        args.out.display()
    );
    Ok(())
}

/// This process' command line as `folio …` (quoted where needed), for the
/// reports.
fn command_line() -> String {
    std::iter::once("folio".to_string())
        .chain(
            std::env::args()
                .skip(1)
                .map(|a| if a.contains(' ') { format!("'{a}'") } else { a }),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

fn answer_all(args: &EvalArgs, suite: &Suite, strategies: Vec<EvalStrategy>) -> Result<()> {
    let progress = !args.json;
    let (answerer, placement) = convert::answerer(
        &args.plan.model,
        args.plan.device,
        &args.plan.backend,
        progress,
    )?;
    let needs_scorer = strategies.iter().any(|s| {
        matches!(
            s,
            EvalStrategy::Auto | EvalStrategy::Forced(folio_engine::router::StrategyKind::Compress)
        )
    });
    let scorer = if needs_scorer {
        Some(
            load_model(&args.plan.scorer, progress)
                .with_context(|| format!("loading the compressor's scorer {}", args.plan.scorer))?,
        )
    } else {
        None
    };
    let items = load_items(
        suite,
        &SuiteOptions {
            lengths: parse_lengths(&args.lengths)?,
            limit: args.limit,
            seed: args.seed,
            progress,
            split: args.split,
        },
        &answerer.tokenizer,
    )?;
    if items.is_empty() {
        bail!("the suite {} produced no items", suite.name());
    }
    let profile = ensure_profile(progress)?;
    let config = RunConfig {
        strategies,
        out: args.out.clone(),
        budget: budget(&args.budget)?,
        rag_k: args.plan.chunks.max(1),
        max_tokens: args.max_tokens,
        model: args.plan.model.clone(),
        min_confidence: args.plan.min_confidence,
        ground: !args.plan.no_quote,
        evictions: evictions(args)?,
    };
    let total = items.len() * folio_evals::eval::columns(&config);
    let done = already_done(&config, &items)?;
    let bar = if progress {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} answers (eta {eta}) {msg}",
            )
            .expect("static template"),
        );
        bar.set_prefix(format!("eval {}", suite.name()));
        bar.set_position(done as u64);
        if done > 0 {
            bar.println(format!(
                "resuming: {done} of {total} answers are already in {}",
                folio_evals::eval::results_path(&args.out).display()
            ));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let models = Models {
        answerer: &answerer,
        device: Some(&placement),
        scorer: scorer.as_ref(),
    };
    let (mut scored, mut sum) = (0usize, 0.0f64);
    run(&config, &items, models, &profile, &mut |r| {
        scored += 1;
        sum += r.score;
        bar.inc(1);
        bar.set_message(format!(
            "last: {} {} {} · mean score this session {:.0}%",
            r.strategy,
            r.id,
            if r.error.is_some() {
                "error".to_string()
            } else {
                format!("{:.0}% in {:.1}s", r.score * 100.0, r.seconds)
            },
            100.0 * sum / scored as f64
        ));
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// The per-strategy rows of the suite, for the terminal.
fn summary_table(summary: &folio_evals::eval::summary::Summary, suite: &str) -> String {
    let mut out = format!(
        "{:<9} {:>6} {:>7} {:>6} {:>6} {:>8} {:>9} {:>8} {:>7}\n",
        "strategy", "items", "score%", "EM%", "F1%", "recall%", "tokens", "s/answer", "errors"
    );
    for g in summary
        .groups
        .iter()
        .filter(|g| g.suite == suite && g.kind == "all")
    {
        out.push_str(&format!(
            "{:<9} {:>6} {:>7.1} {:>6.1} {:>6.1} {:>8} {:>9.0} {:>8.1} {:>7}\n",
            g.strategy,
            g.items,
            g.score * 100.0,
            g.exact * 100.0,
            g.f1 * 100.0,
            g.retrieval_recall
                .map_or("-".into(), |r| format!("{:.1}", r * 100.0)),
            g.tokens_sent,
            g.seconds_mean,
            g.errors
        ));
    }
    out
}

/// Runs `folio seed-claims`.
pub fn seed_claims(args: SeedClaimsArgs) -> Result<()> {
    use folio_evals::eval::claims::{evaluate, markdown, ClaimSources};
    let claims = evaluate(&ClaimSources {
        attention: args.attention,
        context: args.context,
        evals: args.evals,
    });
    let md = markdown(&claims, &command_line());
    match args.out {
        Some(path) => {
            std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
            for c in &claims {
                println!("{}: {}", c.verdict, c.statement);
            }
            println!("wrote {}", path.display());
        }
        None => print!("{md}"),
    }
    Ok(())
}

/// The eviction columns `--kv-evict` (a comma list of policies here) and
/// `--kv-budgets` (shares) or `--kv-budget` (positions) ask for.
fn evictions(args: &EvalArgs) -> Result<Vec<EvalEviction>> {
    let e = &args.plan.evict;
    let Some(names) = &e.kv_evict else {
        if e.kv_budget.is_some() || args.kv_budgets.is_some() {
            bail!("--kv-budget and --kv-budgets need --kv-evict streaming,h2o,snapkv");
        }
        return Ok(Vec::new());
    };
    let budgets: Vec<EvictBudget> = match (&args.kv_budgets, e.kv_budget) {
        (Some(_), Some(_)) => {
            bail!("give --kv-budgets (shares) or --kv-budget (positions), not both")
        }
        (None, None) => bail!("--kv-evict needs --kv-budgets 10%,25%,50% or --kv-budget N"),
        (None, Some(0)) => bail!("--kv-budget must be at least 1 position"),
        (None, Some(n)) => vec![EvictBudget::Positions(n)],
        (Some(list), None) => list
            .split(',')
            .map(|s| {
                let s = s.trim();
                let share = s
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<f64>().ok())
                    .map(|p| p / 100.0)
                    .filter(|p| *p > 0.0 && *p <= 1.0);
                share.map(EvictBudget::Share).with_context(|| {
                    format!("--kv-budgets {s:?} is not a share of the context: give e.g. 25%")
                })
            })
            .collect::<Result<_>>()?,
    };
    let mut out = Vec::new();
    for name in names.split(',').map(str::trim) {
        let policy = EvictionPolicy::parse(name).with_context(|| {
            format!("--kv-evict {name:?} is not a policy: use streaming, h2o or snapkv")
        })?;
        out.extend(
            budgets
                .iter()
                .map(|&budget| EvalEviction { policy, budget }),
        );
    }
    Ok(out)
}
