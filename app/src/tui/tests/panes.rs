//! One snapshot test (or two) per pane, from fixed state.

use super::*;

#[test]
fn corpus_pane_lists_documents_tokens_and_index_state() {
    let state = CorpusState {
        label: "/data".into(),
        docs: vec![doc()],
        indexed: Some(false),
        skipped: vec![],
        model: Some("qwen2.5-0.5b".into()),
    };
    let (lines, _) = render(CorpusPane(&state), 30, 12);
    let expected = [
        "┌ corpus ────────────────────┐",
        "│/data                       │",
        "│document             tokens │",
        "│tides.txt                41 │",
        "│                            │",
        "│1 docs · 41 tokens          │",
        "│160 B of text               │",
        "│index: none yet (built on   │",
        "│the first retrieval)        │",
        "│model: qwen2.5-0.5b         │",
    ];
    assert_eq!(lines[..expected.len()], expected);
}

#[test]
fn input_pane_shows_the_question_and_the_settings_it_runs_with() {
    let mut input = crate::tui::input::InputState::default();
    for c in "When?".chars() {
        input.insert(c);
    }
    let pane = InputPane {
        input: &input,
        forced: Some(StrategyKind::Rag),
        budget: BudgetState::default().describe(),
        focused: true,
    };
    let (lines, _) = render(pane, 100, 3);
    assert_eq!(
        lines[0],
        "┌ question · strategy rag (F2) · budget latency 60s · memory auto · tokens none (F4) · compare F3 ─┐"
    );
    assert_eq!(lines[1].trim_end_matches(['│', ' ']), "│> When?");
}

#[test]
fn answer_pane_streams_and_says_how_the_answer_ended() {
    let mut state = AnswerState {
        question: "When was it signed?".into(),
        text: "It was signed on".into(),
        plan: Some("full context (flash attention, f32 KV)".into()),
        running: true,
        ..Default::default()
    };
    let (lines, _) = render(
        AnswerPane {
            state: &state,
            tick: 0,
            title: " answer ",
        },
        50,
        9,
    );
    assert_eq!(
        lines[1],
        "│Q: When was it signed?                          │"
    );
    assert_eq!(
        lines[2],
        "│reading: full context (flash attention, f32 KV) │"
    );
    assert_eq!(
        lines[4],
        "│It was signed on                                │"
    );
    assert_eq!(
        lines[5],
        "│⠋ working…                                      │"
    );
    let mut cancelled = answer(full(), false);
    cancelled.trade_offs.read.stop_reason = StopReason::Cancelled;
    state.running = false;
    state.result = Some(Box::new(cancelled));
    let (lines, _) = render(
        AnswerPane {
            state: &state,
            tick: 0,
            title: " answer ",
        },
        50,
        9,
    );
    assert_eq!(
        lines[5],
        "│[cancelled: the answer stops here]              │"
    );
}

#[test]
fn card_pane_shows_strategy_coverage_and_stages() {
    let a = answer(full(), false);
    let docs = [doc()];
    let pane = CardPane {
        answer: Some(&a),
        docs: &docs,
        scroll: 0,
    };
    let (lines, _) = render(pane, 90, 24);
    let bar = "█".repeat(52);
    let rows = [
        "strategy    full context (flash attention, f32 KV) (look-up question)".to_string(),
        format!("coverage    tides.txt       {bar} 100.0%"),
        "RoPE        none (within the trained 32768 positions)".into(),
        "KV cache    3.0 MB (f32)".into(),
        "            prefill        0.50 s     0.61 s".into(),
        "            total          1.75 s     1.61 s  (-8% against the prediction)".into(),
    ];
    for row in rows {
        let row = format!("│{row:<88}│");
        assert!(
            has_row(&lines, &row),
            "no row {row:?} in\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn card_pane_warns_in_red_beyond_the_trained_range() {
    let a = answer(full(), true);
    let docs = [doc()];
    let pane = CardPane {
        answer: Some(&a),
        docs: &docs,
        scroll: 0,
    };
    let (lines, buf) = render(pane, 90, 30);
    let y = lines
        .iter()
        .position(|l| l.starts_with("│RoPE        pi ×2: WARNING, read beyond the 32768 positions"))
        .unwrap_or_else(|| panic!("no RoPE warning in\n{}", lines.join("\n")));
    assert_eq!(buf[(1, y as u16)].fg, Color::Red);
}

#[test]
fn coverage_bars_mark_what_retrieval_read() {
    let read = [Span { start: 0, end: 25 }, Span { start: 50, end: 53 }];
    assert_eq!(coverage_bar(100, &read, 10), "███░░▒░░░░");
    let mut a = answer(Strategy::Rag { k: 5 }, false);
    a.trade_offs.coverage.chunks = vec![UsedChunk {
        path: "/data/tides.txt".into(),
        span: Span { start: 0, end: 68 },
        rank: 1,
        score: 0.5,
        bm25_rank: Some(1),
        dense_rank: None,
    }];
    let lines = crate::tui::card_pane::coverage_lines(&a.trade_offs, &[doc()], 46);
    assert_eq!(lines, ["coverage    tides.txt       ████▒░░░░░  42.5%"]);
}

#[test]
fn evidence_pane_opens_the_source_with_the_span_highlighted() {
    let a = answer(full(), false);
    let docs = [doc()];
    let pane = EvidencePane {
        answer: Some(&a),
        docs: &docs,
        selected: 0,
    };
    let (lines, buf) = render(pane, 100, 10);
    let e = evidence();
    assert_eq!(
        lines[1].trim_end_matches(['│', ' ']),
        format!(
            "│[1/1] tides.txt bytes {}–{} (verified in the source)",
            e.span.start, e.span.end
        )
    );
    assert_eq!(
        lines[3].trim_end_matches(['│', ' ']),
        "│The Ordinance of Tides"
    );
    let row = "│The council met for three days. The Ordinance of Tides was signed on 14 March 2031 by all nine    │";
    assert_eq!(lines[5], row);
    // The cited sentence is highlighted, the words before it are not.
    let x = row.chars().position(|c| c == 'O').unwrap() as u16 + 13;
    assert_eq!(buf[(5, 5)].bg, Color::Reset);
    assert_eq!(buf[(x, 5)].bg, Color::Yellow);
}

#[test]
fn help_overlay_lists_the_keys() {
    let (lines, _) = render(HelpOverlay, 110, 24);
    assert!(lines.iter().any(|l| l.contains(
        "│  F2               force a strategy for the next question: auto → rag → compress → full"
    )));
    assert!(lines.iter().any(|l| l.contains("│  Ctrl-Q / F10     quit")));
}

#[test]
fn compare_pane_puts_the_strategies_side_by_side() {
    let mut state = CompareState::new("When?");
    state.columns[0].state.result = Some(Box::new(answer(Strategy::Rag { k: 5 }, false)));
    state.columns[1].state.error = Some("no compress plan".into());
    state.columns[2].state.running = true;
    let (lines, _) = render(
        ComparePane {
            state: &state,
            tick: 1,
        },
        120,
        16,
    );
    assert!(lines[0].starts_with("┌ rag · done ─"), "{}", lines[0]);
    assert!(lines[0].contains("┐┌ compress · not run ─"), "{}", lines[0]);
    assert!(lines[0].contains("┐┌ full · running ─"), "{}", lines[0]);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("│tokens sent       120 ")));
    assert!(lines.iter().any(|l| l.contains("│⠙ working…")));
}
