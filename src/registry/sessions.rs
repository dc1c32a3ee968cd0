//! Session-era client sessions as every gateway on the database sees them: what continues a
//! session on a gateway that did not open it (the client's `initialize`, its log level) and
//! whom it is bound to. A row lives from the session's `initialize` until the client ends it,
//! its credential ends, or nobody has used it for the idle time; a gateway that stops does not
//! end its sessions, so the others continue them.

use std::sync::Arc;

use super::{
    Registry, RegistryError,
    engine::{Value, values},
};

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    /// The token (login or API key) it is bound to; `None` when it was opened without auth.
    pub credential: Option<i64>,
    /// The JSON of the client's `initialize` parameters.
    pub initialize: String,
    /// The level the client set with `logging/setLevel`.
    pub log_level: Option<String>,
}

/// Ids per statement when many are named at once (well below either database's limit on
/// parameters).
const IDS_AT_ONCE: usize = 500;

impl Registry {
    /// Stores session `id`, just initialized, used at `at` (ms since the epoch).
    pub async fn save_session(
        &self,
        id: &str,
        credential: Option<i64>,
        initialize: &str,
        at: i64,
    ) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "INSERT INTO sessions (id, credential, initialize, opened_at, active_at)
                VALUES ($1, $2, $3, $4, $4)
                ON CONFLICT (id) DO UPDATE SET credential = $2, initialize = $3, log_level = NULL,
                    opened_at = $4, active_at = $4",
                values![id, credential, initialize, at],
            )
            .await?;
        Ok(())
    }

    /// Session `id`, if it is stored and was used at `fresh_after` or later.
    pub async fn session(
        &self,
        id: &str,
        fresh_after: i64,
    ) -> Result<Option<StoredSession>, RegistryError> {
        let row = self
            .db()
            .row(
                "SELECT credential, initialize, log_level FROM sessions
                WHERE id = $1 AND active_at >= $2",
                values![id, fresh_after],
            )
            .await?;
        row.map(|row| {
            Ok(StoredSession {
                credential: row.opt_int(0)?,
                initialize: row.text(1)?,
                log_level: row.opt_text(2)?,
            })
        })
        .transpose()
    }

    /// Records the log level the client of session `id` set.
    pub async fn set_session_log_level(&self, id: &str, level: &str) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "UPDATE sessions SET log_level = $2 WHERE id = $1",
                values![id, level],
            )
            .await?;
        Ok(())
    }

    /// Marks sessions `ids` used at `at` (a row marked used later keeps its time); the ids of
    /// those still stored (the others were ended on another gateway).
    pub async fn touch_sessions(
        &self,
        ids: &[Arc<str>],
        at: i64,
    ) -> Result<Vec<String>, RegistryError> {
        self.ids_in(
            "UPDATE sessions SET active_at = CASE WHEN active_at < $1 THEN $1 ELSE active_at END
            WHERE id IN",
            " RETURNING id",
            &[Value::from(at)],
            ids,
        )
        .await
    }

    /// Which of sessions `ids` are still stored.
    pub async fn sessions_stored(&self, ids: &[Arc<str>]) -> Result<Vec<String>, RegistryError> {
        self.ids_in("SELECT id FROM sessions WHERE id IN", "", &[], ids)
            .await
    }

    /// Runs `head ($n, ...) tail` for `ids` in chunks, each after the `leading` parameters;
    /// the ids it answers.
    async fn ids_in(
        &self,
        head: &str,
        tail: &str,
        leading: &[Value],
        ids: &[Arc<str>],
    ) -> Result<Vec<String>, RegistryError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(IDS_AT_ONCE) {
            let first = leading.len() + 1;
            let places: Vec<String> = (first..first + chunk.len())
                .map(|n| format!("${n}"))
                .collect();
            let sql = format!("{head} ({}){tail}", places.join(", "));
            let mut values = leading.to_vec();
            values.extend(chunk.iter().map(|id| Value::from(&**id)));
            for row in self.db().rows(&sql, values).await? {
                found.push(row.text(0)?);
            }
        }
        Ok(found)
    }

    /// Ends session `id` for every gateway; whether it was stored.
    pub async fn forget_session(&self, id: &str) -> Result<bool, RegistryError> {
        let forgotten = self
            .db()
            .execute("DELETE FROM sessions WHERE id = $1", values![id])
            .await?
            > 0;
        if forgotten {
            self.announce_session_closed(id).await;
        }
        Ok(forgotten)
    }

    /// Ends session `id` for every gateway if no gateway marked it used after `at`; whether
    /// it did.
    pub async fn forget_session_unused_since(
        &self,
        id: &str,
        at: i64,
    ) -> Result<bool, RegistryError> {
        let forgotten = self
            .db()
            .execute(
                "DELETE FROM sessions WHERE id = $1 AND active_at <= $2",
                values![id, at],
            )
            .await?
            > 0;
        if forgotten {
            self.announce_session_closed(id).await;
        }
        Ok(forgotten)
    }

    /// Forgets the sessions no gateway has used since `before`; how many.
    pub async fn forget_idle_sessions(&self, before: i64) -> Result<u64, RegistryError> {
        self.db()
            .execute("DELETE FROM sessions WHERE active_at < $1", values![before])
            .await
    }
}
