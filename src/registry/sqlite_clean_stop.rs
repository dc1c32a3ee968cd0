//! The mark a clean stop leaves beside an SQLite database, `<file>-closed`: the file's length
//! and modification time as the stop left them.
//!
//! The integrity check at start reads every page of the file, so its cost grows with the call
//! history (130 ms warm for 200,000 calls, and paid by every launch of `mcps stdio`). A file
//! that still matches its mark, with no write-ahead log left over, is the one a clean stop
//! closed: nothing has written it since, and it is not read through again. Any other file (a
//! first run, a crash, a file copied in or changed by hand) is checked.
//!
//! A modification time moves with the kernel's coarse clock: a change of the same length within
//! the tick of the stop's own last write would go unseen here. SQLite still refuses a damaged
//! page when a query reads it; the check at start only finds it sooner.

use std::{
    io,
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use super::beside;

/// Whether `database` is exactly as a clean stop left it. The mark is taken away either way:
/// the file is about to be written, and only the next clean stop may say it is whole again.
pub fn take(database: &Path) -> bool {
    let mark = mark_of(database);
    let recorded = std::fs::read_to_string(&mark).ok();
    if recorded.is_some()
        && let Err(error) = std::fs::remove_file(&mark)
    {
        // Left in place, it still cannot vouch for a file written later: every write moves
        // the file's modification time or leaves a write-ahead log behind.
        tracing::warn!(mark = %mark.display(), %error, "cannot remove the database's clean-stop mark");
    }
    let log_left_over = std::fs::metadata(beside(database, "-wal")).is_ok_and(|log| log.len() > 0);
    !log_left_over && recorded.is_some_and(|recorded| fingerprint(database).ok() == Some(recorded))
}

/// Marks `database` as closed cleanly, as it is now. Call it once its last connection is
/// closed and its write-ahead log merged.
pub fn leave(database: &Path) -> io::Result<()> {
    std::fs::write(mark_of(database), fingerprint(database)?)
}

fn mark_of(database: &Path) -> PathBuf {
    beside(database, "-closed")
}

fn fingerprint(database: &Path) -> io::Result<String> {
    let metadata = std::fs::metadata(database)?;
    let modified = metadata
        .modified()?
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(format!("{} {}\n", metadata.len(), modified.as_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcps.db");
        std::fs::write(&file, b"pages").unwrap();
        (dir, file)
    }

    #[test]
    fn a_file_as_its_clean_stop_left_it_is_whole_once() {
        let (_dir, file) = database();
        leave(&file).unwrap();
        assert!(take(&file));
        assert!(!mark_of(&file).exists(), "the mark is taken");
        assert!(!take(&file), "a file opened since is not vouched for");
    }

    #[test]
    fn a_file_never_marked_is_not_whole() {
        let (_dir, file) = database();
        assert!(!take(&file));
    }

    #[test]
    fn a_file_written_after_its_mark_is_not_whole() {
        let (_dir, file) = database();
        leave(&file).unwrap();
        std::fs::write(&file, b"other").unwrap();
        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        // The same length, and a modification time set apart from the mark's by hand, in
        // case the file system's clock is coarse.
        let file_handle = std::fs::File::options().write(true).open(&file).unwrap();
        file_handle
            .set_modified(modified + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(!take(&file));
    }

    #[test]
    fn a_write_ahead_log_left_over_means_a_stop_that_was_not_clean() {
        let (_dir, file) = database();
        leave(&file).unwrap();
        std::fs::write(beside(&file, "-wal"), b"frames").unwrap();
        assert!(!take(&file));
        leave(&file).unwrap();
        std::fs::write(beside(&file, "-wal"), b"").unwrap();
        assert!(take(&file), "an empty log holds nothing");
    }
}
