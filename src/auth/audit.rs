//! The audit log's writer: successful writes are recorded behind the request, by a thread of their
//! own, so that a write costs its caller one database transaction (its own), not two. Rows recorded
//! while the writer is busy are stored together, in one transaction; whoever reads the log first
//! waits until every row recorded before is stored ([`AuditLog::flush`]), so the log a reader sees
//! holds every write acknowledged to anyone before the read. A row is logged when it cannot be
//! stored (as before: the write itself has happened); a process killed outright loses the rows of
//! its last moment, which a write recorded in its request would lose too between its two commits.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use crate::db::{self, DbError, DbPool, keys::AuditRow};

/// At most this many rows per transaction (ten values each, far below either database's limit).
const BATCH: usize = 500;

enum Message {
    Row(Box<AuditRow>),
    /// Answered once every row sent before it is stored.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The audit log's writer thread; stopping it (dropping the last handle) stores what is queued.
pub struct AuditLog {
    sender: Mutex<Option<Sender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    pub fn start(pool: DbPool) -> std::io::Result<AuditLog> {
        let (sender, receiver) = channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_until_closed(&pool, &receiver))?;
        Ok(AuditLog {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a row; never waits for the database.
    pub fn record(&self, row: AuditRow) {
        if !self.send(Message::Row(Box::new(row))) {
            tracing::error!("audit log write failed: the audit writer has stopped");
        }
    }

    /// Until every row recorded before this call is stored (or failed and was logged).
    pub async fn flush(&self) {
        let (done, stored) = tokio::sync::oneshot::channel();
        if self.send(Message::Flush(done)) {
            // An error means the writer stopped: nothing more will be stored anyway.
            let _ = stored.await;
        }
    }

    fn send(&self, message: Message) -> bool {
        self.sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .is_some_and(|sender| sender.send(message).is_ok())
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has stored what is queued.
        self.sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the audit writer panicked");
        }
    }
}

/// Stores rows as they come, each time all those already queued together.
fn write_until_closed(pool: &DbPool, receiver: &Receiver<Message>) {
    while let Ok(first) = receiver.recv() {
        let mut rows = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Row(row) => rows.push(*row),
                Message::Flush(done) => flushes.push(done),
            }
            next = if rows.len() < BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        if !rows.is_empty()
            && let Err(error) = store(pool, &rows)
        {
            tracing::error!(%error, rows = rows.len(), "audit log write failed");
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn store(pool: &DbPool, rows: &[AuditRow]) -> Result<(), DbError> {
    let mut conn = pool.get()?;
    db::transaction(&mut conn, |conn| db::keys::record_all(conn, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize) -> AuditRow {
        AuditRow {
            id: format!("audit-{n:04}"),
            at: chrono::DateTime::from_timestamp(1_700_000_000 + n as i64, 0)
                .unwrap_or_default()
                .naive_utc(),
            key_id: None,
            key_name: "test".into(),
            method: "POST".into(),
            route: "/api/v1/actors".into(),
            path: "/api/v1/actors".into(),
            entity_id: Some(format!("e{n}")),
            status: 201,
            request_id: None,
        }
    }

    fn stored(pool: &DbPool) -> usize {
        let mut conn = pool.get().expect("connection");
        db::keys::audit_page(&mut conn, None, None, 10_000)
            .expect("audit page")
            .len()
    }

    #[actix_web::test]
    async fn a_flush_waits_for_every_row_recorded_before_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("audit.db");
        let pool = db::connect(&url.to_string_lossy(), 2, 5_000).expect("pool");
        db::migrate(&pool).expect("migrations");
        let log = AuditLog::start(pool.clone()).expect("writer");
        // More than one batch, recorded faster than stored.
        for n in 0..(BATCH + 37) {
            log.record(row(n));
        }
        log.flush().await;
        assert_eq!(stored(&pool), BATCH + 37);
        // Dropping the writer stores what is still queued.
        log.record(row(9_999));
        drop(log);
        assert_eq!(stored(&pool), BATCH + 38);
    }
}
