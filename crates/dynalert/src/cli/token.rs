//! `dynalert token hash`: the SHA-256 an `--auth-file` lists for a token, so the token itself
//! is never written to disk.

use std::io::Read;
use std::process::ExitCode;

use anyhow::bail;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Read a token on standard input (surrounding whitespace ignored) and print its hash.
    Hash,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Hash => {
            let mut token = String::new();
            std::io::stdin().read_to_string(&mut token)?;
            let token = token.trim();
            if token.is_empty() {
                bail!("no token on standard input");
            }
            super::stdout::write(&format!("{}\n", dynalert_server::hash_token(token)))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
