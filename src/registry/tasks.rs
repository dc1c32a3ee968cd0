//! Tool calls run as tasks, as every gateway on the database sees them: `tasks/get` finds a
//! task wherever it runs, and after the gateway that ran it stopped. The gateway running a
//! task writes it at each change of status and renews its lease meanwhile; a task left
//! `working` by a gateway that stopped renewing is reported `failed`.

use super::{Registry, RegistryError, engine::values};

/// A task as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTask {
    pub id: String,
    /// The principal it runs for (`Identity::key`); `None` without `auth`.
    pub owner: Option<String>,
    pub holder: String,
    pub held_at: i64,
    /// `working`, `input_required`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// The JSON of its result, error or input requests, by its status.
    pub detail: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

impl Registry {
    /// Writes `task` whole (created, or changed).
    pub async fn keep_task(&self, task: &StoredTask) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "INSERT INTO tasks
                    (id, owner, holder, held_at, status, detail, created_at, updated_at, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (id) DO UPDATE SET holder = $3, held_at = $4, status = $5,
                    detail = $6, updated_at = $8",
                values![
                    task.id.as_str(),
                    task.owner.as_deref(),
                    task.holder.as_str(),
                    task.held_at,
                    task.status.as_str(),
                    task.detail.as_deref(),
                    task.created_at,
                    task.updated_at,
                    task.expires_at,
                ],
            )
            .await?;
        Ok(())
    }

    /// The task `id`, unless it expired before `now`.
    pub async fn task(&self, id: &str, now: i64) -> Result<Option<StoredTask>, RegistryError> {
        let row = self
            .db()
            .row(
                "SELECT id, owner, holder, held_at, status, detail, created_at, updated_at, expires_at
                FROM tasks WHERE id = $1 AND expires_at > $2",
                values![id, now],
            )
            .await?;
        row.map(|row| {
            Ok(StoredTask {
                id: row.text(0)?,
                owner: row.opt_text(1)?,
                holder: row.text(2)?,
                held_at: row.int(3)?,
                status: row.text(4)?,
                detail: row.opt_text(5)?,
                created_at: row.int(6)?,
                updated_at: row.int(7)?,
                expires_at: row.int(8)?,
            })
        })
        .transpose()
    }

    /// Renews, as of `at`, the lease of every task `holder` still runs.
    pub async fn renew_tasks(&self, holder: &str, at: i64) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "UPDATE tasks SET held_at = $2
                WHERE holder = $1 AND status IN ('working', 'input_required')",
                values![holder, at],
            )
            .await?;
        Ok(())
    }

    /// Reports `failed`, with `error` (JSON), every task still running whose lease was last
    /// renewed before `lapsed_before`: the gateway running it stopped. How many.
    pub async fn fail_abandoned_tasks(
        &self,
        lapsed_before: i64,
        error: &str,
        at: i64,
    ) -> Result<u64, RegistryError> {
        self.db()
            .execute(
                "UPDATE tasks SET status = 'failed', detail = $2, updated_at = $3
                WHERE status IN ('working', 'input_required') AND held_at < $1",
                values![lapsed_before, error, at],
            )
            .await
    }

    /// Forgets the tasks that expired before `now`.
    pub async fn forget_expired_tasks(&self, now: i64) -> Result<u64, RegistryError> {
        self.db()
            .execute("DELETE FROM tasks WHERE expires_at <= $1", values![now])
            .await
    }
}
