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
    if !tmux_available() {
        assert!(
            std::env::var("FOLIO_REQUIRE_TMUX").as_deref() != Ok("1"),
            "tmux is missing and FOLIO_REQUIRE_TMUX=1"
        );
        eprintln!("skipped: tmux is not installed (CI installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tides.txt"), DOC).unwrap();
    let tmux = Tmux {
        socket: format!("folio-e2e-{}", std::process::id()),
    };
    let mut command = String::new();
    if let Ok(home) = std::env::var("FOLIO_HOME") {
        command += &format!("FOLIO_HOME={} ", shell_quote(&home));
    }
    // The shell records folio's exit status (tmux's own pane status is not
    // always filled in when the pane closes).
    let status_file = dir.path().join("exit-status");
    command += &format!(
        "{} tui --corpus {}; echo $? > {}",
        shell_quote(env!("CARGO_BIN_EXE_folio")),
        shell_quote(&dir.path().display().to_string()),
        shell_quote(&status_file.display().to_string())
    );
    let started = Instant::now();
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
    tmux.run(&["send-keys", "-t", "tui", "C-q"]);
    let start = Instant::now();
    let status = loop {
        match std::fs::read_to_string(&status_file) {
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
    assert!(Path::new(&dir.path().join("tides.txt")).is_file());
}

/// Types `question` literally, then Enter.
fn ask(tmux: &Tmux, question: &str) {
    let o = tmux.run(&["send-keys", "-t", "tui", "-l", question]);
    assert!(o.status.success());
    tmux.run(&["send-keys", "-t", "tui", "Enter"]);
}
