//! The last log lines, kept in memory for the web console's logs page: what the gateway
//! wrote on stderr lately, without a shell on its machine.

use std::{
    collections::VecDeque,
    io,
    sync::{Mutex, OnceLock},
};

use tracing_subscriber::fmt::MakeWriter;

use crate::sync::lock;

/// How many lines are kept.
const KEPT: usize = 500;

/// The lines, oldest first. Empty until the logger is installed.
static RECENT: OnceLock<Recent> = OnceLock::new();

#[derive(Default)]
pub(super) struct Recent {
    lines: Mutex<VecDeque<String>>,
}

/// The recent log lines, oldest first.
pub fn recent_lines() -> Vec<String> {
    RECENT
        .get()
        .map(|recent| lock(&recent.lines).iter().cloned().collect())
        .unwrap_or_default()
}

impl Recent {
    /// The process's one keeper of lines.
    pub(super) fn installed() -> &'static Self {
        RECENT.get_or_init(Self::default)
    }

    fn keep(&self, text: &str) {
        let mut lines = lock(&self.lines);
        for line in text.lines().filter(|line| !line.is_empty()) {
            if lines.len() == KEPT {
                lines.pop_front();
            }
            lines.push_back(line.to_owned());
        }
    }
}

/// One event's text, kept when it is written whole.
pub(super) struct Line {
    recent: &'static Recent,
    text: Vec<u8>,
}

impl io::Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.recent.keep(&String::from_utf8_lossy(&self.text));
    }
}

impl<'a> MakeWriter<'a> for &'static Recent {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            recent: self,
            text: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn the_newest_lines_are_kept() {
        let recent: &'static Recent = Box::leak(Box::default());
        for n in 0..KEPT + 2 {
            let mut line = recent.make_writer();
            writeln!(line, "line {n}").unwrap();
        }
        let lines = lock(&recent.lines);
        assert_eq!(lines.len(), KEPT);
        assert_eq!(lines.front().map(String::as_str), Some("line 2"));
        assert_eq!(
            lines.back().map(String::as_str),
            Some(&*format!("line {}", KEPT + 1))
        );
    }
}
