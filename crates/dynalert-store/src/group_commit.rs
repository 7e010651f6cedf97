//! Group commit for conditional writes on a database.
//!
//! An optimistic writer (a PATCH) decides its new content outside any lock and then needs one
//! thing from the store: write it if the document still has the revision it read. Such writes
//! queue here, and a worker takes everything queued so far and applies it in one transaction:
//! one `BEGIN`/`COMMIT` (on PostgreSQL one `fsync`) for the batch instead of one per write,
//! and none of the per-write hand-offs of taking the connection. Each write is acknowledged
//! only after its batch committed, so a crash loses nothing that was acknowledged.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{Decision, Document, StoreError, Updated, WriteMeta};

/// Most writes committed in one transaction: a bound on how long one batch holds the lock.
const MAX_BATCH: usize = 64;

/// One queued conditional write.
pub(crate) struct Job {
    pub path: String,
    pub meta: WriteMeta,
    /// The revision the writer read; `None` when the document must not exist.
    pub based_on: Option<String>,
    pub decision: Decision,
}

impl Job {
    /// The job's decision if `current` is still the document it was based on.
    pub fn decide(&self, current: Option<&Document>) -> Option<Decision> {
        (current.map(|d| d.revision.as_str()) == self.based_on.as_deref())
            .then(|| self.decision.clone())
    }
}

/// The documents of one batch, by path, as the batch's jobs leave them: a job on a path decides
/// against what the jobs before it in the batch wrote there.
pub(crate) struct BatchDocuments {
    documents: HashMap<String, Document>,
    /// Paths an earlier job of the batch changes in a write still to come: their new revision
    /// is unknown until then, and no writer can have read it, so later jobs on them lose.
    pending: HashSet<String>,
}

impl BatchDocuments {
    /// The batch's documents as stored when it began (read after its locks were taken).
    pub fn new(stored: Vec<Document>) -> Self {
        BatchDocuments {
            documents: stored.into_iter().map(|d| (d.path.clone(), d)).collect(),
            pending: HashSet::new(),
        }
    }

    /// `job`'s decision, with the document it replaces, if that document still has the
    /// revision the job was based on; the document is taken out until [`Self::record`] or
    /// [`Self::hold`].
    pub fn decide(&mut self, job: &Job) -> Option<(Decision, Option<Document>)> {
        if self.pending.contains(&job.path) {
            return None;
        }
        let decision = job.decide(self.documents.get(&job.path))?;
        Some((decision, self.documents.remove(&job.path)))
    }

    /// What a decided job left at its path.
    pub fn record(&mut self, path: &str, updated: &Updated) {
        if let Updated::Written(doc) | Updated::Unchanged(doc) = updated {
            self.documents.insert(path.to_string(), doc.clone());
        }
    }

    /// A decided job changes `path` in a write made later for the whole batch.
    pub fn hold(&mut self, path: &str) {
        self.pending.insert(path.to_string());
    }
}

/// What became of a job: written (or unchanged), or `None` when another write came first.
pub(crate) type Outcome = Result<Option<Updated>, StoreError>;

/// A backend that can apply a batch of jobs in one transaction.
pub(crate) trait Batches: Send + Sync + 'static {
    /// Applies `jobs` in order in one transaction and commits it. Per job: `None` when its
    /// document no longer had the revision it was based on (nothing is written for it). An
    /// error means nothing of the batch was committed.
    fn commit(
        &self,
        jobs: &[Job],
    ) -> impl Future<Output = Result<Vec<Option<Updated>>, StoreError>> + Send;
}

/// The queue and the workers that drain it.
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<(Job, oneshot::Sender<Outcome>)>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
    }
}

impl GroupCommit {
    /// Starts `workers` workers committing batches through `backend`.
    pub fn start<B: Batches>(backend: B, workers: usize) -> GroupCommit {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let backend = Arc::new(backend);
        let workers = (0..workers.max(1))
            .map(|_| tokio::spawn(work(backend.clone(), receiver.clone())))
            .collect();
        GroupCommit { queue, workers }
    }

    /// Queues `job` and waits for its batch to commit.
    pub async fn write(&self, job: Job) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        self.queue.send((job, reply)).map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Io(std::io::Error::other("the store's writer has stopped"))
}

type Receiver = Arc<Mutex<mpsc::UnboundedReceiver<(Job, oneshot::Sender<Outcome>)>>>;

/// Takes what is queued (waiting for the first job), commits it, answers, and again.
async fn work<B: Batches>(backend: Arc<B>, receiver: Receiver) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = receiver.lock().await;
            if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        let (jobs, replies): (Vec<Job>, Vec<_>) = batch.into_iter().unzip();
        for (reply, outcome) in replies.into_iter().zip(commit(&*backend, &jobs).await) {
            // A writer that stopped waiting (its client went away) is told nothing.
            let _ = reply.send(outcome);
        }
    }
}

/// One outcome per job. When the batch fails as a whole, each job is tried alone, so one
/// job's failure (a constraint, say) is reported to that writer only.
async fn commit<B: Batches>(backend: &B, jobs: &[Job]) -> Vec<Outcome> {
    match backend.commit(jobs).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if jobs.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                outcomes.push(match backend.commit(std::slice::from_ref(job)).await {
                    Ok(mut one) => Ok(one.pop().flatten()),
                    Err(e) => Err(e),
                });
            }
            outcomes
        }
    }
}
