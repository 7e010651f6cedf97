//! The one error type of the server crate: what can stop `dynalert serve` from starting or
//! keep it from serving.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The conf.d root is missing, not a directory or not readable. Checked before binding so
    /// a misconfigured deployment fails at once instead of serving nothing.
    // Causes are part of each message, not a `source`: an error chain would print them twice.
    #[error("{error}")]
    ConfigDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot open store {store}: {error}")]
    Store {
        store: String,
        error: dynalert_store::StoreError,
    },
    #[error("cannot import {dir}: {message}")]
    Import { dir: PathBuf, message: String },
    #[error("{0}")]
    Auth(String),
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
}
