//! The call history: one row per `tools/call`, whichever transport it came by. Rows arrive in
//! batches from the call log's writer task, never from the call path itself.

use std::sync::LazyLock;

use super::{
    Registry, RegistryError,
    engine::{Value, values},
};

/// Calls stored by one `INSERT`, at most. One statement of many rows rather than one per
/// call: SQLite checks `outcome IN (...)` by building a table of the list once per statement
/// run, which took most of the cost of storing a call when each call was a statement.
const ROWS_PER_INSERT: usize = 64;
/// The columns an `INSERT` of calls gives.
const COLUMNS: usize = 8;

/// The `INSERT`s of 1, 2, 4, … [`ROWS_PER_INSERT`] calls, written once: a batch is stored
/// with as many of the largest as it fills, then one of each size its remainder needs.
static INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::iter::successors(Some(1), |rows| Some(rows * 2))
        .take_while(|rows| *rows <= ROWS_PER_INSERT)
        .map(insert_calls_sql)
        .collect()
});

/// `INSERT` of `rows` calls, numbered `$1`, `$2`, … row after row.
fn insert_calls_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO calls (at, client, principal, upstream, tool, duration_us, outcome, error) VALUES ",
    );
    for row in 0..rows {
        let first = row * COLUMNS + 1;
        let row_values: Vec<String> = (first..first + COLUMNS).map(|n| format!("${n}")).collect();
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&row_values.join(", "));
        sql.push(')');
    }
    sql
}

/// The sizes of the statements that store `calls` calls, largest first.
fn statement_sizes(calls: usize) -> impl Iterator<Item = usize> {
    let full = std::iter::repeat_n(ROWS_PER_INSERT, calls / ROWS_PER_INSERT);
    let rest = calls % ROWS_PER_INSERT;
    let parts = (0..ROWS_PER_INSERT.ilog2())
        .rev()
        .map(|power| 1 << power)
        .filter(move |size| rest & size != 0);
    full.chain(parts)
}

/// The `SELECT` of one page of calls matching `filter`, newest first, and its values: one
/// more row than asked for tells whether there is a next page.
fn page_query(filter: &CallFilter) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut add = |condition: &str, value: Value| {
        values.push(value);
        conditions.push(format!("{condition} ${}", values.len()));
    };
    if let Some(tool) = &filter.tool {
        add("tool =", tool.clone().into());
    }
    if let Some(upstream) = &filter.upstream {
        add("upstream =", upstream.clone().into());
    }
    if let Some(outcome) = &filter.outcome {
        add("outcome =", outcome.clone().into());
    }
    if let Some(client) = &filter.client {
        add("client =", client.clone().into());
    }
    if let Some(principal) = &filter.principal {
        add("principal =", principal.clone().into());
    }
    if let Some(since) = filter.since {
        add("at >=", since.into());
    }
    if let Some(before) = filter.before {
        add("id <", before.into());
    }
    if filter
        .outcome
        .as_deref()
        .is_some_and(|outcome| outcome != "ok")
    {
        // Implied, and what lets SQLite read the index of the failed calls (`calls_failed`).
        conditions.push("outcome != 'ok'".to_owned());
    }
    let condition = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT id, at, client, principal, upstream, tool, duration_us, outcome, error
         FROM calls {condition} ORDER BY id DESC LIMIT {}",
        filter.limit + 1
    );
    (sql, values)
}

