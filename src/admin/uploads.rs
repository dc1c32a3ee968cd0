//! Uploaded files, the same on every gateway of a registry: an upload is written to this
//! gateway's `uploads/` and kept in the registry (`registry/uploads.rs`); every gateway on the
//! database writes the uploads it lacks into its own `uploads/` when one is announced, and at
//! each resync. A file an operator put in `uploads/` by hand is kept in the registry at the
//! next resync, and so reaches the others too (the files of an SQLite registry copied to
//! PostgreSQL with `mcps db copy` among them).
//!
//! A file appears in `uploads/` whole or not at all: it is written under a hidden partial name
//! (which no upload can have) and linked into place.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use super::{AdminState, error::ApiError};
use crate::registry::{RegistryError, now_ms};

/// Whether `name` is a plain file name that stays inside the upload directory: no `/`, `\\`,
/// `..`, control characters or leading `.` (hidden names are the partial files'), and one
/// normal path component.
pub(super) fn is_plain_file_name(name: &str) -> bool {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.contains("..")
        && !name.chars().any(char::is_control);
    let mut components = Path::new(name).components();
    plain
        && matches!(
            (components.next(), components.next()),
            (Some(std::path::Component::Normal(_)), None)
        )
}

/// Where a gateway's uploads are, under its data directory.
pub(super) fn uploads_dir(state: &AdminState) -> PathBuf {
    state.data_dir.join("uploads")
}

/// A new, hidden file in `dir` for a file on its way in.
async fn partial(dir: &Path) -> std::io::Result<(PathBuf, tokio::fs::File)> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    let suffix: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let path = dir.join(format!(".partial-{suffix}"));
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .await?;
    Ok((path, file))
}

/// Keeps upload `name`: in the registry (refused when another gateway kept one of that name
/// first), then in `uploads/`.
pub(super) async fn keep(state: &AdminState, name: &str, content: &[u8]) -> Result<(), ApiError> {
    let saved = state
        .registry
        .save_upload(name, content, now_ms())
        .await
        .map_err(|error| {
            ApiError::internal(format!("cannot keep the upload in the registry: {error}"))
        })?;
    if !saved {
        return Err(ApiError::conflict(format!(
            "an upload named {name:?} exists"
        )));
    }
    write_whole(&uploads_dir(state), name, content)
        .await
        .map_err(|error| ApiError::internal(format!("cannot store the upload: {error}")))
}

/// Gives `partial` the name `path` unless a file has it (one written meanwhile from the
/// registry holds the same content).
async fn link_into_place(partial: &Path, path: &Path) -> std::io::Result<()> {
    match tokio::fs::hard_link(partial, path).await {
        Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => Err(error),
        _ => Ok(()),
    }
}

/// Writes the uploads kept in the registry that `uploads/` lacks, and keeps in the registry
/// the files of `uploads/` it lacks.
pub(super) async fn sync(state: &AdminState) -> Result<(), RegistryError> {
    let dir = uploads_dir(state);
    let kept: HashSet<String> = state.registry.upload_names().await?.into_iter().collect();
    let here = files_in(&dir).await;
    for name in kept.difference(&here) {
        if !is_plain_file_name(name) {
            tracing::warn!(file = %name, "an upload kept in the registry has a name that would leave uploads/; not written");
            continue;
        }
        let Some(content) = state.registry.upload(name).await? else {
            continue;
        };
        if let Err(error) = write_whole(&dir, name, &content).await {
            tracing::warn!(file = %name, %error, "cannot write an upload kept in the registry here");
        } else {
            tracing::info!(file = %name, size = content.len(), "upload taken from the registry");
        }
    }
    for name in here.difference(&kept) {
        let path = dir.join(name);
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.len() > state.config.limits.max_upload_bytes as u64 => {
                tracing::debug!(file = %name, "a file in uploads/ is larger than limits.max_upload_bytes; not shared");
                continue;
            }
            Ok(_) => {}
            Err(_) => continue,
        }
        let Ok(content) = tokio::fs::read(&path).await else {
            continue;
        };
        if state.registry.save_upload(name, &content, now_ms()).await? {
            tracing::info!(file = %name, "a file in uploads/ kept in the registry for the other gateways");
        }
    }
    Ok(())
}

/// The plain files in `dir` (none when it does not exist), without the hidden partial ones.
async fn files_in(dir: &Path) -> HashSet<String> {
    let mut names = HashSet::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return names;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let is_file = entry.file_type().await.is_ok_and(|kind| kind.is_file());
        if let Some(name) = entry.file_name().to_str()
            && is_file
            && !name.starts_with('.')
        {
            names.insert(name.to_owned());
        }
    }
    names
}

/// Writes `content` to `dir/name`, whole or not at all.
async fn write_whole(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    tokio::fs::create_dir_all(dir).await?;
    let (partial, mut file) = partial(dir).await?;
    let written = async {
        file.write_all(content).await?;
        file.sync_all().await?;
        link_into_place(&partial, &dir.join(name)).await
    }
    .await;
    let _ = tokio::fs::remove_file(&partial).await;
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_stored() {
        assert!(is_plain_file_name("report.pdf"));
        for bad in [
            "",
            "../x",
            "a/b",
            "..",
            ".env",
            ".partial-00",
            "a\\b",
            "x..y",
            "a\0b",
            "/etc/passwd",
        ] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }
}
