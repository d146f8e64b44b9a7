//! Group commit of settlements. Every settlement is a few statements in one
//! transaction; under load, committing each on its own makes the database
//! the bottleneck. A single writer task takes whatever settlements queued up
//! while the previous commit ran and writes them in one transaction, so the
//! batch grows with the load and costs nothing when idle (no timer, no
//! waiting for company). Each caller still gets its own result after the
//! commit that holds its settlement: nothing is acknowledged before it is
//! durable, and idempotency is unchanged. If a batch fails, its settlements
//! are retried one by one, so one bad settlement cannot fail the others.
use tokio::sync::{mpsc, oneshot};

use crate::store::{BillingStore, OwnedUsageRecord, StoreError, Written};

type Reply = oneshot::Sender<Result<Written, StoreError>>;

struct Job {
    user_id: String,
    charge: i64,
    usage: OwnedUsageRecord,
    reply: Reply,
}

/// Handle to the settlement writer.
#[derive(Debug, Clone)]
pub struct SettleBatcher {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("request_id", &self.usage.request_id)
            .finish_non_exhaustive()
    }
}

impl SettleBatcher {
    /// Starts the writer over `store`; at most `max_batch` settlements share
    /// a transaction. Must be called inside a Tokio runtime.
    pub fn start(store: BillingStore, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (jobs, rx) = mpsc::channel(max_batch.saturating_mul(8));
        tokio::spawn(write(store, rx, max_batch));
        Self { jobs }
    }

    /// Settles one request; returns once its transaction has committed.
    pub async fn settle(&self, user_id: &str, charge: i64, usage: OwnedUsageRecord) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            user_id: user_id.to_owned(),
            charge,
            usage,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn write(store: BillingStore, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        #[expect(clippy::cast_precision_loss, reason = "a metric")]
        metrics::histogram!("oneflow_billing_settle_batch_size").record(jobs.len() as f64);
        let items: Vec<(String, i64, OwnedUsageRecord)> = jobs
            .iter_mut()
            .map(|j| (std::mem::take(&mut j.user_id), j.charge, std::mem::take(&mut j.usage)))
            .collect();
        if items.len() > 1 {
            match store.settle_batch(&items).await {
                Ok(written) => {
                    for (job, w) in jobs.drain(..).zip(written) {
                        let _ = job.reply.send(Ok(w));
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, size = items.len(), "batched settlement failed; settling one by one");
                }
            }
        }
        for (job, (user_id, charge, usage)) in jobs.drain(..).zip(items) {
            let result = store.settle(&user_id, charge, &usage.borrowed()).await;
            let _ = job.reply.send(result);
        }
    }
}
