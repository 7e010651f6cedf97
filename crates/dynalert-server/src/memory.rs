//! Gives freed heap pages back to the operating system after a reload.
//!
//! A reload parses thousands of files and renders tens of megabytes of text on several
//! threads, then frees almost all of it. glibc keeps such memory in per-thread arenas, so the
//! process would go on showing it as resident although nothing uses it; `malloc_trim`
//! returns those pages. Elsewhere (musl, other systems) this does nothing.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_pages() {
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
pub fn release_free_pages() {}
