//! The process' memory as the kernel counts it: the peak resident set
//! (`VmHWM`) every answer and benchmark reports, and its reset between
//! answers. The one place folio reads it (the peak heap is
//! [`crate::peak_alloc`]'s).

/// Peak resident bytes of this process so far (Linux `VmHWM`), 0 when unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resets the kernel's peak-RSS mark so the next measurement's peak is its
/// own (Linux `clear_refs` 5); where that is refused the peak stays the
/// process' so far.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_peak_covers_what_was_touched() {
        if !cfg!(target_os = "linux") {
            return; // no /proc to read
        }
        assert!(super::peak_rss_bytes() > 0, "VmHWM read");
        let block = vec![1u8; 64 << 20];
        let touched: u64 = block.iter().step_by(4096).map(|b| *b as u64).sum();
        assert!(touched > 0);
        assert!(super::peak_rss_bytes() >= 64 << 20, "64 MiB touched");
    }
}
