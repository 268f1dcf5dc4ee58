//! Where the library crates' warnings and notices go: `log` records from
//! folio's crates (nothing below `app` prints) are written to stderr on
//! the command line, and sent to the status bar while the TUI owns the
//! terminal (a line on stderr would draw over it).

use std::io::IsTerminal;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Where notices go instead of stderr while the TUI draws.
type Sink = Box<dyn Fn(String) + Send>;

static DIVERTED: Mutex<Option<Sink>> = Mutex::new(None);

/// The logger: folio's own crates, warnings and notices.
struct Notices;

impl Log for Notices {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.target().starts_with("folio") && metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        if let Some(sink) = DIVERTED.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            sink(text);
            return;
        }
        match record.level() {
            Level::Error | Level::Warn => eprintln!("folio: warning: {text}"),
            // Notices of progress are for a person watching, not for logs.
            _ if std::io::stderr().is_terminal() => eprintln!("folio: {text}"),
            _ => {}
        }
    }

    fn flush(&self) {}
}

static LOGGER: Notices = Notices;

/// Installs the logger (once, at start-up).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Sends notices to `sink` until the returned guard is dropped.
pub fn divert(sink: impl Fn(String) + Send + 'static) -> Diverted {
    *DIVERTED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(sink));
    Diverted
}

/// While alive, notices go to the sink given to [`divert`].
pub struct Diverted;

impl Drop for Diverted {
    fn drop(&mut self) {
        *DIVERTED.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
