//! In-process exporter benchmark: cold load + first render, and one changed tenant file.
//!
//! `cargo bench -p dynalert-exposition --bench exporter -- DIR` where DIR comes from
//! `cargo xtask gen-tenants 5000 --out DIR`. Prints medians over several runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dynalert_exposition::Exposition;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir: PathBuf = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .expect(
            "usage: cargo bench --bench exporter -- DIR (make one with cargo xtask gen-tenants)",
        );
    if std::env::var_os("MEMORY").is_some() {
        memory(&dir);
        return;
    }
    if std::env::var_os("WRITES").is_some() {
        writes(&dir);
        return;
    }
    if std::env::var_os("RENDER").is_some() {
        first_render(&dir);
        return;
    }
    if std::env::var_os("PHASES").is_some() {
        phases(&dir);
    }
    let runs = 31;
    let mut cold = Vec::new();
    let mut parse_only = Vec::new();
    let mut body_len = (0, 0);
    for _ in 0..runs {
        let start = Instant::now();
        let mut loader = Loader::new(&dir);
        loader.reload().expect("tree loads");
        parse_only.push(start.elapsed());
        let mut exposition = Exposition::new();
        exposition.update(&loader.model(), &loader.take_diff(), chrono::Utc::now());
        let snap = exposition.snapshot();
        cold.push(start.elapsed());
        body_len = (
            snap.gzip_body(b"").iter().map(|b| b.len()).sum::<usize>(),
            snap.plain_body(b"").iter().map(|b| b.len()).sum::<usize>(),
        );
    }
    let mut loader = Loader::new(&dir);
    loader.reload().unwrap();
    let mut exposition = Exposition::new();
    exposition.update(&loader.model(), &loader.take_diff(), chrono::Utc::now());
    let victim = dir.join("tenant-00042.yaml");
    let original = std::fs::read_to_string(&victim).expect("tenant-00042.yaml exists");
    let mut incremental = Vec::new();
    let mut reload_part = Vec::new();
    let mut update_part = Vec::new();
    for i in 0..runs {
        std::fs::write(
            &victim,
            original
                .replacen("tenants:", &format!("# edit {i}\ntenants:"), 1)
                .replace(": 8", ": 9"),
        )
        .unwrap();
        // As `serve` does after a file event: only the reported path is read again.
        let start = Instant::now();
        loader.reload_paths(std::slice::from_ref(&victim)).unwrap();
        reload_part.push(start.elapsed());
        let before_update = Instant::now();
        let stats = exposition.update(&loader.model(), &loader.take_diff(), chrono::Utc::now());
        update_part.push(before_update.elapsed());
        let _ = exposition.snapshot().gzip_body(b"");
        incremental.push(start.elapsed());
        assert!(stats.shards_rebuilt <= 1, "{stats:?}");
    }
    std::fs::write(&victim, original).unwrap();
    let model = loader.model();
    println!(
        "tenants: {}, threshold series: {}",
        model.tenants.len(),
        exposition.snapshot().threshold_series()
    );
    println!(
        "body: {} bytes plain, {} bytes gzip",
        body_len.1, body_len.0
    );
    println!(
        "cold load (parse + compile): median {:?}",
        median(parse_only)
    );
    println!("cold load + first render:    median {:?}", median(cold));
    println!(
        "one changed file re-served:  median {:?}",
        median(incremental)
    );
    println!(
        "  of which reload (read, parse, compile): median {:?}",
        median(reload_part)
    );
    println!(
        "  of which rendering update:              median {:?}",
        median(update_part)
    );
}

#[allow(dead_code)]
fn phases(dir: &std::path::Path) {
    let mut loader = Loader::new(dir);
    loader.reload().unwrap();
    let model = loader.model();
    let now = chrono::Utc::now();
    let t = Instant::now();
    let resolved = model.resolve_at(now);
    println!("resolve all: {:?}", t.elapsed());
    let t = Instant::now();
    let mut texts: [String; 7] = Default::default();
    for r in &resolved {
        dynalert_exposition::text::render_tenant(r, &mut texts);
    }
    println!("render text: {:?}", t.elapsed());
    let t = Instant::now();
    for text in &texts {
        let _ = dynalert_exposition::gzip::Piece::compress(text.as_bytes());
    }
    println!("compress: {:?}", t.elapsed());
}

