//! The terminal UI end to end: the real binary under tmux, a question typed
//! with send-keys, the screen read with capture-pane until the answer and
//! its trade-off card are on it, then the quit key and a clean exit.
//!
//! Needs tmux: CI installs it and sets FOLIO_REQUIRE_TMUX=1, so there a
//! missing tmux fails the test; elsewhere the test says it is skipped.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const DOC: &str = "The Ordinance of Tides\n\n\
The harbour council of Vellmouth met for three days in early spring to settle the dispute \
between the fishing guild and the salt merchants. After long debate, the Ordinance of Tides \
was signed on 14 March 2031 by all nine council members.\n\n\
The ordinance fixed the hours during which boats could leave the inner harbour and set a fee \
of two silver marks for every cart of salt carried across the tidal causeway.\n\n\
A copy is kept in the town library, next to the old map of the sandbanks.\n";

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn screen(&self) -> String {
        let o = self.run(&["capture-pane", "-p", "-t", "tui"]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Polls the screen every 500 ms until `done` holds or `limit` passes.
    fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Whether tmux is here; without it the test is skipped, except where
/// FOLIO_REQUIRE_TMUX=1 (CI) makes that a failure.
fn tmux_or_skip() -> bool {
    if tmux_available() {
        return true;
    }
    assert!(
        std::env::var("FOLIO_REQUIRE_TMUX").as_deref() != Ok("1"),
        "tmux is missing and FOLIO_REQUIRE_TMUX=1"
    );
    eprintln!("skipped: tmux is not installed (CI installs it)");
    false
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn tui_answers_a_typed_question_with_its_card_and_quits_cleanly() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tides.txt"), DOC).unwrap();
    let status_file = dir.path().join("exit-status");
    let tmux = start_tui(
        "e2e",
        &["--corpus", &dir.path().display().to_string()],
        &status_file,
    );
    let started = Instant::now();
    tmux.wait_for(Duration::from_secs(60), "the UI", |s| {
        s.contains("┌ question")
    });
    ask(&tmux, "When was the Ordinance of Tides signed?");
    let screen = tmux.wait_for(Duration::from_secs(600), "the answer and its card", |s| {
        s.contains("2031") && s.contains("│budget      latency") && s.contains("ready  · F1 help")
    });
    eprintln!(
        "answered after {:.1} s; the screen:\n{screen}",
        started.elapsed().as_secs_f64()
    );
    for part in [
        "14 March 2031",
        "strategy    full context",
        "coverage    tides.txt",
        "RoPE        none (within the trained",
        "KV cache",
        "            prefill",
        "(verified in the source)",
    ] {
        assert!(
            screen.contains(part),
            "no {part:?} on the screen:\n{screen}"
        );
    }
    quit_cleanly(&tmux, &status_file);
    assert!(Path::new(&dir.path().join("tides.txt")).is_file());
}

/// A TUI left open over a store does not hold it: while it runs, other
/// processes search and ask the same store and an ingest adds a document,
/// and the TUI's next question reads the store as that ingest left it.
#[test]
fn an_open_tui_shares_its_store_with_other_processes() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (docs, store) = (dir.path().join("docs"), dir.path().join("store"));
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("tides.txt"), DOC).unwrap();
    let folio = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_folio"))
            .args(args)
            .output()
            .expect("running folio");
        assert!(
            out.status.success(),
            "folio {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let (store_arg, docs_arg) = (store.display().to_string(), docs.display().to_string());
    folio(&["ingest", "--json", "--store", &store_arg, &docs_arg]);
    let status_file = dir.path().join("exit-status");
    let tmux = start_tui(
        "share",
        &["--corpus", &store_arg, "--model", "smollm2-135m"],
        &status_file,
    );
    tmux.wait_for(Duration::from_secs(300), "the UI, loaded", |s| {
        s.contains("ready: type a question")
    });

    let found = folio(&["search", "--json", "--store", &store_arg, "salt merchants"]);
    let report: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    assert!(report["hits"][0]["text"].as_str().unwrap().contains("salt"));
    folio(&[
        "ask",
        "Who signed the Ordinance of Tides?",
        "--corpus",
        &store_arg,
        "--strategy",
        "rag",
        "--model",
        "smollm2-135m",
        "--max-tokens",
        "8",
        "--json",
    ]);
    std::fs::write(
        docs.join("keeper.txt"),
        "The lighthouse of Vellmouth is kept by Ansel Brook, who lights it at dusk.\n",
    )
    .unwrap();
    folio(&["ingest", "--json", "--store", &store_arg, &docs_arg]);

    ask(&tmux, "Who keeps the lighthouse of Vellmouth?");
    let screen = tmux.wait_for(
        Duration::from_secs(600),
        "the answer over the new store",
        |s| {
            s.contains("keeper.txt")
                && s.contains("│budget      latency")
                && s.contains("ready  · F1 help")
        },
    );
    eprintln!("the screen:\n{screen}");
    quit_cleanly(&tmux, &status_file);
}

/// Sends the quit key and checks that folio exits with status 0 and leaves
/// the alternate screen.
fn quit_cleanly(tmux: &Tmux, status_file: &Path) {
    tmux.run(&["send-keys", "-t", "tui", "C-q"]);
    let start = Instant::now();
    let status = loop {
        match std::fs::read_to_string(status_file) {
            Ok(s) if s.ends_with('\n') => break s.trim().to_string(),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "folio tui did not quit; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        status,
        "0",
        "folio tui did not exit with status 0; the terminal after:\n{}",
        tmux.screen()
    );
    // The alternate screen was left: the panes are gone from the terminal.
    let after = tmux.screen();
    assert!(
        !after.contains("┌ corpus"),
        "the UI is still on the screen:\n{after}"
    );
}

/// Starts `folio tui ARGS` in a private tmux session named `tui`; the shell
/// writes folio's exit status to `status_file` when it ends.
fn start_tui(name: &str, args: &[&str], status_file: &Path) -> Tmux {
    let tmux = Tmux {
        socket: format!("folio-{name}-{}", std::process::id()),
    };
    let mut command = String::new();
    if let Ok(home) = std::env::var("FOLIO_HOME") {
        command += &format!("FOLIO_HOME={} ", shell_quote(&home));
    }
    // The shell records folio's exit status (tmux's own pane status is not
    // always filled in when the pane closes).
    command += &shell_quote(env!("CARGO_BIN_EXE_folio"));
    command += " tui";
    for a in args {
        command += " ";
        command += &shell_quote(a);
    }
    command += &format!(
        "; echo $? > {}",
        shell_quote(&status_file.display().to_string())
    );
    let o = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "160",
        "-y",
        "48",
        &command,
        ";",
        "set-option",
        "-t",
        "tui",
        "remain-on-exit",
        "on",
    ]);
    assert!(
        o.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    tmux
}

/// Types `question` literally, then Enter.
fn ask(tmux: &Tmux, question: &str) {
    let o = tmux.run(&["send-keys", "-t", "tui", "-l", question]);
    assert!(o.status.success());
    tmux.run(&["send-keys", "-t", "tui", "Enter"]);
}

/// A corpus with a broken PDF beside a good file: the TUI says the PDF was
/// skipped, nothing of the parser's panic (no backtrace, no "panicked")
/// reaches the screen, and Ctrl-Q still quits cleanly.
#[test]
fn a_broken_pdf_leaves_the_tui_clean_and_quittable() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("tides.txt"), DOC).unwrap();
    // A PDF header, an object whose stream length lies, no xref: the
    // kind of file that makes PDF parsers panic.
    std::fs::write(
        docs.join("broken.pdf"),
        b"%PDF-1.5\n1 0 obj\n<< /Length 999999 >>\nstream\nBT /F1 12 Tf (x) Tj ET\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    )
    .unwrap();
    let status_file = dir.path().join("exit-status");
    let tmux = start_tui(
        "pdf",
        &[
            "--corpus",
            &docs.display().to_string(),
            "--model",
            "smollm2-135m",
        ],
        &status_file,
    );
    let screen = tmux.wait_for(Duration::from_secs(300), "the UI, loaded", |s| {
        s.contains("ready: type a question")
    });
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "thread '"] {
        assert!(!screen.contains(bad), "{bad:?} on the screen:\n{screen}");
    }
    assert!(screen.contains("tides.txt"), "{screen}");
    assert!(
        screen.contains("skipped") && screen.contains("a broken PDF"),
        "the skipped file and why:\n{screen}"
    );
    quit_cleanly(&tmux, &status_file);
}
