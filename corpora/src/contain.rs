//! Panics of code folio does not own (the PDF reader, the GGUF header
//! reader) turned into errors, quietly.
//!
//! `catch_unwind` stops the unwinding, but the process's panic hook has
//! already printed the message and backtrace by then: over a terminal UI
//! that garbles the screen, and on the command line it reads as a crash.
//! [`catch`] marks the thread while its closure runs; folio's panic hooks
//! ([`active`]) stay silent for such panics, which come back as errors.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Runs `work`; a panic inside it is returned as its message.
pub fn catch<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    DEPTH.with(|d| d.set(d.get() + 1));
    // The closure's state is dropped with the panic: nothing of it is used
    // after a failure, so unwind safety is not a concern here.
    let result = catch_unwind(AssertUnwindSafe(work));
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// Whether this thread is inside [`catch`] (panic hooks stay quiet then).
pub fn active() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_mark_is_cleared() {
        let hook_saw_active = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = hook_saw_active.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |_| {
            seen.store(active(), std::sync::atomic::Ordering::SeqCst)
        }));
        let err = catch(|| -> u8 { panic!("broken input {}", 7) }).unwrap_err();
        std::panic::set_hook(previous);
        assert_eq!(err, "broken input 7");
        assert!(hook_saw_active.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!active());
        assert_eq!(catch(|| 5).unwrap(), 5);
    }
}
