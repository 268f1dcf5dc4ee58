//! The model thread: opens the corpus, loads the models once, then answers
//! the UI's requests one at a time, sending what happens (status, streamed
//! pieces, finished answers, errors) back as events. Model work is blocking
//! CPU work, so it never runs on the UI loop; the UI stays responsive and
//! cancels through the shared flag the engine reads once per token.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

use anyhow::Result;
use folio_engine::ask::Corpus;
use folio_engine::device::{DeviceRequest, Placement};
use folio_engine::llm::Model;
use folio_engine::models::{find_model, load_model, model_path, models_dir, user_model_path};
use folio_engine::router::DeviceProfile;
use tokio::sync::mpsc::UnboundedSender;

use super::events::{Request, Run, WorkerEvent};
use super::runs::{compare, single};
use super::state::{CorpusState, DocInfo};

/// What the worker is started with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub paths: Vec<PathBuf>,
    pub label: String,
    pub model: String,
    pub scorer: String,
    pub device: folio_engine::device::DeviceRequest,
    /// In-process, or a serving engine (`--backend openai`).
    pub backend: crate::cli::BackendArgs,
    /// The Qdrant server of a store whose vectors live there.
    pub qdrant_url: Option<String>,
}

/// The UI's handle on the worker: where requests go, and the flag that
/// cancels the running one.
pub struct Worker {
    pub requests: mpsc::Sender<Request>,
    pub cancel: Arc<AtomicBool>,
    /// Full reads keep the document's prefix here between questions.
    pub prefix_cache: Option<Arc<folio_engine::prefix_cache::PrefixCache>>,
}

/// Starts the worker thread; its events arrive on `events`.
pub fn spawn(config: WorkerConfig, events: UnboundedSender<WorkerEvent>) -> Result<Worker> {
    let (requests, incoming) = mpsc::channel();
    std::thread::Builder::new()
        .name(super::terminal::WORKER_THREAD.into())
        .spawn(move || {
            let tx = events.clone();
            let run = std::panic::AssertUnwindSafe(|| serve(config, incoming, &events));
            if std::panic::catch_unwind(run).is_err() {
                let _ = tx.send(WorkerEvent::Failed {
                    run: None,
                    error: format!(
                        "the model thread crashed: {}",
                        super::terminal::last_panic()
                    ),
                });
                let _ = tx.send(WorkerEvent::Idle);
            }
        })?;
    Ok(Worker {
        requests,
        cancel: Arc::new(AtomicBool::new(false)),
        prefix_cache: None,
    })
}

/// Everything loaded once and kept for every question.
pub(super) struct Loaded {
    pub(super) corpus: Corpus,
    pub(super) answerer: Model,
    /// Where the answerer runs.
    pub(super) placement: Placement,
    pub(super) scorer: Option<Model>,
    pub(super) profile: DeviceProfile,
    pub(super) view: CorpusState,
}

/// Sends an event to the UI.
pub(super) fn send(tx: &UnboundedSender<WorkerEvent>, e: WorkerEvent) {
    // The UI may have quit; nothing to tell then.
    let _ = tx.send(e);
}

/// Sets the status bar's text.
pub(super) fn status(tx: &UnboundedSender<WorkerEvent>, s: impl Into<String>) {
    send(tx, WorkerEvent::Status(s.into()));
}

fn serve(
    config: WorkerConfig,
    incoming: mpsc::Receiver<Request>,
    tx: &UnboundedSender<WorkerEvent>,
) {
    let mut loaded = match load(&config, tx) {
        Ok(l) => l,
        Err(e) => {
            send(
                tx,
                WorkerEvent::Failed {
                    run: None,
                    error: format!("{e:#}"),
                },
            );
            status(tx, "could not start: see the error; Ctrl-Q quits");
            // Answer every request with the same refusal.
            for _ in incoming {
                send(
                    tx,
                    WorkerEvent::Failed {
                        run: Some(Run::Single),
                        error: format!("{e:#}"),
                    },
                );
                send(tx, WorkerEvent::Idle);
            }
            return;
        }
    };
    for request in incoming {
        // Another process may have ingested into the store since the last
        // question: answer from its last committed state.
        match loaded.corpus.refresh() {
            Ok(true) => {
                status(
                    tx,
                    format!(
                        "the store changed since it was opened: now {} documents",
                        loaded.corpus.docs.len()
                    ),
                );
                loaded.view.docs = loaded
                    .corpus
                    .docs
                    .iter()
                    .map(|d| DocInfo {
                        path: d.path.clone(),
                        bytes: d.text.len(),
                        tokens: loaded
                            .answerer
                            .tokenizer
                            .encode_text(&d.text)
                            .ok()
                            .map(|t| t.len()),
                        text: d.text.as_str().into(),
                    })
                    .collect();
                send(tx, WorkerEvent::Corpus(loaded.view.clone()));
            }
            Ok(false) => {}
            Err(e) => send(
                tx,
                WorkerEvent::Failed {
                    run: None,
                    error: format!("re-reading the store: {e:#}"),
                },
            ),
        }
        if request.compare {
            compare(&mut loaded, &request, tx);
        } else if let Err(e) = single(&mut loaded, &request, tx) {
            send(
                tx,
                WorkerEvent::Failed {
                    run: Some(Run::Single),
                    error: format!("{e:#}"),
                },
            );
        }
        let indexed = Some(loaded.corpus.indexed());
        if loaded.view.indexed != indexed {
            loaded.view.indexed = indexed;
            send(tx, WorkerEvent::Corpus(loaded.view.clone()));
        }
        send(tx, WorkerEvent::Idle);
    }
}

