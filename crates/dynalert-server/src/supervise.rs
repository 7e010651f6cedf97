//! What runs while serving, watched together: the HTTP server and the reload task. A reload
//! task that panics (a directory reader that panicked on its thread counts: it is lost), or
//! ends while nobody asked it to, ends `serve` with an error (and the process with a non-zero
//! exit), so a supervisor restarts it; before, the server kept
//! answering `/ready` 200 with thresholds that no edit or write would ever change again. A
//! watchdog logs when the loop stalls and when it recovers (`/ready` and `/metrics` report it
//! by themselves).

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tracing::{error, info, warn};

use crate::error::ServeError;
use crate::state::AppState;

/// How often the watchdog looks at the heartbeat (its only effect is a log line).
const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);

/// How long the reload task may take to stop once the server has (a stalled one never does;
/// it is then aborted, so SIGTERM still ends the process).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The task a [`ServeError::TaskEnded`] names.
pub(crate) const RELOAD_TASK: &str = "reload";

/// Runs `server` until it ends, watching `reloader`. `stopping` turns true once shutdown was
/// asked for (the reload task then ends as it should).
pub(crate) async fn watch_tasks<F>(
    server: F,
    mut reloader: JoinHandle<()>,
    stopping: watch::Receiver<bool>,
    state: Arc<AppState>,
) -> Result<(), ServeError>
where
    F: IntoFuture<Output = std::io::Result<()>>,
    F::IntoFuture: Future + Send,
{
    let server = server.into_future();
    tokio::pin!(server);
    let mut watchdog = tokio::time::interval(WATCHDOG_PERIOD);
    let mut stalled = false;
    loop {
        tokio::select! {
            served = &mut server => {
                // The shutdown signal (or the sender dropped with a failed server) stops the
                // reload task; a panic on its way out is still a failure.
                match tokio::time::timeout(STOP_GRACE, &mut reloader).await {
                    Ok(Err(e)) if e.is_panic() => return Err(task_ended(RELOAD_TASK, Err(e))),
                    Ok(_) => {}
                    Err(_) => {
                        warn!("the reload task did not stop within {STOP_GRACE:?}; abandoning it");
                        reloader.abort();
                    }
                }
                return served.map_err(ServeError::Http);
            }
            ended = &mut reloader => {
                if *stopping.borrow() && ended.is_ok() {
                    return server.await.map_err(ServeError::Http);
                }
                return Err(task_ended(RELOAD_TASK, ended));
            }
            _ = watchdog.tick() => match (state.heartbeat.stalled(), stalled) {
                (Some(stall), false) => {
                    error!("{stall}");
                    stalled = true;
                }
                (None, true) => {
                    info!("the reload loop completes cycles again");
                    stalled = false;
                }
                _ => {}
            },
        }
    }
}

/// Logs why a task ended and turns it into the error `serve` returns.
fn task_ended(task: &'static str, ended: Result<(), JoinError>) -> ServeError {
    let reason = match ended {
        Ok(()) => "stopped unexpectedly".to_string(),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".into());
            format!("panicked: {message}")
        }
        Err(e) => format!("was cancelled: {e}"),
    };
    error!(
        task,
        "the {task} task {reason}; exiting so that the process is restarted instead of serving \
         thresholds that no longer change"
    );
    ServeError::TaskEnded { task, reason }
}
