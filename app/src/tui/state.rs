//! The terminal UI's state: everything the panes draw, and how the worker's
//! events change it. Nothing here draws or touches the terminal, so any
//! screen can be rebuilt from a hand-made `App` in a test.

use std::sync::Arc;

use folio_engine::ask::Answer;
use folio_engine::router::StrategyKind;

use super::budget::{BudgetEditor, BudgetState};
use super::events::{Run, WorkerEvent};
use super::input::InputState;

/// One document of the corpus as the corpus and evidence panes show it.
#[derive(Debug, Clone)]
pub struct DocInfo {
    /// The path spans refer to (the corpus' key).
    pub path: String,
    pub bytes: usize,
    /// In the answering model's tokens; `None` until the model is loaded.
    pub tokens: Option<usize>,
    /// The loaded text, for the evidence view.
    pub text: Arc<str>,
}

/// The corpus pane's state.
#[derive(Debug, Clone, Default)]
pub struct CorpusState {
    /// What was opened (paths given, the default store, the bundled file).
    pub label: String,
    pub docs: Vec<DocInfo>,
    /// Whether a retrieval index exists (`None`: not known yet).
    pub indexed: Option<bool>,
    /// Files the loaders refused, with the reason.
    pub skipped: Vec<String>,
    /// The answering model once loaded.
    pub model: Option<String>,
}

/// The answer pane's state: the question being answered and its text so far.
#[derive(Debug, Clone, Default)]
pub struct AnswerState {
    pub question: String,
    /// The streamed text so far (the final answer once finished).
    pub text: String,
    /// The plan being run, in words.
    pub plan: Option<String>,
    pub running: bool,
    pub result: Option<Box<Answer>>,
    pub error: Option<String>,
}

/// One strategy's column of the compare view.
#[derive(Debug, Clone)]
pub struct CompareColumn {
    pub kind: StrategyKind,
    pub state: AnswerState,
}

/// The compare view: the same question under rag, compress and full.
#[derive(Debug, Clone)]
pub struct CompareState {
    pub columns: Vec<CompareColumn>,
}

impl CompareState {
    /// Empty columns for `question`, in the order the worker runs them.
    pub fn new(question: &str) -> Self {
        Self {
            columns: folio_engine::ask::COMPARE_ORDER
                .iter()
                .map(|&kind| CompareColumn {
                    kind,
                    state: AnswerState {
                        question: question.to_string(),
                        ..Default::default()
                    },
                })
                .collect(),
        }
    }
}

/// What fills the space right of the corpus pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The answer, the evidence and the trade-off card.
    #[default]
    Answer,
    /// Rag, compress and full side by side.
    Compare,
}

/// A window drawn over the panes, which takes the keys while open.
#[derive(Debug, Clone, Default)]
pub enum Overlay {
    #[default]
    None,
    Help,
    Budget(BudgetEditor),
}

/// The status bar: what the worker is doing, or the last error.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub text: String,
    pub error: Option<String>,
    /// A request is in flight (the spinner turns).
    pub busy: bool,
    /// The models are loaded.
    pub ready: bool,
}

/// The whole UI state.
#[derive(Debug, Clone, Default)]
pub struct App {
    pub corpus: CorpusState,
    pub input: InputState,
    pub answer: AnswerState,
    pub compare: Option<CompareState>,
    pub view: View,
    /// Index of the evidence span the evidence pane opens.
    pub evidence: usize,
    /// The strategy forced for the next question (`None`: the router picks).
    pub forced: Option<StrategyKind>,
    pub budget: BudgetState,
    pub overlay: Overlay,
    pub status: Status,
    /// Lines the card is scrolled down by.
    pub card_scroll: u16,
    /// Animation frame of the spinner.
    pub tick: usize,
    pub quit: bool,
}

impl App {
    /// A fresh UI over the corpus named `label`.
    pub fn new(label: &str, budget: BudgetState) -> Self {
        Self {
            corpus: CorpusState {
                label: label.to_string(),
                ..Default::default()
            },
            budget,
            status: Status {
                text: "opening the corpus…".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A request is running (new questions wait).
    pub fn running(&self) -> bool {
        self.status.busy
    }

    /// The answer whose card and evidence are shown.
    pub fn shown_answer(&self) -> Option<&Answer> {
        self.answer.result.as_deref()
    }

    /// The answer state a run's events go to.
    fn run_state(&mut self, run: Run) -> Option<&mut AnswerState> {
        match run {
            Run::Single => Some(&mut self.answer),
            Run::Column(i) => self
                .compare
                .as_mut()
                .and_then(|c| c.columns.get_mut(i))
                .map(|c| &mut c.state),
        }
    }

    /// Applies one event from the worker.
    pub fn apply(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Status(s) => self.status.text = s,
            WorkerEvent::Corpus(c) => {
                let model = self.corpus.model.take();
                self.corpus = c;
                self.corpus.model = self.corpus.model.take().or(model);
            }
            WorkerEvent::Ready { model } => {
                self.corpus.model = Some(model);
                self.status.ready = true;
                if !self.status.busy {
                    self.status.text = "ready: type a question and press Enter".into();
                }
            }
            WorkerEvent::Started { run, plan } => {
                if let Some(s) = self.run_state(run) {
                    s.plan = Some(plan);
                    s.running = true;
                }
            }
            WorkerEvent::Piece { run, text } => {
                if let Some(s) = self.run_state(run) {
                    s.text.push_str(&text);
                }
            }
            WorkerEvent::Finished { run, answer } => {
                if run == Run::Single {
                    self.evidence = 0;
                    self.card_scroll = 0;
                }
                if let Some(s) = self.run_state(run) {
                    s.text = answer.answer.clone();
                    s.running = false;
                    s.result = Some(answer);
                }
            }
            WorkerEvent::Failed { run, error } => {
                if let Some(s) = run.and_then(|r| self.run_state(r)) {
                    s.running = false;
                    s.error = Some(error.clone());
                } else if self.answer.question.is_empty() {
                    // A start-up error: the answer pane has the room to say it.
                    self.answer.error = Some(error.clone());
                }
                self.status.error = Some(error);
            }
            WorkerEvent::Idle => {
                self.status.busy = false;
                for s in std::iter::once(&mut self.answer).chain(
                    self.compare
                        .iter_mut()
                        .flat_map(|c| c.columns.iter_mut().map(|c| &mut c.state)),
                ) {
                    s.running = false;
                }
                self.status.text = if self.status.ready {
                    "ready".into()
                } else {
                    "the models are not loaded".into()
                };
            }
        }
    }

    /// Starts showing a new single answer for `question`.
    pub fn begin_answer(&mut self, question: &str) {
        self.answer = AnswerState {
            question: question.to_string(),
            running: true,
            ..Default::default()
        };
        self.view = View::Answer;
        self.begin();
    }

    /// Starts showing a new comparison for `question`.
    pub fn begin_compare(&mut self, question: &str) {
        self.compare = Some(CompareState::new(question));
        self.view = View::Compare;
        self.begin();
    }

    fn begin(&mut self) {
        self.status.busy = true;
        self.status.error = None;
        self.status.text = if self.status.ready {
            "planning…".into()
        } else {
            "waiting for the models to load…".into()
        };
    }
}
