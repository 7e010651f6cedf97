//! Where `lint` and `show` read thresholds: `--config-dir DIR` or `--store URL`, one
//! convention for every subcommand that reads them (`lint` also takes the directory as a
//! positional shorthand).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use dynalert_config::{Delta, DocumentSet, Model, Upsert};
use dynalert_store::{Store, StoreSpec};

#[derive(clap::Args)]
pub struct Source {
    /// The conf.d directory.
    #[arg(long, conflicts_with = "store")]
    pub config_dir: Option<PathBuf>,
    /// A store instead of a directory: `sqlite:FILE` or `postgres://…`.
    #[arg(long)]
    pub store: Option<StoreSpec>,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
    /// Files of the directory larger than this are reported, not read (e.g. 4MiB, 512KiB).
    #[arg(long, default_value = "4MiB", value_parser = super::parse_size)]
    pub max_file_size: u64,
}

impl Source {
    /// The source given, with `positional` as the directory when no flag names one.
    pub fn or_dir(self, positional: Option<PathBuf>) -> anyhow::Result<Loaded> {
        let documents = dynalert_config::DocumentSet::new()
            .with_known_keys(dynalert_rules::declared_keys())
            .with_limits(self.limits.limits());
        match (self.config_dir, self.store, positional) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                bail!("give the thresholds once: a directory or --config-dir or --store")
            }
            (Some(dir), None, None) | (None, None, Some(dir)) => {
                Loaded::dir(&dir, self.max_file_size, documents)
            }
            (None, Some(spec), None) => Loaded::store(spec, documents),
            (None, None, None) => {
                bail!("say where the thresholds are: --config-dir DIR or --store URL")
            }
            (Some(_), Some(_), None) => unreachable!("clap refuses both flags"),
        }
    }
}

/// A loaded model and how to name its files to the user.
pub struct Loaded {
    pub model: Arc<Model>,
    /// The directory files are relative to, when they are files.
    pub dir: Option<PathBuf>,
    /// What was read, for messages.
    pub described: String,
}

impl Loaded {
    fn dir(dir: &Path, max_file_size: u64, documents: DocumentSet) -> anyhow::Result<Loaded> {
        let model = dynalert_server::load_dir(dir, max_file_size, documents)?;
        Ok(Loaded {
            model,
            dir: Some(dir.to_path_buf()),
            described: dir.display().to_string(),
        })
    }

    fn store(spec: StoreSpec, mut documents: DocumentSet) -> anyhow::Result<Loaded> {
        if matches!(spec, StoreSpec::Dir(_)) {
            bail!("--store reads a database; give a directory with --config-dir");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let docs = runtime.block_on(async {
            let store = Store::open(&spec).await?;
            store.list().await
        });
        let docs = docs.with_context(|| format!("cannot read store {spec}"))?;
        let upserts = docs
            .into_iter()
            .map(|d| Upsert::text(d.path, d.content))
            .collect();
        documents.apply(Delta {
            upserts,
            removed: Vec::new(),
        });
        let model = documents.model();
        Ok(Loaded {
            model,
            dir: None,
            described: spec.to_string(),
        })
    }

    /// A file path as the user can open it: relative to where they ran the command.
    pub fn shown_path(&self, file: &str) -> String {
        match &self.dir {
            Some(dir) => dir.join(file).display().to_string(),
            None => file.to_string(),
        }
    }
}
