//! A client's answer to a request of a gateway, passed on to that gateway when it reached
//! another one (behind a balancer with no affinity, the client's POST of its answer lands on
//! any replica). It goes in a notification on the registry's channel, addressed to the asking
//! gateway's tag; one too large for a notification waits in `passed_answers` and the
//! notification names its row. Only PostgreSQL has the channel.
//!
//! Only the requests of the doors' own way carry the asking gateway's tag
//! (`downstream/plain_call/caller.rs`). One put on rmcp's way (a call with a progress token or
//! a task, or to an upstream without a lane) has rmcp's numeric id, which says nothing of who
//! asked: its answer is taken only where it was asked.

use super::{
    Registry, RegistryError,
    changes::ANSWER,
    engine::{Engine, values},
};

/// What a notification's payload may hold (PostgreSQL's limit is 8000 bytes), less room for
/// the address.
const IN_NOTIFICATION: usize = 7_800;

/// How an answer passed by a notification reads: its session and its JSON-RPC message.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PassedAnswer {
    pub session: String,
    pub body: String,
}

impl Registry {
    /// Passes `answer` to the gateway tagged `to`, which asked.
    pub async fn pass_answer(&self, to: &str, answer: &PassedAnswer) -> Result<(), RegistryError> {
        if !matches!(self.db(), Engine::Postgres(_)) {
            return Err(RegistryError::NoChannel(
                "the gateways on this registry (SQLite) have no channel to pass it on".into(),
            ));
        }
        let inline = serde_json::to_string(answer).map_err(|error| {
            RegistryError::Sql(format!("an answer does not serialize: {error}"))
        })?;
        let payload = if inline.len() <= IN_NOTIFICATION {
            format!("{ANSWER}{to}:{inline}")
        } else {
            let row = self
                .db()
                .row(
                    "INSERT INTO passed_answers (session, body, at) VALUES ($1, $2, $3)
                    RETURNING id",
                    values![
                        answer.session.as_str(),
                        answer.body.as_str(),
                        super::now_ms()
                    ],
                )
                .await?
                .ok_or_else(|| RegistryError::Sql("no row for a passed answer".into()))?;
            format!("{ANSWER}{to}:#{}", row.int(0)?)
        };
        self.notify(&payload).await
    }

    /// The answer addressed to gateway `tag` in a notification's `payload` (what follows
    /// [`ANSWER`]); `None` when it is for another gateway, or was taken already.
    pub async fn passed_answer(
        &self,
        tag: &str,
        payload: &str,
    ) -> Result<Option<PassedAnswer>, RegistryError> {
        let Some(rest) = payload
            .strip_prefix(tag)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            return Ok(None);
        };
        if let Some(row) = rest.strip_prefix('#') {
            let row: i64 = row
                .parse()
                .map_err(|_| RegistryError::Sql(format!("a passed answer's row {row:?}")))?;
            let taken = self
                .db()
                .row(
                    "DELETE FROM passed_answers WHERE id = $1 RETURNING session, body",
                    values![row],
                )
                .await?;
            return taken
                .map(|row| {
                    Ok(PassedAnswer {
                        session: row.text(0)?,
                        body: row.text(1)?,
                    })
                })
                .transpose();
        }
        serde_json::from_str(rest)
            .map(Some)
            .map_err(|error| RegistryError::Sql(format!("a passed answer does not read: {error}")))
    }

    /// Forgets the large answers passed before `before` that nobody took (their gateway
    /// stopped).
    pub async fn forget_passed_answers(&self, before: i64) -> Result<u64, RegistryError> {
        self.db()
            .execute("DELETE FROM passed_answers WHERE at < $1", values![before])
            .await
    }
}
