//! A newline-delimited reader whose memory never exceeds its cap, for the stdio streams we parse
//! ourselves (a client's stdin, an upstream's stderr).
//!
//! `AsyncBufReadExt::read_line` buffers until it sees a newline, so a peer that never sends one
//! grows our memory without bound. Here an over-long line is reported once as
//! [`Line::Oversized`] (with its first `cap` bytes, for logs) and its remainder is skipped.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// Writes `message` as one JSON line under `writer`'s lock, so the lines of several writers
/// never interleave; the other half of the stdio streams we speak ourselves.
pub async fn write_json_line<W: AsyncWrite + Unpin>(
    writer: &tokio::sync::Mutex<W>,
    message: &impl serde::Serialize,
) -> std::io::Result<()> {
    write_line(writer, &json_line(message)?).await
}

/// `message` as JSON, ended by a newline.
pub fn json_line(message: &impl serde::Serialize) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// Writes one whole line under `writer`'s lock.
pub async fn write_line<W: AsyncWrite + Unpin>(
    writer: &tokio::sync::Mutex<W>,
    line: &[u8],
) -> std::io::Result<()> {
    let mut writer = writer.lock().await;
    writer.write_all(line).await?;
    writer.flush().await
}

/// One read from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, without its `\n` (and without a `\r` before it).
    Complete(&'a [u8]),
    /// A line longer than the cap: its first `cap` bytes. The rest is dropped unread.
    Oversized(&'a [u8]),
}

/// Reads capped lines from a buffered reader.
pub struct LineReader<R> {
    reader: R,
    cap: usize,
    line: Vec<u8>,
    /// Set while skipping the tail of an oversized line.
    skipping: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(reader: R, cap: usize) -> Self {
        Self {
            reader,
            cap,
            line: Vec::new(),
            skipping: false,
        }
    }

    /// The next line, or `None` at end of stream (a final unterminated line is still returned).
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        self.line.clear();
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                if self.line.is_empty() || self.skipping {
                    return Ok(None);
                }
                return Ok(Some(Line::Complete(trim_cr(&self.line))));
            }
            let newline = available.iter().position(|byte| *byte == b'\n');
            let chunk_end = newline.unwrap_or(available.len());
            if self.skipping {
                self.reader.consume(newline.map_or(chunk_end, |at| at + 1));
                if newline.is_some() {
                    self.skipping = false;
                }
                continue;
            }
            let room = self.cap.saturating_sub(self.line.len());
            if chunk_end > room {
                self.line.extend_from_slice(&available[..room]);
                // Drop what is left of this line, now or on later reads.
                self.skipping = newline.is_none();
                self.reader.consume(newline.map_or(chunk_end, |at| at + 1));
                return Ok(Some(Line::Oversized(&self.line)));
            }
            self.line.extend_from_slice(&available[..chunk_end]);
            match newline {
                Some(at) => {
                    self.reader.consume(at + 1);
                    return Ok(Some(Line::Complete(trim_cr(&self.line))));
                }
                None => self.reader.consume(chunk_end),
            }
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], cap: usize) -> Vec<String> {
        let reader = tokio::io::BufReader::with_capacity(4, input);
        let mut lines = LineReader::new(reader, cap);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            out.push(match line {
                Line::Complete(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Line::Oversized(bytes) => format!("OVERSIZED:{}", String::from_utf8_lossy(bytes)),
            });
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_strips_crlf() {
        assert_eq!(lines(b"ab\r\ncd\nef", 10).await, ["ab", "cd", "ef"]);
    }

    #[tokio::test]
    async fn oversized_line_is_reported_once_and_skipped() {
        assert_eq!(
            lines(b"ok\n0123456789abcdef\nnext\n", 6).await,
            ["ok", "OVERSIZED:012345", "next"]
        );
    }

    #[tokio::test]
    async fn line_of_exactly_the_cap_is_whole() {
        assert_eq!(lines(b"123456\n", 6).await, ["123456"]);
    }

    #[tokio::test]
    async fn oversized_unterminated_tail_ends_the_stream() {
        assert_eq!(lines(b"0123456789", 4).await, ["OVERSIZED:0123"]);
    }
}
