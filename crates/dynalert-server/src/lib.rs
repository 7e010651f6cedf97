//! `dynalert serve`: serves a conf.d tree as Prometheus metrics and keeps it current.
//!
//! [`run`] checks the tree, binds the listener and serves until SIGTERM or Ctrl-C;
//! [`serve_on`] does the same on a listener the caller bound, until a future the caller
//! gives resolves (tests bind port 0). The first load runs while the listener already
//! answers: `/health` is 200 at once, `/ready` and `/metrics` are 503 until it is done.
//!
//! Modules: [`options`] (settings), `state` (what the reload task and handlers share),
//! `watch` (file events), `reload` (the reload loop), `http` (routes), `self_metrics`
//! (`dynalert_*` and `process_*` series), [`error`](mod@error).

pub mod error;
mod http;
mod memory;
pub mod options;
mod reload;
mod self_metrics;
mod state;
mod watch;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

pub use error::ServeError;
pub use options::ServeOptions;

/// Serves `opts.config_dir` on `opts.listen` until SIGTERM or Ctrl-C, then shuts down
/// gracefully. Fails before binding if the directory cannot be read.
pub async fn run(opts: ServeOptions) -> Result<(), ServeError> {
    check_config_dir(&opts)?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    serve_on(listener, opts, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` resolves, then stops accepting,
/// lets in-flight requests finish, stops the file watcher and returns. Fails at once if the
/// directory cannot be read.
pub async fn serve_on(
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    check_config_dir(&opts)?;
    let state = Arc::new(state::AppState::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reloader = tokio::spawn(reload::run(state.clone(), opts.clone(), stop_rx));
    if let Ok(addr) = listener.local_addr() {
        info!(listen = %addr, config_dir = %opts.config_dir.display(), "serving");
    }
    let served = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            info!("shutting down");
            let _ = stop_tx.send(true);
        })
        .await;
    // On a server error the sender is dropped with the future, which stops the task too.
    if let Err(e) = reloader.await {
        error!("reload task failed: {e}");
    }
    served.map_err(ServeError::Http)
}

fn check_config_dir(opts: &ServeOptions) -> Result<(), ServeError> {
    dynalert_config::loader::list_files(&opts.config_dir)
        .map(|_| ())
        .map_err(|source| ServeError::ConfigDir {
            path: opts.config_dir.clone(),
            source,
        })
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what Kubernetes sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
