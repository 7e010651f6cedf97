//! Standard output for every subcommand.

use std::io::Write;

use anyhow::Context;

/// Writes `text` to stdout. A reader that went away (`dynalert lint conf.d | head`) ends the
/// output quietly and the command keeps its exit code: `println!` panics there, with a
/// backtrace where `RUST_BACKTRACE` is set.
pub fn write(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to stdout"),
    }
}
