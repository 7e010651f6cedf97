//! Reading test counts from the closing lines of `cargo nextest run` and `cargo test`.

use std::ops::AddAssign;

/// Tests counted across one or more runner invocations.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    /// nextest's "skipped" and libtest's "ignored".
    pub skipped: u64,
}

impl Counts {
    pub fn executed(&self) -> u64 {
        self.passed + self.failed
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// Adds up the counts of every summary line in `lines`: nextest's
/// `Summary [ 1.2s] 12 tests run: 11 passed (1 slow), 1 failed, 2 skipped` and libtest's
/// `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …`
/// (one per test binary). `None` when there is no such line at all.
///
/// nextest replays a failed test's captured output, which holds that test binary's own
/// libtest `test result:` line; when a nextest summary is present, only it is counted, or a
/// failure would be counted twice.
pub fn parse(lines: &[String]) -> Option<Counts> {
    let cleaned: Vec<String> = lines.iter().map(|l| strip_ansi(l)).collect();
    let nextest = cleaned.iter().any(|l| l.trim().starts_with("Summary ["));
    let mut total = None::<Counts>;
    for line in &cleaned {
        let line = line.trim();
        let counts = if let Some(rest) = line.strip_prefix("Summary [") {
            rest.split_once(']').map(|(_, tail)| nextest_counts(tail))
        } else if !nextest && line.starts_with("test result:") {
            Some(libtest_counts(line))
        } else {
            None
        };
        if let Some(counts) = counts {
            *total.get_or_insert_with(Counts::default) += counts;
        }
    }
    total
}

fn nextest_counts(tail: &str) -> Counts {
    // "12 tests run: 11 passed (1 slow), 1 failed, 1 timed out, 2 skipped"
    let mut counts = Counts::default();
    let items = tail.split_once(':').map_or(tail, |(_, items)| items);
    for item in items.split(',') {
        let item = item.split('(').next().unwrap_or("").trim();
        let Some((number, word)) = item.split_once(' ') else {
            continue;
        };
        let Ok(n) = number.parse::<u64>() else {
            continue;
        };
        match word.trim() {
            "passed" => counts.passed += n,
            "failed" | "timed out" => counts.failed += n,
            "skipped" => counts.skipped += n,
            _ => {}
        }
    }
    counts
}

fn libtest_counts(line: &str) -> Counts {
    let mut counts = Counts::default();
    for item in line.split(';') {
        let words: Vec<&str> = item.split_whitespace().collect();
        // "test result: ok. 3 passed" → the last two words; "0 failed" → both words.
        let [.., number, word] = words.as_slice() else {
            continue;
        };
        let Ok(n) = number.parse::<u64>() else {
            continue;
        };
        match *word {
            "passed" => counts.passed += n,
            "failed" => counts.failed += n,
            "ignored" => counts.skipped += n,
            _ => {}
        }
    }
    counts
}

/// Removes terminal colour codes (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn reads_nextest_summary_with_annotations() {
        let out = lines(
            "        PASS [   0.004s] xtask summary::tests::x\n\
             \x1b[32m     Summary\x1b[0m [   1.234s] 14 tests run: 11 passed (1 slow, 1 leaky), 2 failed, 1 timed out, 3 skipped",
        );
        let counts = parse(&out).unwrap();
        assert_eq!(
            counts,
            Counts {
                passed: 11,
                failed: 3,
                skipped: 3
            }
        );
    }

    #[test]
    fn reads_single_test_nextest_summary() {
        let out = lines("     Summary [   0.010s] 1 test run: 1 passed, 0 skipped");
        assert_eq!(parse(&out).unwrap().passed, 1);
    }

    #[test]
    fn sums_libtest_results_over_binaries() {
        let out = lines(
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
             running 0 tests\n\
             test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.20s",
        );
        assert_eq!(
            parse(&out).unwrap(),
            Counts {
                passed: 5,
                failed: 1,
                skipped: 1
            }
        );
    }

    #[test]
    fn a_failure_replayed_by_nextest_counts_once() {
        let text = "        FAIL [   2.393s] (1/6) crate::api some_test
    test some_test ... FAILED
    test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 2.28s
     Summary [   2.411s] 6 tests run: 5 passed, 1 failed, 0 skipped";
        let counts = parse(&lines(text)).unwrap();
        assert_eq!((counts.passed, counts.failed), (5, 1));
    }

    #[test]
    fn no_summary_line_is_none() {
        assert_eq!(parse(&lines("error: could not compile `x`")), None);
    }
}