/// The first render alone (a loaded model to a servable gzip body), to tell rendering
/// changes apart from the parser's noise.
fn first_render(dir: &std::path::Path) {
    let mut loader = Loader::new(dir);
    loader.reload().expect("tree loads");
    let model = loader.model();
    let mut times = Vec::new();
    for _ in 0..31 {
        let start = Instant::now();
        let mut exposition = Exposition::new();
        exposition.update(
            &model,
            &dynalert_config::ModelDiff::initial(&model),
            chrono::Utc::now(),
        );
        let _ = exposition.snapshot().gzip_body(b"");
        times.push(start.elapsed());
    }
    println!("first render: median {:?}", median(times));
}

fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[allow(dead_code)]
fn memory(dir: &std::path::Path) {
    println!("start: {}", rss());
    let mut loader = Loader::new(dir);
    loader.reload().unwrap();
    println!("after load: {}", rss());
    let mut exposition = Exposition::new();
    exposition.update(&loader.model(), &loader.take_diff(), chrono::Utc::now());
    println!("after render: {}", rss());
}

/// What an API write costs the server after the store: the changed document applied (parse,
/// compile) and the rendering brought up to date, one tenant after another.
#[allow(dead_code)]
fn writes(dir: &std::path::Path) {
    let mut loader = Loader::new(dir);
    loader.reload().unwrap();
    let mut exposition = Exposition::new();
    exposition.update(&loader.model(), &loader.take_diff(), chrono::Utc::now());
    let names: Vec<String> = loader.model().tenants.keys().cloned().collect();
    let (mut apply, mut update) = (Vec::new(), Vec::new());
    for (i, name) in names.iter().cycle().take(3000).enumerate() {
        let path = format!("{name}.yaml");
        let content = std::fs::read_to_string(dir.join(&path)).expect("one file per tenant");
        let content = content
            .replacen("tenants:", &format!("# write {i}\ntenants:"), 1)
            .replace(": 8", &format!(": {}", 8 + i % 7));
        let start = Instant::now();
        loader.apply_documents(path, content);
        apply.push(start.elapsed());
        let start = Instant::now();
        exposition.update(&loader.model(), &loader.take_diff(), chrono::Utc::now());
        update.push(start.elapsed());
    }
    println!(
        "per write: apply_documents median {:?}, rendering update median {:?}",
        median(apply),
        median(update)
    );
}

/// A conf.d tree read as `serve` reads it: the store's tree reader feeding a document set,
/// with the diff of the last change kept for the exposition.
struct Loader {
    reader: dynalert_store::TreeReader,
    set: dynalert_config::DocumentSet,
    diff: dynalert_config::ModelDiff,
}

impl Loader {
    fn new(root: &std::path::Path) -> Self {
        Loader {
            reader: dynalert_store::TreeReader::new(root),
            set: dynalert_config::DocumentSet::new(),
            diff: Default::default(),
        }
    }

    fn reload(&mut self) -> std::io::Result<()> {
        let tree = self.reader.read_all()?;
        self.apply(tree);
        Ok(())
    }

    fn reload_paths(&mut self, paths: &[std::path::PathBuf]) -> std::io::Result<()> {
        let tree = self.reader.read_paths(paths)?;
        self.apply(tree);
        Ok(())
    }

    fn apply(&mut self, tree: dynalert_store::TreeDelta) {
        let upserts = tree
            .reads
            .into_iter()
            .map(|r| dynalert_config::Upsert::text(r.path, r.content.expect("readable")))
            .collect();
        self.apply_delta(dynalert_config::Delta {
            upserts,
            removed: tree.removed,
        });
    }

    fn apply_documents(&mut self, path: String, content: String) {
        self.apply_delta(dynalert_config::Delta {
            upserts: vec![dynalert_config::Upsert::text(path, content)],
            removed: Vec::new(),
        });
    }

    fn apply_delta(&mut self, delta: dynalert_config::Delta) {
        let diff = self.set.apply(delta).diff;
        if !diff.is_empty() {
            self.diff = diff;
        }
    }

    fn model(&self) -> std::sync::Arc<dynalert_config::Model> {
        self.set.model()
    }

    /// The diff since the exposition last took one.
    fn take_diff(&mut self) -> dynalert_config::ModelDiff {
        std::mem::take(&mut self.diff)
    }
}