/// Loads a model, saying whether it is fetched first.
fn load_one(id: &str, role: &str, tx: &UnboundedSender<WorkerEvent>) -> Result<Model> {
    if user_model_path(id).is_some() || folio_engine::models::local::find(id)?.is_some() {
        status(tx, format!("loading the {role} {id}…"));
        return load_model(id, false);
    }
    let spec = find_model(id)?;
    if model_path(spec, &models_dir()).is_file() {
        status(tx, format!("loading the {role} {id}…"));
    } else {
        status(
            tx,
            format!(
                "fetching the {role} {id} ({} MB) with pip, then loading it…",
                spec.size / 1_000_000
            ),
        );
    }
    load_model(id, false)
}

fn load(config: &WorkerConfig, tx: &UnboundedSender<WorkerEvent>) -> Result<Loaded> {
    status(tx, "opening the corpus…");
    let corpus = Corpus::open_with(&config.paths, false, config.qdrant_url.as_deref())?;
    let mut view = CorpusState {
        label: config.label.clone(),
        docs: corpus
            .docs
            .iter()
            .map(|d| DocInfo {
                path: d.path.clone(),
                bytes: d.text.len(),
                tokens: None,
                text: d.text.as_str().into(),
            })
            .collect(),
        indexed: Some(corpus.indexed()),
        skipped: corpus.skipped.clone(),
        model: None,
    };
    send(tx, WorkerEvent::Corpus(view.clone()));
    let (answerer, placement) = if config.backend.backend == crate::cli::BackendArg::Openai {
        status(tx, "connecting to the server…");
        crate::cli::convert::answerer(&config.model, config.device, &config.backend, false)?
    } else {
        let answerer = load_one(&config.model, "answering model", tx)?;
        if config.device != DeviceRequest::Cpu {
            status(tx, "looking for a GPU…");
        }
        let placement = Placement::prepare(&answerer, config.device);
        (answerer, placement)
    };
    if let (Some(note), DeviceRequest::Cuda) = (placement.note(), config.device) {
        send(
            tx,
            WorkerEvent::Failed {
                run: None,
                error: note.to_string(),
            },
        );
    }
    status(
        tx,
        format!(
            "counting the corpus' tokens ({} documents)…",
            view.docs.len()
        ),
    );
    for (d, info) in corpus.docs.iter().zip(view.docs.iter_mut()) {
        info.tokens = Some(answerer.tokenizer.encode_text(&d.text)?.len());
    }
    view.model = Some(config.model.clone());
    send(tx, WorkerEvent::Corpus(view.clone()));
    let scorer = match load_one(&config.scorer, "compressor's scorer", tx) {
        Ok(m) => Some(m),
        Err(e) => {
            send(
                tx,
                WorkerEvent::Failed {
                    run: None,
                    error: format!(
                        "no compression: loading its scorer {}: {e:#}",
                        config.scorer
                    ),
                },
            );
            None
        }
    };
    if folio_engine::calibrate::cached_profile()?.is_some() {
        status(tx, "reading the device profile…");
    } else {
        status(
            tx,
            "measuring this machine once for the router (a minute or two)…",
        );
    }
    let profile = folio_engine::calibrate::ensure_profile(&mut |step| {
        status(
            tx,
            format!("measuring this machine once for the router: {step}…"),
        )
    })?;
    send(
        tx,
        WorkerEvent::Ready {
            model: config.model.clone(),
        },
    );
    Ok(Loaded {
        corpus,
        answerer,
        placement,
        scorer,
        profile,
        view,
    })
}
