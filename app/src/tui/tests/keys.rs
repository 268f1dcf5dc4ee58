//! The key map and worker events over the state, and the whole screen.

use super::*;

#[test]
fn budget_editor_parses_like_the_flags() {
    let state = BudgetState {
        latency: "30s".into(),
        memory: "4GiB".into(),
        tokens: "1024".into(),
    };
    let b = state.parse().unwrap();
    assert_eq!(b.latency_s, Some(30.0));
    assert_eq!(b.memory_bytes, Some(4 << 30));
    assert_eq!(b.context_tokens, Some(1024));
    let mut app = App::new("/data", BudgetState::default());
    app.on_key(key(KeyCode::F(4)));
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Char('x')));
    app.on_key(key(KeyCode::Enter));
    let Overlay::Budget(editor) = &app.overlay else {
        panic!("a bad budget keeps the editor open");
    };
    assert!(editor.error.as_deref().unwrap().contains("unknown unit"));
    let (lines, _) = render(BudgetOverlay(editor), 80, 16);
    assert!(
        lines.iter().any(|l| l.contains("latency  6x ")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn keys_ask_recall_force_cancel_and_quit() {
    let mut app = App::new("/data", BudgetState::default());
    for c in "hi".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Some(Action::Ask {
            question: "hi".into(),
            compare: false
        })
    );
    assert!(app.running() && app.input.text.is_empty());
    assert_eq!(app.on_key(key(KeyCode::Esc)), Some(Action::Cancel));
    app.apply(WorkerEvent::Started {
        run: Run::Single,
        plan: "full".into(),
    });
    app.apply(WorkerEvent::Piece {
        run: Run::Single,
        text: "Hello".into(),
    });
    assert_eq!(app.answer.text, "Hello");
    app.apply(WorkerEvent::Idle);
    assert!(!app.running());
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.input.text, "hi");
    app.on_key(key(KeyCode::F(2)));
    app.on_key(key(KeyCode::F(2)));
    assert_eq!(app.forced, Some(StrategyKind::Compress));
    assert_eq!(
        app.on_key(key(KeyCode::F(3))),
        Some(Action::Ask {
            question: "hi".into(),
            compare: true
        })
    );
    app.apply(WorkerEvent::Idle);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.on_key(ctrl_c), Some(Action::Quit));
}

#[test]
fn whole_screen_draws_every_pane() {
    let mut app = App::new("/data", BudgetState::default());
    app.corpus.docs = vec![doc()];
    app.begin_answer("When was the Ordinance of Tides signed?");
    app.apply(WorkerEvent::Finished {
        run: Run::Single,
        answer: Box::new(answer(full(), false)),
    });
    app.apply(WorkerEvent::Ready {
        model: "qwen2.5-0.5b".into(),
    });
    app.apply(WorkerEvent::Idle);
    let mut t = Terminal::new(TestBackend::new(160, 48)).unwrap();
    t.draw(|f| crate::tui::ui::draw(f, &app)).unwrap();
    let buf = t.backend().buffer().clone();
    let screen: String = (0..48)
        .map(|y| (0..160).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect();
    for part in [
        "┌ corpus ",
        "┌ answer ",
        "┌ evidence ",
        "┌ how it was read ",
        "┌ question · strategy auto (router)",
        "It was signed on 14 March 2031.",
        "strategy    full context",
        "ready  · F1 help · Ctrl-Q quit",
    ] {
        assert!(screen.contains(part), "no {part:?} on\n{screen}");
    }
}
