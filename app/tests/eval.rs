//! `folio eval` smoke suite: a few items per suite with SmolLM2, the real
//! binary, real datasets, producing every report file; resume and bad
//! input.

use std::path::Path;
use std::process::{Command, Output};

fn folio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(args)
        .args(["--threads", "2"])
        .output()
        .expect("running folio")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn records(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn eval(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "eval",
        "--model",
        "smollm2-135m",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    folio(&args)
}

#[test]
fn every_suite_runs_and_writes_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let niah = [
        "--suite",
        "niah",
        "--lengths",
        "600",
        "--limit",
        "2",
        "--strategies",
        "rag,compress,full,auto",
    ];
    let o = eval(&out, &niah);
    assert!(o.status.success(), "{}", stderr(&o));
    let rs = records(&out);
    assert_eq!(rs.len(), 8, "2 items × 4 strategies");
    for r in &rs {
        assert!(r.get("error").is_none(), "{r}");
        let tokens = r["corpus_tokens"].as_u64().unwrap();
        assert!(
            (520..700).contains(&tokens),
            "length 600 asked, {tokens}: {r}"
        );
        assert!(r["seconds"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["peak_memory_bytes"].as_u64().unwrap() > 0, "{r}");
    }
    let by = |s: &'static str| rs.iter().filter(move |r| r["strategy"] == s);
    assert!(by("rag").all(|r| r["chosen_kind"] == "rag" && r["retrieval_recall"].is_number()));
    assert!(by("compress").all(|r| r["chosen_kind"] == "compress"
        && r["tokens_sent"].as_u64() < by("full").next().unwrap()["tokens_sent"].as_u64()));
    assert!(by("full").all(|r| r["coverage"] == 1.0));

    // A rerun resumes: nothing is answered twice.
    let o = eval(&out, &niah);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(records(&out).len(), 8);

    // Other suites into the same folder (reports cover all of them).
    for extra in [
        &[
            "--suite",
            "ruler",
            "--lengths",
            "600",
            "--strategies",
            "full,rag",
        ][..],
        &[
            "--suite",
            "squad",
            "--limit",
            "2",
            "--strategies",
            "full,rag",
        ],
        &[
            "--suite",
            "hotpotqa",
            "--limit",
            "1",
            "--strategies",
            "full,rag",
        ],
    ] {
        let o = eval(&out, extra);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    }
    let rs = records(&out);
    for suite in ["ruler", "squad", "hotpotqa"] {
        assert!(rs.iter().any(|r| r["suite"] == suite), "{suite} missing");
    }
    let hotpot = rs
        .iter()
        .find(|r| r["suite"] == "hotpotqa" && r["strategy"] == "rag");
    assert!(hotpot.unwrap()["retrieval_recall"].is_number());

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["records"].as_u64().unwrap() as usize, rs.len());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "## niah",
        "## ruler",
        "## squad",
        "## hotpotqa",
        "| rag |",
        "| full |",
    ] {
        assert!(report.contains(needle), "report.md lacks {needle:?}");
    }
    for chart in [
        "niah-heatmap-rag.svg",
        "niah-heatmap-full.svg",
        "score-vs-tokens.svg",
        "latency.svg",
    ] {
        let svg = std::fs::read_to_string(out.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{chart}");
    }
}

#[test]
fn the_users_jsonl_set_scores_refusals_and_rejects_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("memo.txt"),
        "Memo. The Aurora probe launches on 14 March 2031 from the Kourou site. \
         The team lead is Ines Okafor.",
    )
    .unwrap();
    let qa = dir.path().join("qa.jsonl");
    std::fs::write(
        &qa,
        concat!(
            r#"{"id": 1, "doc": "memo.txt", "question": "When does the Aurora probe launch?", "answers": ["14 March 2031"], "kind": "date"}"#,
            "\n",
            r#"{"id": 2, "doc": "memo.txt", "question": "What is the probe's budget in euros?", "answers": ["NOT_IN_DOCUMENT"], "kind": "absent"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    let args = [
        "--suite",
        "jsonl",
        "--qa",
        qa.to_str().unwrap(),
        "--docs",
        docs.to_str().unwrap(),
        "--strategies",
        "full",
    ];
    let o = eval(&out, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let rs = records(&out);
    assert_eq!(rs.len(), 2);
    let absent = rs.iter().find(|r| r["kind"] == "absent").unwrap();
    assert_eq!(absent["golds"].as_array().unwrap().len(), 0);
    // An unanswerable item scores exactly when the model abstains.
    let refused = absent["refused"].as_bool().unwrap();
    assert_eq!(absent["correct"].as_bool().unwrap(), refused, "{absent}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("absent / full"), "{report}");

    std::fs::write(
        &qa,
        r#"{"id": 1, "doc": "missing.txt", "question": "q", "answers": ["a"]}"#,
    )
    .unwrap();
    let o = eval(&dir.path().join("bad"), &args);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("line 1") && err.contains("missing.txt") && err.contains("--docs"),
        "{err}"
    );
}
