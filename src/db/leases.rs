//! Leases: a job that one server at a time must do is done by the server holding its lease. The
//! holder renews it while it runs; a lease left unrenewed for its duration passes to the next server
//! that asks, so a stopped server hands its jobs over within that time. A row and a compare-and-set
//! update, the same on SQLite and PostgreSQL; it trusts the servers' clocks to agree within well
//! under a lease's duration.

use diesel::prelude::*;

use super::schema::leases;
use super::{DbConnection, DbError};

/// Announcing the synergies that enter or leave the detection to webhook subscribers: every replica
/// detects, one announces.
pub const ANNOUNCER: &str = "announcer";

/// Takes or renews lease `name` for `holder` until `duration` from now: whether `holder` holds it.
pub fn hold(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    duration: std::time::Duration,
) -> Result<bool, DbError> {
    let now = chrono::Utc::now().timestamp_millis();
    let until = now.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
    super::transaction(conn, |conn| {
        let row = (
            leases::name.eq(name),
            leases::holder.eq(holder),
            leases::expires_at_ms.eq(until),
        );
        match conn {
            DbConnection::Sqlite(c) => diesel::insert_into(leases::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
            DbConnection::Postgresql(c) => diesel::insert_into(leases::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
        let taken = diesel::update(
            leases::table
                .filter(leases::name.eq(name))
                .filter(leases::holder.eq(holder).or(leases::expires_at_ms.lt(now))),
        )
        .set((leases::holder.eq(holder), leases::expires_at_ms.eq(until)))
        .execute(conn)?;
        Ok(taken == 1)
    })
}

/// Gives lease `name` up if `holder` has it (a server stopping hands over at once).
pub fn release(conn: &mut DbConnection, name: &str, holder: &str) -> Result<(), DbError> {
    diesel::delete(
        leases::table
            .filter(leases::name.eq(name))
            .filter(leases::holder.eq(holder)),
    )
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_holder_at_a_time_until_it_expires_or_is_released() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("leases.db");
        let pool = crate::db::connect(url.to_str().expect("utf-8 path"), 2, 1_000).expect("pool");
        crate::db::migrate(&pool).expect("migrations");
        let mut conn = pool.get().expect("connection");
        let long = Duration::from_secs(60);
        assert!(hold(&mut conn, ANNOUNCER, "a", long).expect("hold"));
        assert!(hold(&mut conn, ANNOUNCER, "a", long).expect("renew"));
        assert!(!hold(&mut conn, ANNOUNCER, "b", long).expect("refused"));
        release(&mut conn, ANNOUNCER, "b").expect("not b's to release");
        assert!(!hold(&mut conn, ANNOUNCER, "b", long).expect("still a's"));
        release(&mut conn, ANNOUNCER, "a").expect("release");
        assert!(hold(&mut conn, ANNOUNCER, "b", Duration::ZERO).expect("b's now"));
        std::thread::sleep(Duration::from_millis(5));
        assert!(hold(&mut conn, ANNOUNCER, "a", long).expect("expired, so a's"));
        assert!(!hold(&mut conn, ANNOUNCER, "b", long).expect("a's again"));
    }
}
