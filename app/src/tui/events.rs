//! What the UI and the model thread say to each other: requests one way,
//! events the other, each event tagged with the answer ([`Run`]) it is for.

use folio_engine::ask::{Answer, AskOptions};

use super::state::CorpusState;

/// Which answer an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// The answer view's question.
    Single,
    /// A column of the compare view.
    Column(usize),
}

/// A question for the worker.
#[derive(Debug, Clone)]
pub struct Request {
    pub question: String,
    /// Budget, forced strategy and generation (with the cancel flag).
    pub options: AskOptions,
    /// Run every strategy instead of the router's choice.
    pub compare: bool,
}

/// What the worker tells the UI.
#[derive(Debug)]
pub enum WorkerEvent {
    /// What it is doing now, for the status bar.
    Status(String),
    /// The corpus as loaded (again when token counts or the index change).
    Corpus(CorpusState),
    /// The models are loaded.
    Ready {
        model: String,
    },
    /// A run's plan is chosen and it starts.
    Started {
        run: Run,
        plan: String,
    },
    /// A piece of a run's answer.
    Piece {
        run: Run,
        text: String,
    },
    Finished {
        run: Run,
        answer: Box<Answer>,
    },
    /// A run (or, with `None`, the start-up) failed.
    Failed {
        run: Option<Run>,
        error: String,
    },
    /// The request is done; the next may come.
    Idle,
}
