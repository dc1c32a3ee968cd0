//! The call history: one row per `tools/call`, whichever transport it came by. Rows arrive in
//! batches from the call log's writer task, never from the call path itself.

use rusqlite::{ToSql, params};

use super::{Registry, RegistryError};

/// One recorded call.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallRecord {
    /// Assigned when stored; 0 before.
    pub id: i64,
    /// When the call started, in milliseconds since the Unix epoch.
    pub at: i64,
    /// The MCP client's name (`clientInfo.name`), or the REST route it came by.
    pub client: Option<String>,
    /// The authenticated user, when there is one.
    pub principal: Option<String>,
    /// The upstream it was routed to; `None` when it was not routed (unknown tool).
    pub upstream: Option<String>,
    /// The tool name as the client called it.
    pub tool: String,
    pub duration_us: i64,
    /// `ok`; `tool_error` (the tool ran and reported an error); `input_required` (it asked the
    /// client something first: the retry is another call); `cancelled` (its client cancelled
    /// it); `error` (it did not run, or failed upstream).
    pub outcome: String,
    pub error: Option<String>,
}

/// Which calls to list.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub tool: Option<String>,
    pub upstream: Option<String>,
    pub outcome: Option<String>,
    pub client: Option<String>,
    /// Only calls at or after this time (ms).
    pub since: Option<i64>,
    /// Only calls with an id below this (the previous page's `next`).
    pub before: Option<i64>,
    pub limit: usize,
}

/// One page of calls, newest first.
#[derive(Debug, Clone)]
pub struct CallPage {
    pub calls: Vec<CallRecord>,
    /// The `before` of the next page, when there may be one.
    pub next: Option<i64>,
}

impl Registry {
    /// Stores a batch of calls in one transaction.
    pub async fn insert_calls(&self, batch: Vec<CallRecord>) -> Result<(), RegistryError> {
        self.run(move |db| {
            let transaction = db.transaction()?;
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT INTO calls (at, client, principal, upstream, tool, duration_us, outcome, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for call in &batch {
                    insert.execute(params![
                        call.at,
                        call.client,
                        call.principal,
                        call.upstream,
                        call.tool,
                        call.duration_us,
                        call.outcome,
                        call.error
                    ])?;
                }
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    /// One page of calls matching `filter`, newest first.
    pub async fn calls(&self, filter: CallFilter) -> Result<CallPage, RegistryError> {
        self.run(move |db| {
            let mut conditions = Vec::new();
            let mut values: Vec<Box<dyn ToSql + Send>> = Vec::new();
            let mut add = |condition: &str, value: Box<dyn ToSql + Send>| {
                values.push(value);
                conditions.push(format!("{condition} ?{}", values.len()));
            };
            if let Some(tool) = filter.tool {
                add("tool =", Box::new(tool));
            }
            if let Some(upstream) = filter.upstream {
                add("upstream =", Box::new(upstream));
            }
            if let Some(outcome) = filter.outcome {
                add("outcome =", Box::new(outcome));
            }
            if let Some(client) = filter.client {
                add("client =", Box::new(client));
            }
            if let Some(since) = filter.since {
                add("at >=", Box::new(since));
            }
            if let Some(before) = filter.before {
                add("id <", Box::new(before));
            }
            let condition = if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            };
            // One more than asked for tells whether there is a next page.
            let sql = format!(
                "SELECT id, at, client, principal, upstream, tool, duration_us, outcome, error
                 FROM calls {condition} ORDER BY id DESC LIMIT {}",
                filter.limit + 1
            );
            let mut statement = db.prepare(&sql)?;
            let parameters: Vec<&dyn ToSql> =
                values.iter().map(|v| v.as_ref() as &dyn ToSql).collect();
            let rows = statement.query_map(parameters.as_slice(), |row| {
                Ok(CallRecord {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    client: row.get(2)?,
                    principal: row.get(3)?,
                    upstream: row.get(4)?,
                    tool: row.get(5)?,
                    duration_us: row.get(6)?,
                    outcome: row.get(7)?,
                    error: row.get(8)?,
                })
            })?;
            let mut calls = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let next = if calls.len() > filter.limit {
                calls.truncate(filter.limit);
                calls.last().map(|call| call.id)
            } else {
                None
            };
            Ok(CallPage { calls, next })
        })
        .await
    }

    /// How many calls are stored, and how many of them failed.
    pub async fn call_counts(&self) -> Result<(i64, i64), RegistryError> {
        self.run(|db| {
            Ok(db.query_row(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome != 'ok') FROM calls",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?)
        })
        .await
    }
}
