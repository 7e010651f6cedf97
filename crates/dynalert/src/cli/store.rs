//! `dynalert store export DIR` / `dynalert store import DIR`: thresholds between any store
//! and a conf.d directory, file for file, so a tree moved through any backend comes back
//! byte-identical.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use dynalert_store::{Store, StoreSpec};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write every document of the store as files under DIR.
    Export {
        dir: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Write every file of the conf.d tree DIR into the store (one transaction on a
    /// database). The tree is linted first; a tree with errors is refused.
    Import {
        dir: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        /// Also remove documents of the store that are not in DIR.
        #[arg(long)]
        prune: bool,
        /// Import even if the linter finds errors (they are served as the loader always
        /// serves errors: the files are skipped until fixed).
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args)]
struct StoreArg {
    /// sqlite:PATH, postgres://USER@HOST:PORT/DB or dir:PATH.
    #[arg(long, env = "DYNALERT_STORE", default_value = "sqlite:dynalert.db")]
    store: StoreSpec,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.action {
            Action::Export { dir, store } => export(dir, store.store).await,
            Action::Import {
                dir,
                store,
                prune,
                force,
            } => import(dir, store.store, prune, force).await,
        }
    })
}

async fn open(spec: &StoreSpec) -> anyhow::Result<Store> {
    Store::open(spec)
        .await
        .with_context(|| format!("cannot open store {spec}"))
}

async fn export(dir: PathBuf, spec: StoreSpec) -> anyhow::Result<ExitCode> {
    let store = open(&spec).await?;
    let docs = store.list().await?;
    let written = dynalert_store::write_tree(&dir, &docs)
        .with_context(|| format!("cannot write {}", dir.display()))?;
    eprintln!(
        "exported {written} documents from {spec} to {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn import(
    dir: PathBuf,
    spec: StoreSpec,
    prune: bool,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let documents =
        dynalert_config::DocumentSet::new().with_known_keys(dynalert_rules::declared_keys());
    let model = dynalert_server::load_dir(&dir, dynalert_store::DEFAULT_MAX_FILE_SIZE, documents)?;
    let errors: Vec<_> = model.diagnostics.iter().filter(|d| d.is_error()).collect();
    for d in &errors {
        // The path as the user can open it, as `dynalert lint DIR` shows it.
        let shown = dynalert_config::Diagnostic {
            file: dir.join(&d.file).display().to_string(),
            ..(*d).clone()
        };
        eprintln!("{shown}");
    }
    if !errors.is_empty() && !force {
        bail!(
            "{} has {} error(s); nothing imported (fix them, or pass --force)",
            dir.display(),
            errors.len()
        );
    }
    let docs = dynalert_store::read_tree(&dir)?;
    if let StoreSpec::Dir(target) = &spec {
        // Like export, an import into a directory creates it.
        std::fs::create_dir_all(target)
            .with_context(|| format!("cannot create {}", target.display()))?;
    }
    let store = open(&spec).await?;
    let stats = store.import(&docs, prune, &import_actor()).await?;
    eprintln!(
        "imported {} into {spec}: {} written, {} unchanged, {} removed",
        dir.display(),
        stats.written,
        stats.unchanged,
        stats.removed
    );
    Ok(ExitCode::SUCCESS)
}

/// The audit actor of a CLI import: who ran it, as far as the environment says.
fn import_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("dynalert store import ({user})")
}