/// How many calls are stored, and how many of them failed (the console's overview asks at
/// every refresh). Two counts, each over an index alone: one `COUNT(*) FILTER (…)` read
/// every row of the table, 120 ms for a million calls where these take 6.
const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM calls), \
                      (SELECT COUNT(*) FROM calls WHERE outcome != 'ok')";

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
    /// Only calls of this user (the `principal` recorded).
    pub principal: Option<String>,
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
    /// Stores a batch of calls in one transaction, in statements of many rows (see
    /// [`ROWS_PER_INSERT`]).
    pub async fn insert_calls(&self, batch: Vec<CallRecord>) -> Result<(), RegistryError> {
        let sizes = statement_sizes(batch.len());
        let mut calls = batch.into_iter();
        let statements = sizes
            .map(|rows| {
                let values: Vec<Value> = calls
                    .by_ref()
                    .take(rows)
                    .flat_map(|call| {
                        values![
                            call.at,
                            call.client,
                            call.principal,
                            call.upstream,
                            call.tool,
                            call.duration_us,
                            call.outcome,
                            call.error
                        ]
                    })
                    .collect();
                (INSERTS[rows.ilog2() as usize].clone(), values)
            })
            .collect();
        self.db().execute_all(statements).await
    }

    /// One page of calls matching `filter`, newest first.
    pub async fn calls(&self, filter: CallFilter) -> Result<CallPage, RegistryError> {
        let (sql, values) = page_query(&filter);
        let mut calls = self
            .db()
            .rows(&sql, values)
            .await?
            .iter()
            .map(|row| {
                Ok(CallRecord {
                    id: row.int(0)?,
                    at: row.int(1)?,
                    client: row.opt_text(2)?,
                    principal: row.opt_text(3)?,
                    upstream: row.opt_text(4)?,
                    tool: row.text(5)?,
                    duration_us: row.int(6)?,
                    outcome: row.text(7)?,
                    error: row.opt_text(8)?,
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        let next = if calls.len() > filter.limit {
            calls.truncate(filter.limit);
            calls.last().map(|call| call.id)
        } else {
            None
        };
        Ok(CallPage { calls, next })
    }

    /// Deletes the calls made before `before` (ms), `batch` at a time so that no statement
    /// holds the table long; how many.
    pub async fn forget_calls_before(&self, before: i64, batch: i64) -> Result<u64, RegistryError> {
        let mut forgotten = 0;
        loop {
            let deleted = self
                .db()
                .execute(
                    "DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE at < $1 LIMIT $2)",
                    values![before, batch],
                )
                .await?;
            forgotten += deleted;
            if deleted < batch.unsigned_abs() {
                return Ok(forgotten);
            }
        }
    }

    /// How many calls are stored, and how many of them failed.
    pub async fn call_counts(&self) -> Result<(i64, i64), RegistryError> {
        let row = self
            .db()
            .row(COUNTS, values![])
            .await?
            .ok_or_else(|| RegistryError::Sql("COUNT answered no row".into()))?;
        Ok((row.int(0)?, row.int(1)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_stored_in_the_fewest_statements_of_the_written_sizes() {
        let sizes = |calls| statement_sizes(calls).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(200), [64, 64, 64, 8]);
        assert_eq!(sizes(127), [64, 32, 16, 8, 4, 2, 1]);
        for calls in 0..300 {
            assert_eq!(sizes(calls).iter().sum::<usize>(), calls);
            assert!(sizes(calls).iter().all(|size| size.is_power_of_two()));
        }
        assert_eq!(INSERTS.len(), 7);
        assert_eq!(INSERTS[6], insert_calls_sql(64));
    }

    /// What SQLite plans for pages of calls: each filter by a name or by a failed outcome is
    /// read from its index in the page's order, not every matching call read and sorted
    /// (`USE TEMP B-TREE`), nor every call read to find the failed ones.
    #[test]
    fn a_page_of_one_tool_upstream_or_failed_outcome_is_read_in_order_from_its_index() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        super::super::migrations::apply_sqlite(&mut db).unwrap();
        let name = Some("echo__echo".to_string());
        let filters = [
            CallFilter {
                tool: name.clone(),
                ..CallFilter::default()
            },
            CallFilter {
                upstream: name.clone(),
                ..CallFilter::default()
            },
            CallFilter {
                tool: name.clone(),
                before: Some(500),
                ..CallFilter::default()
            },
            CallFilter {
                upstream: name.clone(),
                since: Some(1),
                ..CallFilter::default()
            },
            CallFilter {
                tool: name.clone(),
                outcome: Some("error".into()),
                ..CallFilter::default()
            },
            CallFilter {
                outcome: Some("error".into()),
                ..CallFilter::default()
            },
            CallFilter {
                outcome: Some("cancelled".into()),
                since: Some(1),
                ..CallFilter::default()
            },
        ];
        for filter in filters {
            let (sql, values) = page_query(&CallFilter {
                limit: 50,
                ..filter
            });
            // The plan does not depend on the values; their count must match.
            let unknowns = rusqlite::params_from_iter(vec![rusqlite::types::Null; values.len()]);
            let plan: Vec<String> = db
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(unknowns, |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains("USING INDEX calls_"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    /// The counts read indexes, not the table: every scan SQLite plans is of a covering
    /// index (the failed calls' own for the second count).
    #[test]
    fn the_counts_of_calls_read_indexes_alone() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        super::super::migrations::apply_sqlite(&mut db).unwrap();
        let plan: Vec<String> = db
            .prepare(&format!("EXPLAIN QUERY PLAN {COUNTS}"))
            .unwrap()
            .query_map([], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let scans: Vec<&String> = plan
            .iter()
            .filter(|step| step.starts_with("SCAN calls"))
            .collect();
        assert_eq!(scans.len(), 2, "{plan:?}");
        assert!(
            scans
                .iter()
                .all(|scan| scan.contains("USING COVERING INDEX")),
            "{plan:?}"
        );
        assert!(
            plan.iter().any(|step| step.contains("calls_failed")),
            "{plan:?}"
        );
    }

    #[test]
    fn an_insert_of_calls_numbers_its_values_row_after_row() {
        assert_eq!(
            insert_calls_sql(2),
            "INSERT INTO calls (at, client, principal, upstream, tool, duration_us, outcome, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8), ($9, $10, $11, $12, $13, $14, $15, $16)"
        );
    }
}
