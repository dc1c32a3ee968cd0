//! Files uploaded through the API, kept in the registry so that every gateway on the database
//! has them in its own `uploads/` (see `admin/uploads.rs`). An upload is never replaced.

use super::{Registry, RegistryError, changes::Change, engine::values};

impl Registry {
    /// Keeps upload `name`, uploaded at `at`, and announces it; `false` (and nothing kept)
    /// when an upload of that name is kept already.
    pub async fn save_upload(
        &self,
        name: &str,
        content: &[u8],
        at: i64,
    ) -> Result<bool, RegistryError> {
        let saved = self
            .db()
            .execute(
                "INSERT INTO uploads (name, content, uploaded_at) VALUES ($1, $2, $3)
                ON CONFLICT (name) DO NOTHING",
                values![name, content, at],
            )
            .await?
            > 0;
        if saved {
            self.announce(Change::Uploads).await;
        }
        Ok(saved)
    }

    /// The names of the uploads kept.
    pub async fn upload_names(&self) -> Result<Vec<String>, RegistryError> {
        self.db()
            .rows("SELECT name FROM uploads ORDER BY name", values![])
            .await?
            .into_iter()
            .map(|row| row.text(0))
            .collect()
    }

    /// Upload `name`'s content, if it is kept.
    pub async fn upload(&self, name: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        self.db()
            .row("SELECT content FROM uploads WHERE name = $1", values![name])
            .await?
            .map(|row| row.bytes(0))
            .transpose()
    }
}
