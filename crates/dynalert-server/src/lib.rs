//! `dynalert serve`: serves threshold documents as Prometheus metrics, keeps them current, and
//! offers the management API over them.
//!
//! [`run`] opens the store, binds the listener and serves until SIGTERM or Ctrl-C;
//! [`serve_on`] does the same on a listener the caller bound, until a future the caller
//! gives resolves (tests bind port 0). The first load runs while the listener already
//! answers: `/health` is 200 at once, `/ready` and `/metrics` are 503 until it is done.
//!
//! Modules: [`options`] (settings), `state` (what the reload loop and handlers share),
//! `source` (a conf.d directory or a database store, as deltas of documents), `watch` (file
//! events), `reload` (the one loop: source → document set → model + diff → state), `health`
//! (the loop's heartbeat: stall detection), `supervise` (a panicked reload task ends `serve`),
//! `http` (`/metrics`, `/health`, `/ready`), [`api`] (the management API), `self_metrics`
//! (`dynalert_*` and `process_*` series), [`error`](mod@error).

mod api;
mod checked;
pub mod error;
mod health;
mod http;
mod memory;
pub mod options;
mod reload;
mod self_metrics;
mod source;
mod state;
mod supervise;
#[cfg(test)]
mod tests;
mod watch;

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use dynalert_store::{Store, StoreSpec};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use api::auth::hash_token;
pub use api::openapi;
pub use error::ServeError;
pub use options::ServeOptions;
pub use source::load_dir;

/// Serves `opts.store` on `opts.listen` until SIGTERM or Ctrl-C, then shuts down
/// gracefully. Fails before binding if an option is out of bounds, the store cannot be opened
/// or the auth file read; fails while serving if the reload task panics.
pub async fn run(opts: ServeOptions) -> Result<(), ServeError> {
    let prepared = prepare(&opts).await?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|error| ServeError::Bind {
            addr: opts.listen,
            error,
        })?;
    serve_prepared(listener, opts, prepared, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` resolves, then stops accepting,
/// lets in-flight requests finish, stops reloading and returns. Fails at once if an option is
/// out of bounds, the store cannot be opened or the auth file read; fails while serving if the
/// reload task panics.
pub async fn serve_on(
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let prepared = prepare(&opts).await?;
    serve_prepared(listener, opts, prepared, shutdown).await
}

/// What must work before anything is served.
struct Prepared {
    store: Arc<Store>,
    auth: api::Auth,
}

async fn prepare(opts: &ServeOptions) -> Result<Prepared, ServeError> {
    opts.validate()?;
    if let StoreSpec::Dir(path) = &opts.store {
        dynalert_store::list_files(path).map_err(|error| ServeError::ConfigDir {
            path: path.clone(),
            error,
        })?;
    }
    let store = Store::open_with_limit(&opts.store, opts.max_file_size)
        .await
        .map_err(|error| ServeError::Store {
            store: opts.store.to_string(),
            error,
        })?;
    if let Some(dir) = &opts.import {
        import_if_empty(&store, dir).await?;
    }
    let auth = match &opts.auth_file {
        Some(path) => api::Auth::load(path).map_err(ServeError::Auth)?,
        None => {
            warn!("no --auth-file: the management API is read-only");
            api::Auth::none()
        }
    };
    Ok(Prepared {
        store: Arc::new(store),
        auth,
    })
}

/// `--import DIR`: seeds a database store that holds no document yet; a store that has
/// some is left alone (the flag is safe to keep in a deployment).
async fn import_if_empty(store: &Store, dir: &std::path::Path) -> Result<(), ServeError> {
    let fail = |message: String| ServeError::Import {
        dir: dir.to_path_buf(),
        message,
    };
    if matches!(store, Store::Dir(_)) {
        return Err(fail(
            "--import seeds a database store; this store is a directory".into(),
        ));
    }
    if !store
        .list()
        .await
        .map_err(|e| fail(e.to_string()))?
        .is_empty()
    {
        info!(dir = %dir.display(), "store already holds documents; --import skipped");
        return Ok(());
    }
    let docs = dynalert_store::read_tree(dir).map_err(|e| fail(e.to_string()))?;
    let stats = store
        .import(&docs, false, "import")
        .await
        .map_err(|e| fail(e.to_string()))?;
    info!(dir = %dir.display(), documents = stats.written, "store seeded");
    Ok(())
}

async fn serve_prepared(
    listener: TcpListener,
    opts: ServeOptions,
    prepared: Prepared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let feed = reload::feed(prepared.store.clone(), &opts);
    serve_feed(listener, opts, prepared, feed, shutdown).await
}

/// Serves what `feed` reads (the store's own source, or a scripted one in tests).
async fn serve_feed<S: reload::DocumentSource>(
    listener: TcpListener,
    opts: ServeOptions,
    prepared: Prepared,
    feed: reload::Feed<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = Arc::new(state::AppState::with_stall_limit(
        opts.stall_limit(feed.period),
    ));
    let store = prepared.store;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = stop_tx.subscribe();
    let reloader = tokio::spawn(reload::run(state.clone(), feed, opts.clone(), stop_rx));
    if let Ok(addr) = listener.local_addr() {
        info!(listen = %addr, store = %opts.store, "serving");
    }
    let api = Arc::new(api::Api {
        state: state.clone(),
        store,
        auth: prepared.auth,
        parsed: Default::default(),
        max_series: opts.max_series,
    });
    // Without TCP_NODELAY a large /metrics response on a reused connection (Prometheus keeps
    // its scrape connections) waits ~40 ms for the peer's delayed ACK (Nagle).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    // On a server error the sender is dropped with the future, which stops the task too.
    let server = axum::serve(listener, http::router(api)).with_graceful_shutdown(async move {
        shutdown.await;
        info!("shutting down");
        let _ = stop_tx.send(true);
    });
    supervise::watch_tasks(server, reloader, stopping, state).await
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
