//! Snapshot tests of each pane: fixed state rendered on ratatui's
//! `TestBackend`, key rows compared character for character. These are
//! display tests: the answers are built by hand, no model runs.

mod keys;
mod panes;

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use folio_corpora::Span;
use folio_engine::ask::{
    Answer, Cost, Coverage, Evidence, PlanChoice, ReadReport, StageReport, Support, TradeOffs,
    UsedChunk,
};
use folio_engine::llm::{KvDtype, ReadStats, RopeScaling, StopReason};
use folio_engine::router::{Budget, PlannedAttention, QuestionKind, Strategy, StrategyKind};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::widgets::Widget;
use ratatui::Terminal;

use crate::tui::answer_pane::AnswerPane;
use crate::tui::budget::{BudgetOverlay, BudgetState};
use crate::tui::card_pane::{coverage_bar, CardPane};
use crate::tui::compare::ComparePane;
use crate::tui::corpus::CorpusPane;
use crate::tui::events::{Run, WorkerEvent};
use crate::tui::evidence::EvidencePane;
use crate::tui::help::HelpOverlay;
use crate::tui::input::InputPane;
use crate::tui::keys::Action;
use crate::tui::state::{AnswerState, App, CompareState, CorpusState, DocInfo, Overlay};

pub(super) const DOC: &str = "The Ordinance of Tides\n\nThe council met for three days. \
The Ordinance of Tides was signed on 14 March 2031 by all nine members.\n\nA copy is kept \
in the library.\n";
pub(super) const SENTENCE: &str =
    "The Ordinance of Tides was signed on 14 March 2031 by all nine members.";

pub(super) fn doc() -> DocInfo {
    DocInfo {
        path: "/data/tides.txt".into(),
        bytes: DOC.len(),
        tokens: Some(41),
        text: Arc::from(DOC),
    }
}

pub(super) fn evidence() -> Evidence {
    let start = DOC.find(SENTENCE).unwrap();
    Evidence {
        path: "/data/tides.txt".into(),
        span: Span {
            start,
            end: start + SENTENCE.len(),
        },
        text: SENTENCE.into(),
        verified: true,
        score: 1.0,
    }
}

/// A full read of `DOC`, as `ask` would report it.
pub(super) fn answer(strategy: Strategy, beyond: bool) -> Answer {
    let stage = |stage, predicted_s, measured_s| StageReport {
        stage,
        predicted_s,
        model_s: predicted_s,
        measured_s,
    };
    Answer {
        question: "When was the Ordinance of Tides signed?".into(),
        answer: "It was signed on 14 March 2031.".into(),
        model: "qwen".into(),
        trade_offs: TradeOffs {
            plan: PlanChoice {
                strategy,
                question_kind: QuestionKind::Lookup,
                reasons: vec!["the corpus (41 tokens) fits the model's trained context".into()],
                budget: Budget {
                    latency_s: Some(60.0),
                    memory_bytes: None,
                    context_tokens: None,
                },
                alternatives: Vec::new(),
                fallback: None,
            },
            coverage: Coverage {
                corpus_documents: 1,
                corpus_tokens: 41,
                corpus_tokens_estimated: false,
                tokens_sent: 120,
                read_fraction: 1.0,
                unread_documents: 0,
                chunks: Vec::new(),
                dropped: Vec::new(),
                dropped_spans: 0,
                dropped_bytes: 0,
            },
            read: ReadReport {
                stats: ReadStats {
                    device: "cpu",
                    attention: "flash",
                    attended_fraction: 1.0,
                    rope_scaling: if beyond {
                        RopeScaling::Linear { factor: 2.0 }
                    } else {
                        RopeScaling::None
                    },
                    kv_dtype: "f32",
                    kv_cache_bytes: 3_000_000,
                    eviction: None,
                    server: None,
                },
                device_note: None,
                beyond_trained_range: beyond,
                trained_context: 32768,
                generated_tokens: 9,
                stop_reason: StopReason::StopToken,
                prefix_cache: None,
            },
            cost: Cost {
                stages: vec![stage("prefill", 0.5, 0.61), stage("decode", 1.25, 1.0)],
                predicted_seconds: 1.75,
                measured_seconds: 1.61,
                predicted_peak_memory_bytes: 2_000_000_000,
                measured_peak_memory_bytes: 1_500_000_000,
            },
            support: Support {
                quote: None,
                answerability: None,
                min_confidence: 0.5,
                min_confidence_source: folio_engine::ask::abstain::ThresholdSource::Default,
                withheld_answer: None,
                evidence: vec![evidence()],
                not_found: false,
                word_overlap: 1.0,
            },
        },
    }
}

pub(super) fn full() -> Strategy {
    Strategy::Full {
        attention: PlannedAttention::Flash,
        rope: RopeScaling::None,
        kv: KvDtype::F32,
        eviction: None,
    }
}

/// Renders `w` on a `width` × `height` test terminal.
pub(super) fn render(w: impl Widget, width: u16, height: u16) -> (Vec<String>, Buffer) {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| f.render_widget(w, f.area())).unwrap();
    let buf = t.backend().buffer().clone();
    let lines = (0..height)
        .map(|y| (0..width).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect();
    (lines, buf)
}

pub(super) fn has_row(lines: &[String], row: &str) -> bool {
    lines.iter().any(|l| l == row)
}

pub(super) fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}
