//! What each key does to the state, and which need the worker (the
//! returned [`Action`]). Pure over `App`, so the key map is testable
//! without a terminal; the table users read is `help::KEYS`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use folio_engine::router::StrategyKind;

use super::budget::BudgetEditor;
use super::state::{App, Overlay, View};

/// What the run loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask `question`: one answer, or every strategy side by side.
    Ask {
        question: String,
        compare: bool,
    },
    /// Stop the running answer.
    Cancel,
    Quit,
}

/// The strategy F2 forces after `current` (`None`: the router chooses).
pub fn next_strategy(current: Option<StrategyKind>) -> Option<StrategyKind> {
    match current {
        None => Some(StrategyKind::Rag),
        Some(StrategyKind::Rag) => Some(StrategyKind::Compress),
        Some(StrategyKind::Compress) => Some(StrategyKind::Full),
        Some(StrategyKind::Full) => None,
    }
}

impl App {
    /// Applies `key`; returns what the run loop must do, if anything.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('q') if ctrl => return Some(Action::Quit),
            KeyCode::F(10) => return Some(Action::Quit),
            KeyCode::Char('c') if ctrl => {
                return Some(if self.running() {
                    self.status.text = "cancelling…".into();
                    Action::Cancel
                } else {
                    Action::Quit
                });
            }
            _ => {}
        }
        match &self.overlay {
            Overlay::Help => {
                if matches!(key.code, KeyCode::Esc | KeyCode::F(1) | KeyCode::Enter) {
                    self.overlay = Overlay::None;
                }
                return None;
            }
            Overlay::Budget(_) => {
                self.budget_key(key);
                return None;
            }
            Overlay::None => {}
        }
        match key.code {
            KeyCode::Esc if self.running() => {
                self.status.text = "cancelling…".into();
                return Some(Action::Cancel);
            }
            KeyCode::F(1) => self.overlay = Overlay::Help,
            KeyCode::F(2) => self.forced = next_strategy(self.forced),
            KeyCode::F(3) => return self.ask(true),
            KeyCode::F(4) => self.overlay = Overlay::Budget(BudgetEditor::open(&self.budget)),
            KeyCode::F(5) => {
                self.view = match self.view {
                    View::Answer if self.compare.is_some() => View::Compare,
                    _ => View::Answer,
                }
            }
            KeyCode::Tab => self.evidence = self.evidence.wrapping_add(1),
            KeyCode::BackTab => self.evidence = self.evidence.wrapping_sub(1),
            KeyCode::PageDown => self.card_scroll = self.card_scroll.saturating_add(5),
            KeyCode::PageUp => self.card_scroll = self.card_scroll.saturating_sub(5),
            KeyCode::Enter => return self.ask(false),
            KeyCode::Up => self.input.recall(true),
            KeyCode::Down => self.input.recall(false),
            KeyCode::Left => self.input.move_cursor(-1),
            KeyCode::Right => self.input.move_cursor(1),
            KeyCode::Home => self.input.jump(false),
            KeyCode::End => self.input.jump(true),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Char('u') if ctrl => {
                self.input.text.clear();
                self.input.cursor = 0;
            }
            KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
                self.input.insert(c)
            }
            _ => {}
        }
        None
    }

    /// Enter (or F3 with `compare`): the typed question, or for F3 on an
    /// empty line the last one asked.
    fn ask(&mut self, compare: bool) -> Option<Action> {
        if self.running() {
            self.status.error = Some("an answer is running: wait, or cancel it with Esc".into());
            return None;
        }
        let question = match self.input.submit() {
            Some(q) => q,
            None if compare => self.input.history.last()?.clone(),
            None => return None,
        };
        if compare {
            self.begin_compare(&question);
        } else {
            self.begin_answer(&question);
        }
        Some(Action::Ask { question, compare })
    }

    fn budget_key(&mut self, key: KeyEvent) {
        let Overlay::Budget(editor) = &mut self.overlay else {
            return;
        };
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Tab | KeyCode::Down => editor.cycle(true),
            KeyCode::BackTab | KeyCode::Up => editor.cycle(false),
            KeyCode::Backspace => editor.backspace(),
            KeyCode::Char(c) => editor.insert(c),
            KeyCode::Enter => {
                if let Some(b) = editor.apply() {
                    self.budget = b;
                    self.overlay = Overlay::None;
                    self.status.text = format!("budget: {}", self.budget.describe());
                }
            }
            _ => {}
        }
    }
}
