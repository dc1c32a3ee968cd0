//! Parcels passed between the gateways of one registry, addressed to a gateway's tag
//! ([`this_gateway`]). Behind a balancer with no affinity, a client's request lands on any
//! replica, though what it continues may wait on another:
//! - a client's answer to a request of a gateway (sampling, elicitation, roots; the request's
//!   id names the gateway that asked, see `downstream/ask_ids.rs`);
//! - a 2026-07-28 client's retry of a call parked on another gateway (its `requestState`
//!   names that gateway, see `gateway/conversation.rs`), and that gateway's reply.
//!
//! A parcel goes in a notification on the registry's channel; one too large for a
//! notification waits in `passed_answers` and the notification names its row. Only
//! PostgreSQL has the channel.

use super::{Registry, RegistryError, changes::ANSWER, engine::values};

/// What a notification's payload may hold (PostgreSQL's limit is 8000 bytes), less room for
/// the address.
const IN_NOTIFICATION: usize = 7_800;

/// This gateway's tag among those that share its registry, random per process.
pub fn this_gateway() -> &'static str {
    static TAG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    });
    &TAG
}

/// What a parcel holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParcelKind {
    /// A client's answer to a request of the gateway it is addressed to.
    #[default]
    Answer,
    /// A client's retry of a call parked on the gateway it is addressed to.
    Resume,
    /// The reply to a [`ParcelKind::Resume`].
    Resumed,
}

impl ParcelKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Resume => "resume",
            Self::Resumed => "resumed",
        }
    }
}

/// A parcel: the session or ticket it concerns, and its content.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PassedAnswer {
    #[serde(default)]
    pub kind: ParcelKind,
    pub session: String,
    pub body: String,
}

impl Registry {
    /// Passes `answer` to the gateway tagged `to`.
    pub async fn pass_answer(&self, to: &str, answer: &PassedAnswer) -> Result<(), RegistryError> {
        if !self.has_channel() {
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
                    "INSERT INTO passed_answers (session, body, at, kind) VALUES ($1, $2, $3, $4)
                    RETURNING id",
                    values![
                        answer.session.as_str(),
                        answer.body.as_str(),
                        super::now_ms(),
                        answer.kind.as_str()
                    ],
                )
                .await?
                .ok_or_else(|| RegistryError::Sql("no row for a passed answer".into()))?;
            format!("{ANSWER}{to}:#{}", row.int(0)?)
        };
        self.notify(&payload).await
    }

    /// The parcel of `kind` addressed to this gateway in a notification's `payload` (what
    /// follows [`ANSWER`]); `None` when it is for another gateway or of another kind, or was
    /// taken already.
    pub async fn passed_answer(
        &self,
        kind: ParcelKind,
        payload: &str,
    ) -> Result<Option<PassedAnswer>, RegistryError> {
        let tag = this_gateway();
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
                    "DELETE FROM passed_answers WHERE id = $1 AND kind = $2
                    RETURNING session, body",
                    values![row, kind.as_str()],
                )
                .await?;
            return taken
                .map(|row| {
                    Ok(PassedAnswer {
                        kind,
                        session: row.text(0)?,
                        body: row.text(1)?,
                    })
                })
                .transpose();
        }
        let parcel: PassedAnswer = serde_json::from_str(rest).map_err(|error| {
            RegistryError::Sql(format!("a passed parcel does not read: {error}"))
        })?;
        Ok((parcel.kind == kind).then_some(parcel))
    }

    /// Forgets the large answers passed before `before` that nobody took (their gateway
    /// stopped).
    pub async fn forget_passed_answers(&self, before: i64) -> Result<u64, RegistryError> {
        self.db()
            .execute("DELETE FROM passed_answers WHERE at < $1", values![before])
            .await
    }
}
