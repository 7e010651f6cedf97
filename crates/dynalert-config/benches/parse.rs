//! Parse throughput of one tenant file: `cargo bench -p dynalert-config --bench parse -- FILE`.

use std::time::Instant;

fn main() {
    let file = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: -- FILE");
    let text = std::fs::read_to_string(&file).unwrap();
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        let _ = dynalert_config::parse_file("t.yaml", &text);
    }
    let full = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        for e in saphyr_parser::Parser::new_from_str(&text) {
            let _ = e.unwrap();
        }
    }
    let events = t.elapsed() / n;
    println!(
        "{} bytes: events {events:?}, parse_file {full:?}",
        text.len()
    );
}
