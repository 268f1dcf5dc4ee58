//! `folio ask` and `folio eval` through a real serving engine: llama.cpp's
//! `llama-server` (`FOLIO_LLAMA_SERVER`, built by `.ci/run`) serving the
//! SmolLM2 GGUF on 127.0.0.1, as `--backend openai`.

#[path = "../../engine/tests/llama_cpp/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use server::LlamaServer;

const ALIAS: &str = "smollm2";

fn folio(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(args)
        .args(["--threads", "2"])
        // The server's measured rates go to a folder of the test's own.
        .env("FOLIO_SERVERS_DIR", home)
        .env_remove("FOLIO_BASE_URL")
        .env_remove("FOLIO_API_KEY")
        .output()
        .expect("running folio")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn start(dir: &Path, ctx: usize) -> Option<LlamaServer> {
    let binary = server::binary()?;
    let spec = folio_engine::models::find_model("smollm2-135m").unwrap();
    let path: PathBuf =
        folio_engine::models::ensure_model(spec, &folio_engine::models::models_dir(), false)
            .unwrap();
    Some(LlamaServer::start_with(
        &binary,
        &path,
        ctx,
        dir,
        &["--alias", ALIAS],
    ))
}

fn memo(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("memo.txt"),
        "Memo. The Aurora probe launches on 14 March 2031 from the Kourou site. \
         The team lead is Ines Okafor. The probe carries a spectrometer built in Delft.",
    )
    .unwrap();
    docs
}

fn backend(url: &str) -> [&str; 8] {
    [
        "--backend",
        "openai",
        "--base-url",
        url,
        "--model",
        ALIAS,
        "--tokenizer",
        "smollm2-135m",
    ]
}

#[test]
fn ask_streams_through_the_server_with_a_card_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(llama) = start(dir.path(), 2048) else {
        return;
    };
    let docs = memo(dir.path());
    let url = llama.url();
    // The budget is not what this test is about: a server measured while
    // other tests share the cores may look slow.
    let mut args = vec![
        "ask",
        "--corpus",
        docs.to_str().unwrap(),
        "--budget-latency",
        "none",
    ];
    args.extend(backend(&url));
    args.push("Who is the team lead?");
    let o = folio(&args, dir.path());
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("Okafor"), "{out}");
    assert!(
        out.contains(&format!(
            "server      llama.cpp at {url}, model {ALIAS} (context 2048 tokens)"
        )),
        "{out}"
    );
    assert!(out.contains("attention   server-side"), "{out}");
    assert!(out.contains("KV cache    server-side"), "{out}");
    // The router priced the plan with the server's measured speed.
    assert!(out.contains("measuring the server's speed"), "{out}");
    assert!(dir
        .path()
        .read_dir()
        .unwrap()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "json")));

    // --json: the server's fields are named, never filled in.
    args.insert(1, "--json");
    let o = folio(&args, dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let read = &v["trade_offs"]["read"];
    assert_eq!(read["server"]["kind"], "llama_cpp", "{read}");
    assert_eq!(read["kv_dtype"], "server-side");
    assert!(read["server"]["server_side"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("rope_scaling")));
    assert!(
        !text(&o).contains("measuring the server's speed"),
        "measured once"
    );
}

#[test]
fn an_eval_through_a_server_records_what_failed_and_resumes_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut small) = start(dir.path(), 512) else {
        return;
    };
    let docs = memo(dir.path());
    // About 1,500 tokens: more than the first server's context holds.
    std::fs::write(
        docs.join("log.txt"),
        "The night watch logged the tide at the harbour wall every hour. ".repeat(120)
            + "The harbour master is Pim Verhoef.",
    )
    .unwrap();
    let qa = dir.path().join("qa.jsonl");
    std::fs::write(
        &qa,
        concat!(
            r#"{"id": 1, "doc": "memo.txt", "question": "Who is the team lead?", "answers": ["Ines Okafor"]}"#,
            "\n",
            r#"{"id": 2, "doc": "log.txt", "question": "Who is the harbour master?", "answers": ["Pim Verhoef"]}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    let eval = |url: &str| {
        let mut args = vec![
            "eval",
            "--suite",
            "jsonl",
            "--qa",
            qa.to_str().unwrap(),
            "--docs",
            docs.to_str().unwrap(),
            "--strategies",
            "full",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ];
        args.extend(backend(url));
        folio(&args, dir.path())
    };
    let records = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join("results.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let o = eval(&small.url());
    assert!(o.status.success(), "{}", text(&o));
    let rs = records();
    assert_eq!(rs.len(), 2, "{rs:?}");
    assert!(rs[0].get("error").is_none(), "{}", rs[0]);
    let error = rs[1]["error"].as_str().unwrap_or_default();
    assert!(error.contains("the server holds 512"), "{}", rs[1]);

    // The server gone: an error that says what to do, nothing written.
    let url = small.url();
    small.kill();
    let o = eval(&url);
    assert!(!o.status.success());
    assert!(text(&o).contains("is it running"), "{}", text(&o));
    assert_eq!(records().len(), 2);

    // A server with room: only the failed item runs again, and succeeds.
    let big = start(dir.path(), 4096).unwrap();
    let o = eval(&big.url());
    assert!(o.status.success(), "{}", text(&o));
    let rs = records();
    let done: Vec<_> = rs.iter().filter(|r| r.get("error").is_none()).collect();
    assert_eq!(done.len(), 2, "{rs:?}");
    assert_eq!(rs.len(), 3, "one retry appended: {rs:?}");
}
