//! Research tool: re-scores recorded answers (an eval's results.jsonl, run
//! with `--min-confidence 0`) with alternative answerability prompts and
//! prints each one's AUROC (answers worth keeping against the rest); with
//! an output path, writes the records re-scored by the engine's own check.
//!
//! `cargo run --release -p folio-engine --example verify_prompts -- MODEL RESULTS.jsonl [OUT.jsonl]`
use folio_engine::llm::quote::yes_probability;
use folio_engine::llm::{ChatMessage, Role, Session, SessionOptions};
use folio_engine::models::load_model;

/// A prompt from (question, quote, answer).
type Prompt = Box<dyn Fn(&str, &str, &str) -> String>;

fn auroc(pos: &[f64], neg: &[f64]) -> f64 {
    let mut w = 0.0;
    for p in pos {
        for n in neg {
            w += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    w / (pos.len() * neg.len()) as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = load_model(&args[1], false).unwrap();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&args[2])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let variants: Vec<(&str, Prompt)> = vec![
        (
            "current",
            Box::new(|q: &str, qu: &str, a: &str| {
                format!("Text: \"{qu}\"\n\nQuestion: {q}\nProposed answer: {a}\n\nIs the proposed answer stated in the text? Reply with yes or no.")
            }),
        ),
        (
            "no-answer",
            Box::new(|q: &str, qu: &str, _a: &str| {
                format!("Text: \"{qu}\"\n\nQuestion: {q}\n\nDoes the text answer this exact question? Reply with yes or no.")
            }),
        ),
        (
            "q-first",
            Box::new(|q: &str, qu: &str, a: &str| {
                format!("Question: {q}\n\nText: \"{qu}\"\n\nDoes the text say that the answer to the question is \"{a}\"? Reply with yes or no.")
            }),
        ),
        (
            "strict",
            Box::new(|q: &str, qu: &str, a: &str| {
                format!("Text: \"{qu}\"\n\nQuestion: {q}\nProposed answer: {a}\n\nRead the question carefully: every detail of it must match the text. Does the text answer exactly this question with the proposed answer? Reply with yes or no.")
            }),
        ),
    ];
    let mut session = Session::new(&model, SessionOptions::for_model(&model));
    // With a third argument: rewrite the records' answerability with the
    // engine's own check (`support_check`) into that file, for `--report-only`.
    if let Some(out) = args.get(3) {
        let mut lines = Vec::new();
        for r in &records {
            let mut r = r.clone();
            if let Some(quote) = r["quote"].as_str() {
                let q = r["question"].as_str().unwrap();
                let ids = model
                    .chat
                    .render(
                        &model.tokenizer,
                        &folio_engine::llm::support_check(quote, q),
                    )
                    .unwrap();
                r["answerability"] = yes_probability(&mut session, &ids).unwrap().into();
            }
            lines.push(serde_json::to_string(&r).unwrap());
        }
        std::fs::write(out, lines.join("\n") + "\n").unwrap();
        return;
    }
    for (name, make) in &variants {
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for r in &records {
            let (Some(quote), Some(raw)) = (r["quote"].as_str(), r["raw_answer"].as_str()) else {
                continue;
            };
            let q = r["question"].as_str().unwrap();
            let msg = vec![ChatMessage::new(Role::User, make(q, quote, raw))];
            let ids = model.chat.render(&model.tokenizer, &msg).unwrap();
            let p = yes_probability(&mut session, &ids).unwrap();
            let worth =
                !r["golds"].as_array().unwrap().is_empty() && r["raw_correct"].as_bool().unwrap();
            if worth {
                pos.push(p)
            } else {
                neg.push(p)
            }
        }
        println!(
            "{name}: auroc {:.3} ({} pos, {} neg)",
            auroc(&pos, &neg),
            pos.len(),
            neg.len()
        );
    }
}
