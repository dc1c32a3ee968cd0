//! Sessions' resource subscriptions as every gateway on the database sees them. Each is held
//! upstream by one gateway, on a lease that gateway renews: when it stops renewing (it was
//! killed, or let the subscription go), another takes it over. A row goes with its session.

use super::{Registry, RegistryError, engine::values};

/// One session's subscription to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeptSubscription {
    /// The session's id (the client's `Mcp-Session-Id`).
    pub session: String,
    pub uri: String,
}

impl Registry {
    /// Records that `holder` holds session `session`'s subscription to `uri` as of `at`
    /// (taking it from any other holder). `false`: the session is not stored (it ended while
    /// its subscription was on its way), and nor is its subscription.
    pub async fn hold_subscription(
        &self,
        session: &str,
        uri: &str,
        holder: &str,
        at: i64,
    ) -> Result<bool, RegistryError> {
        // Cast: PostgreSQL reads a parameter's type from where it goes, and a SELECT's
        // columns go nowhere typed.
        let written = self
            .db()
            .execute(
                "INSERT INTO session_subscriptions (session, uri, holder, held_at)
                SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS BIGINT)
                WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $1)
                ON CONFLICT (session, uri) DO UPDATE SET holder = $3, held_at = $4",
                values![session, uri, holder, at],
            )
            .await?;
        Ok(written > 0)
    }

    /// Forgets session `session`'s subscription to `uri` (its client unsubscribed).
    pub async fn drop_subscription(&self, session: &str, uri: &str) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "DELETE FROM session_subscriptions WHERE session = $1 AND uri = $2",
                values![session, uri],
            )
            .await?;
        Ok(())
    }

    /// Renews, as of `at`, every lease `holder` holds; the subscriptions it still holds (the
    /// others were unsubscribed, ended with their session, or taken over).
    pub async fn renew_subscriptions(
        &self,
        holder: &str,
        at: i64,
    ) -> Result<Vec<KeptSubscription>, RegistryError> {
        self.kept(
            "UPDATE session_subscriptions SET held_at = $2 WHERE holder = $1
            RETURNING session, uri",
            values![holder, at],
        )
        .await
    }

    /// Makes `holder` the holder, as of `at`, of every subscription whose lease was last
    /// renewed before `lapsed_before`; those it took. Of gateways taking at once, each row goes
    /// to one: the update re-reads a row another changed meanwhile.
    pub async fn take_lapsed_subscriptions(
        &self,
        holder: &str,
        at: i64,
        lapsed_before: i64,
    ) -> Result<Vec<KeptSubscription>, RegistryError> {
        self.kept(
            "UPDATE session_subscriptions SET holder = $1, held_at = $2 WHERE held_at < $3
            RETURNING session, uri",
            values![holder, at, lapsed_before],
        )
        .await
    }

    /// Lets session `session`'s subscription to `uri` go, if `holder` holds it: the next
    /// gateway to look takes it over.
    pub async fn release_subscription(
        &self,
        session: &str,
        uri: &str,
        holder: &str,
    ) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "UPDATE session_subscriptions SET held_at = 0
                WHERE session = $1 AND uri = $2 AND holder = $3",
                values![session, uri, holder],
            )
            .await?;
        Ok(())
    }

    /// Lets go of every subscription `holder` holds (it is stopping).
    pub async fn release_subscriptions(&self, holder: &str) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "UPDATE session_subscriptions SET held_at = 0 WHERE holder = $1",
                values![holder],
            )
            .await?;
        Ok(())
    }

    async fn kept(
        &self,
        sql: &str,
        values: Vec<super::engine::Value>,
    ) -> Result<Vec<KeptSubscription>, RegistryError> {
        self.db()
            .rows(sql, values)
            .await?
            .into_iter()
            .map(|row| {
                Ok(KeptSubscription {
                    session: row.text(0)?,
                    uri: row.text(1)?,
                })
            })
            .collect()
    }
}
