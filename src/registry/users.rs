//! Users and their passwords (argon2id; hashing runs on the blocking pool, never on the
//! executor or the database thread).
//!
//! Argon2 is built to be costly (about 19 MiB and tens of milliseconds per hash), so it runs
//! one hash at a time and at most [`MAX_WAITING`] more wait for their turn; beyond that a
//! login is refused as busy. However many logins arrive, password work takes one core and
//! one hash's memory, and the rest of the machine keeps serving calls.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Registry, RegistryError, engine::values, now_ms};

/// A user, without the password hash.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    pub created_at: i64,
}

/// Logins and password changes waiting for their turn, beyond which more are refused.
const MAX_WAITING: usize = 16;

/// One hash at a time.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// A turn at hashing, or [`RegistryError::Busy`] when too many are waiting already.
async fn hashing_turn() -> Result<tokio::sync::SemaphorePermit<'static>, RegistryError> {
    if WAITING.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
        WAITING.fetch_sub(1, Ordering::AcqRel);
        return Err(RegistryError::Busy(
            "too many logins at once; try again in a second".into(),
        ));
    }
    let turn = HASHING.acquire().await;
    WAITING.fetch_sub(1, Ordering::AcqRel);
    turn.map_err(|_| RegistryError::Busy("password checks have stopped".into()))
}

async fn hash(password: String) -> Result<String, RegistryError> {
    let _turn = hashing_turn().await?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| RegistryError::Sql(format!("cannot hash the password: {error}")))
    })
    .await
    .map_err(|error| RegistryError::Sql(error.to_string()))?
}

async fn verify(password: String, stored: String) -> Result<bool, RegistryError> {
    let _turn = hashing_turn().await?;
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false))
}

impl Registry {
    /// Whether any user exists (on first run none does).
    pub async fn has_users(&self) -> Result<bool, RegistryError> {
        let row = self
            .db()
            .row("SELECT EXISTS (SELECT 1 FROM users)", values![])
            .await?;
        row.map_or(Ok(false), |row| row.bool(0))
    }

    /// Creates a user; a taken username is a conflict.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        is_admin: bool,
    ) -> Result<User, RegistryError> {
        let password_hash = hash(password.to_owned()).await?;
        let created_at = now_ms();
        let inserted = self
            .db()
            .row(
                "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (username) DO NOTHING RETURNING id",
                values![username, password_hash, is_admin, created_at],
            )
            .await?
            .ok_or_else(|| RegistryError::Conflict(format!("user {username:?} exists")))?;
        Ok(User {
            id: inserted.int(0)?,
            username: username.to_owned(),
            is_admin,
            created_at,
        })
    }

    /// The user with this name and password, or `None` (wrong name or wrong password look
    /// the same to the caller, and take the same time).
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, RegistryError> {
        let found = self
            .db()
            .row(
                "SELECT id, username, is_admin, created_at, password_hash FROM users WHERE username = $1",
                values![username],
            )
            .await?
            .map(|row| -> Result<_, RegistryError> {
                let user = User {
                    id: row.int(0)?,
                    username: row.text(1)?,
                    is_admin: row.bool(2)?,
                    created_at: row.int(3)?,
                };
                Ok((user, row.text(4)?))
            })
            .transpose()?;
        match found {
            Some((user, stored)) => Ok(verify(password.to_owned(), stored).await?.then_some(user)),
            None => {
                // Spend the same effort as a real check, so timing does not tell which
                // usernames exist.
                hash(password.to_owned()).await?;
                Ok(None)
            }
        }
    }
}
