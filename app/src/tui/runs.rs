//! One request on the model thread: a single answer (the router's plan,
//! with the Self-Route fallback) or the compare run of every strategy,
//! the engine's events forwarded to the UI (stages to the status bar,
//! pieces to the answer panes).

use anyhow::Result;
use folio_engine::ask::{AskEvent, Asker, Models, Stage, COMPARE_ORDER};
use tokio::sync::mpsc::UnboundedSender;

use super::events::{Request, Run, WorkerEvent};
use super::worker::{send, status, Loaded};

/// What the status bar says while `stage` runs.
fn stage_status(stage: Stage) -> String {
    match stage {
        Stage::Indexing { documents } => {
            format!("indexing {documents} documents for retrieval (first use; BM25 + embeddings)…")
        }
        Stage::Retrieving => "retrieving…".into(),
        Stage::Compressing => "compressing the corpus for the question…".into(),
        Stage::Reading => "reading the context (prefill)…".into(),
    }
}

/// Sends one engine event of `run` to the UI; `prefix` leads its status
/// lines, `answering` is whether its text has begun.
fn forward(
    tx: &UnboundedSender<WorkerEvent>,
    run: Run,
    prefix: &str,
    answering: &mut bool,
    event: AskEvent,
) {
    match event {
        AskEvent::Started(strategy) => {
            *answering = false;
            send(
                tx,
                WorkerEvent::Started {
                    run,
                    plan: strategy.describe(),
                },
            )
        }
        AskEvent::Stage(stage) => status(tx, format!("{prefix}{}", stage_status(stage))),
        AskEvent::Text(piece) => {
            if !std::mem::replace(answering, true) {
                status(tx, format!("{prefix}answering (Esc cancels)…"));
            }
            send(
                tx,
                WorkerEvent::Piece {
                    run,
                    text: piece.to_string(),
                },
            );
        }
        AskEvent::Escalating { to, .. } => {
            status(
                tx,
                format!("{prefix}retrieval found nothing; reading wider…"),
            );
            send(
                tx,
                WorkerEvent::Piece {
                    run,
                    text: format!(
                        "\n[retrieval found nothing; escalating to {}]\n",
                        to.kind().name()
                    ),
                },
            );
        }
    }
}

/// The asker over the loaded corpus and models, with the request's options.
fn asker<'a>(l: &'a mut Loaded, r: &Request) -> Asker<'a> {
    let models = Models {
        answerer: &l.answerer,
        device: Some(&l.placement),
        scorer: l.scorer.as_ref(),
    };
    Asker::new(&mut l.corpus, models, &l.profile, r.options.clone())
}

/// Answers one question with the router's plan (or the forced one).
pub(super) fn single(l: &mut Loaded, r: &Request, tx: &UnboundedSender<WorkerEvent>) -> Result<()> {
    status(tx, "planning…");
    let mut answering = false;
    let answer = asker(l, r).ask(&r.question, &mut |e| {
        forward(tx, Run::Single, "", &mut answering, e)
    })?;
    send(
        tx,
        WorkerEvent::Finished {
            run: Run::Single,
            answer: Box::new(answer),
        },
    );
    Ok(())
}

/// Runs every strategy of [`COMPARE_ORDER`] on one question, a compare
/// column each; a cancel skips the strategies not yet started.
pub(super) fn compare(l: &mut Loaded, r: &Request, tx: &UnboundedSender<WorkerEvent>) {
    let column = |kind| {
        COMPARE_ORDER
            .iter()
            .position(|k| *k == kind)
            .expect("compare runs COMPARE_ORDER")
    };
    let mut answering = false;
    let results = asker(l, r).compare(&r.question, &mut |kind, e| {
        let i = column(kind);
        let prefix = format!("compare {}/{}: ", i + 1, COMPARE_ORDER.len());
        forward(tx, Run::Column(i), &prefix, &mut answering, e)
    });
    for (kind, result) in results {
        let run = Run::Column(column(kind));
        match result {
            Ok(a) => send(
                tx,
                WorkerEvent::Finished {
                    run,
                    answer: Box::new(a),
                },
            ),
            Err(e) => send(
                tx,
                WorkerEvent::Failed {
                    run: Some(run),
                    error: format!("{e:#}"),
                },
            ),
        }
    }
}
