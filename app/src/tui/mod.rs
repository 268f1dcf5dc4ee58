//! `folio tui` (and a bare `folio`): a terminal UI over a corpus. Ask a
//! question and watch the answer stream beside its trade-off card, open the
//! evidence in its source, force a strategy, compare all three, set budgets.
//!
//! Shaped like gitui: the state (`state.rs`, changed by keys in `keys.rs`
//! and by the model thread's events) is apart from the drawing (one widget
//! per pane, `ui.rs` lays them out), so every pane is a pure function of
//! state and tested with ratatui's `TestBackend` (`tests/`). The model
//! runs on its own thread (`worker.rs`); the UI loop runs on tokio, selecting
//! over key events, worker events and a spinner tick.

mod answer_pane;
mod budget;
mod card_pane;
mod compare;
mod corpus;
mod events;
mod evidence;
mod help;
mod input;
mod keys;
mod runs;
mod state;
mod terminal;
mod ui;
mod worker;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream, KeyEventKind};
use folio_engine::ask::AskOptions;
use folio_engine::llm::GenerateOptions;
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::cli::TuiArgs;
use budget::BudgetState;
use events::{Request, WorkerEvent};
use keys::Action;
use state::App;
use worker::{Worker, WorkerConfig};

/// Runs the terminal UI until the user quits.
pub fn run(args: TuiArgs) -> Result<()> {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        anyhow::bail!(
            "the terminal UI needs a terminal on stdin and stdout; in scripts use `folio ask \
             QUESTION --corpus …` (see `folio --help`)"
        );
    }
    let (paths, label) = corpus_paths(&args.corpus)?;
    let budget = BudgetState {
        latency: args.budget.budget_latency.clone(),
        memory: args
            .budget
            .budget_memory
            .clone()
            .unwrap_or_else(|| "auto".into()),
        tokens: args.budget.budget_tokens.clone(),
    };
    budget.parse().context("the budget flags")?;
    let mut app = App::new(&label, budget);
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    // The engine's notices go to the status bar while the UI draws.
    let status = tx.clone();
    let _diverted = crate::notices::divert(move |text| {
        let _ = status.send(WorkerEvent::Status(text));
    });
    let mut worker = worker::spawn(
        WorkerConfig {
            paths,
            label,
            model: args.plan.model.clone(),
            scorer: args.plan.scorer.clone(),
            device: args.plan.device,
            backend: args.plan.backend.clone(),
            qdrant_url: args.qdrant_url.clone(),
        },
        tx,
    )?;
    worker.prefix_cache = crate::cli::convert::prefix_cache(&args.plan.kv_cache, true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut guard = terminal::Guard::enter().context("opening the terminal UI")?;
    let result = runtime.block_on(event_loop(&mut guard, &mut app, &worker, events, &args));
    drop(guard);
    // Keep the model thread parked on its queue (or inside a prefill) until
    // the process exits: closing the queue would have it tear the models
    // down while the process is exiting.
    std::mem::forget(worker);
    result
}

/// The corpus to open and how to name it: the paths given; else the
/// default store if it holds a corpus; else the bundled Jargon File,
/// written once under $FOLIO_HOME so it can be indexed like any file.
fn corpus_paths(given: &[PathBuf]) -> Result<(Vec<PathBuf>, String)> {
    if !given.is_empty() {
        let names: Vec<String> = given.iter().map(|p| p.display().to_string()).collect();
        return Ok((given.to_vec(), names.join(", ")));
    }
    let store = crate::cli::convert::default_store();
    if store.join("manifest.json").is_file() {
        return Ok((vec![store.clone()], format!("store {}", store.display())));
    }
    let doc = folio_corpora::bundled::jargon();
    let dir = folio_corpora::fetch::folio_home().join("bundled");
    let file = dir.join("jargon-4.4.7.txt");
    if std::fs::read(&file).ok().as_deref() != Some(doc.text.as_bytes()) {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(".jargon-4.4.7.txt.tmp");
        std::fs::write(&tmp, &doc.text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &file)?;
    }
    Ok((vec![file], "the bundled Jargon File".into()))
}

/// The options of the next request: the budget and strategy set in the UI,
/// the flags' generation settings, and the cancel flag.
fn options(app: &App, args: &TuiArgs, worker: &Worker) -> Result<AskOptions> {
    Ok(AskOptions {
        budget: app.budget.parse()?,
        forced: app.forced,
        rag_k: args.plan.chunks.max(1),
        generate: GenerateOptions {
            max_new_tokens: args.max_tokens,
            cancel: Some(worker.cancel.clone()),
            ..Default::default()
        },
        self_route: true,
        // Bars on stderr would tear the screen; the status bar says instead.
        progress: false,
        ground: !args.plan.no_quote,
        min_confidence: args.plan.min_confidence,
        prefix_cache: worker.prefix_cache.clone(),
        eviction: crate::cli::convert::eviction(&args.plan.evict)?,
    })
}

async fn event_loop(
    guard: &mut terminal::Guard,
    app: &mut App,
    worker: &Worker,
    mut events: UnboundedReceiver<WorkerEvent>,
    args: &TuiArgs,
) -> Result<()> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(120));
    loop {
        guard.terminal.draw(|f| ui::draw(f, app))?;
        if app.quit {
            return Ok(());
        }
        tokio::select! {
            Some(key) = keys.next() => {
                if let Event::Key(k) = key? {
                    if k.kind != KeyEventKind::Release {
                        if let Some(action) = app.on_key(k) {
                            dispatch(app, action, worker, args);
                        }
                    }
                }
            }
            Some(event) = events.recv() => {
                app.apply(event);
                while let Ok(event) = events.try_recv() {
                    app.apply(event);
                }
            }
            _ = tick.tick() => app.tick = app.tick.wrapping_add(1),
        }
    }
}

fn dispatch(app: &mut App, action: Action, worker: &Worker, args: &TuiArgs) {
    match action {
        Action::Quit => {
            worker.cancel.store(true, Ordering::Relaxed);
            app.quit = true;
        }
        Action::Cancel => worker.cancel.store(true, Ordering::Relaxed),
        Action::Ask { question, compare } => {
            worker.cancel.store(false, Ordering::Relaxed);
            let sent = options(app, args, worker).and_then(|options| {
                worker
                    .requests
                    .send(Request {
                        question,
                        options,
                        compare,
                    })
                    .context("the model thread has stopped")
            });
            if let Err(e) = sent {
                app.apply(WorkerEvent::Failed {
                    run: None,
                    error: format!("{e:#}"),
                });
                app.apply(WorkerEvent::Idle);
            }
        }
    }
}
