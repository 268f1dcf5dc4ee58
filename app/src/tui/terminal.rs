//! The terminal's safety: raw mode and the alternate screen are entered by
//! a guard whose `Drop` leaves them, and a panic hook restores the terminal
//! before the panic is printed, so an error or a crash never leaves the
//! user's shell in raw mode. A panic on the model thread is kept for the
//! UI to show instead (the UI goes on, so the terminal must stay as it is).

use std::io::{self, Stdout};
use std::sync::{Mutex, Once};

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// Name of the model thread, whose panics the UI reports itself.
pub const WORKER_THREAD: &str = "folio-model";

/// The last panic message of the model thread.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// What the model thread's last panic said.
pub fn last_panic() -> String {
    LAST_PANIC.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Leaves raw mode and the alternate screen and shows the cursor; safe to
/// call more than once and when they were never entered.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

/// Restores the terminal before any panic of the UI thread is printed.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if folio_corpora::contain::active() {
                return; // caught and reported as an error by the caller
            }
            if std::thread::current().name() == Some(WORKER_THREAD) {
                if let Ok(mut last) = LAST_PANIC.lock() {
                    *last = info.to_string();
                }
                return;
            }
            restore();
            previous(info);
        }));
    });
}

/// The terminal in raw mode on the alternate screen, until dropped.
pub struct Guard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Guard {
    /// Enters raw mode and the alternate screen (restoring the terminal if
    /// that fails half-way).
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        let entered = (|| {
            enable_raw_mode()?;
            execute!(io::stdout(), EnterAlternateScreen)?;
            let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
            terminal.clear()?;
            Ok(terminal)
        })();
        match entered {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}
