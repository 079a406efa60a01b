//! PostgreSQL's LISTEN/NOTIFY, to wake the change follower (`detection::follow_changes`) the moment
//! another server commits a change: the trigger that bumps a change counter also notifies
//! [`CHANNEL`] (migration `change_notify`), delivered when the writer's transaction commits.
//! Polling stays the fallback: a lost listening connection costs latency, never a change.
//!
//! diesel's `PgConnection` cannot wait for a notification, so the listener holds one connection of
//! its own (tokio-postgres, on a one-thread runtime of its own thread), reconnecting after a failure.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel the change triggers notify.
pub const CHANNEL: &str = "symbiose_changes";

/// How long the listener waits before it reconnects after losing its connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// How often the listener looks at `stop` while no notification comes.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// The URL parameters tokio-postgres understands; libpq's others (`gssencmode`, …) are left out
/// rather than refused, since diesel (libpq) reads the same URL.
const KNOWN_PARAMETERS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
    "channel_binding",
];

/// The listener's connection settings from the database URL (`postgres://…`), with the password
/// from `PGPASSWORD` when the URL has none, as libpq does.
fn listener_config(url: &str) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            KNOWN_PARAMETERS.contains(&key)
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&url)?;
    if config.get_password().is_none()
        && let Ok(password) = std::env::var("PGPASSWORD")
    {
        config.password(password);
    }
    Ok(config)
}

/// Listens on [`CHANNEL`] of the database at `url` on a thread of its own, calling `wake` with the
/// kind of change of every notification (and with `None` once after each connection, for what was
/// missed while disconnected), until
/// `stop` is set. An error when the URL cannot be used or the thread cannot start.
pub fn listen(
    url: &str,
    wake: impl Fn(Option<&str>) + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let config = listener_config(url)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("change-listener".into())
        .spawn(move || {
            runtime.block_on(async {
                let mut warned = false;
                while !stop.load(Ordering::SeqCst) {
                    if let Err(error) = follow(&config, &wake, &stop).await
                        && !std::mem::replace(&mut warned, true)
                    {
                        // Once: the follower's polling carries on meanwhile.
                        tracing::warn!(%error, "change listener: no notifications, polling only");
                    }
                    tokio::time::sleep(RECONNECT_AFTER).await;
                }
            });
        })?;
    Ok(())
}

/// One listening connection, until it fails or `stop` is set.
async fn follow(
    config: &tokio_postgres::Config,
    wake: &(impl Fn(Option<&str>) + Send + Sync),
    stop: &AtomicBool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel::<String>();
    // The connection delivers the client's answers and the notifications: driven by a task of its
    // own, which ends when the connection does.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notice)) => {
                    if notified.send(notice.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Listening from now on; what came before may have been missed.
    wake(None);
    while !stop.load(Ordering::SeqCst) {
        match tokio::time::timeout(STOP_CHECK, notifications.recv()).await {
            Ok(Some(kind)) => wake(Some(&kind)),
            Ok(None) => break,
            Err(_) => {}
        }
    }
    drop(client);
    match driver.await {
        Ok(ended) => ended,
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_only_parameters_are_left_out_of_the_listener_url() {
        let config = listener_config(
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&gssencmode=disable",
        )
        .map_err(|e| e.to_string());
        let config = config.as_ref().map_err(String::as_str);
        assert_eq!(config.map(|c| c.get_dbname()), Ok(Some("test")));
        assert_eq!(config.map(|c| c.get_user()), Ok(Some("postgres")));
        assert_eq!(
            config.map(|c| c.get_ssl_mode()),
            Ok(tokio_postgres::config::SslMode::Disable)
        );
        assert!(listener_config("postgres://u@h/db?nonsense=1").is_ok());
        assert!(listener_config("not a url").is_err());
    }
}
