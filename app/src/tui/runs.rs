//! One request on the model thread: a single answer (router's plan, with
//! the Self-Route fallback of `ask`) or the compare run of every strategy,
//! each announcing its stage in the status bar and streaming its pieces.

use anyhow::Result;
use folio_engine::ask::{ask, execute, plan, AskOptions, Corpus, Models};
use folio_engine::router::StrategyKind;
use tokio::sync::mpsc::UnboundedSender;

use super::events::{Request, Run, WorkerEvent, COMPARE_ORDER};
use super::worker::{send, status, Loaded};

/// What the status bar says while `kind` runs.
fn stage_status(kind: StrategyKind, corpus: &Corpus) -> String {
    match kind {
        StrategyKind::Rag if !corpus.indexed() => format!(
            "indexing {} documents for retrieval (first use; BM25 + embeddings)…",
            corpus.docs.len()
        ),
        StrategyKind::Rag => "retrieving, then reading the chunks…".into(),
        StrategyKind::Compress => {
            "compressing the corpus for the question, then reading it…".into()
        }
        StrategyKind::Full => "reading the whole corpus (prefill)…".into(),
    }
}

/// Answers one question with the router's plan (or the forced one).
pub(super) fn single(l: &mut Loaded, r: &Request, tx: &UnboundedSender<WorkerEvent>) -> Result<()> {
    let models = Models {
        answerer: &l.answerer,
        device: Some(&l.placement),
        scorer: l.scorer.as_ref(),
    };
    status(tx, "planning…");
    let (_, decision) = plan(&l.corpus, models, &l.profile, &r.question, &r.options)?;
    let strategy = &decision.chosen.strategy;
    status(tx, stage_status(strategy.kind(), &l.corpus));
    send(
        tx,
        WorkerEvent::Started {
            run: Run::Single,
            plan: strategy.describe(),
        },
    );
    let mut first = true;
    let mut on_text = |piece: &str| {
        if std::mem::take(&mut first) {
            status(tx, "answering (Esc cancels)…");
        }
        send(
            tx,
            WorkerEvent::Piece {
                run: Run::Single,
                text: piece.to_string(),
            },
        );
    };
    let answer = ask(
        &mut l.corpus,
        models,
        &l.profile,
        &r.question,
        &r.options,
        &mut on_text,
    )?;
    send(
        tx,
        WorkerEvent::Finished {
            run: Run::Single,
            answer: Box::new(answer),
        },
    );
    Ok(())
}

/// Runs rag, compress and full on one question, a compare column each;
/// a cancel skips the strategies not yet started.
pub(super) fn compare(l: &mut Loaded, r: &Request, tx: &UnboundedSender<WorkerEvent>) {
    let cancel = r.options.generate.clone();
    for (i, kind) in COMPARE_ORDER.into_iter().enumerate() {
        let run = Run::Column(i);
        if cancel.cancelled() {
            send(
                tx,
                WorkerEvent::Failed {
                    run: Some(run),
                    error: "cancelled".into(),
                },
            );
            continue;
        }
        let options = AskOptions {
            forced: Some(kind),
            self_route: false,
            ..r.options.clone()
        };
        let models = Models {
            answerer: &l.answerer,
            device: Some(&l.placement),
            scorer: l.scorer.as_ref(),
        };
        status(
            tx,
            format!("compare {}/3: {}", i + 1, stage_status(kind, &l.corpus)),
        );
        let result = plan(&l.corpus, models, &l.profile, &r.question, &options).and_then(
            |(stats, decision)| {
                send(
                    tx,
                    WorkerEvent::Started {
                        run,
                        plan: decision.chosen.strategy.describe(),
                    },
                );
                let mut on_text = |piece: &str| {
                    send(
                        tx,
                        WorkerEvent::Piece {
                            run,
                            text: piece.to_string(),
                        },
                    )
                };
                execute(
                    &mut l.corpus,
                    models,
                    &l.profile,
                    &stats,
                    &decision,
                    &r.question,
                    &options,
                    &mut on_text,
                )
            },
        );
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
