//! Gives freed heap pages back to the operating system after a reload.
//!
//! A reload parses thousands of files and renders tens of megabytes of text on several
//! threads, then frees almost all of it. glibc keeps such memory in per-thread arenas, so the
//! process would go on showing it as resident although nothing uses it; `malloc_trim`
//! returns those pages. Elsewhere (musl, other systems) this does nothing.
//!
//! Trimming walks the allocator's free lists, which costs as much as a small reload: under a
//! stream of API writes (hundreds of one-document reloads a second) it runs at most every
//! [`MIN_TRIM_INTERVAL`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

const MIN_TRIM_INTERVAL: Duration = Duration::from_secs(2);

static LAST_TRIM: Mutex<Option<Instant>> = Mutex::new(None);

/// Trims unless a trim ran less than [`MIN_TRIM_INTERVAL`] ago.
pub fn release_free_pages() {
    let mut last = LAST_TRIM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_some_and(|at| at.elapsed() < MIN_TRIM_INTERVAL) {
        return;
    }
    *last = Some(Instant::now());
    drop(last);
    trim();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim only inspects and shrinks the allocator's own free lists; it is
    // thread-safe and has no preconditions.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
