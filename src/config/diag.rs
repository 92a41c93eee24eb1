//! Collects every problem found in one config file and turns byte offsets into 1-based
//! line:column positions.
//!
//! Validation never stops at the first problem: each check reports here and carries on, and
//! the caller decides at the end whether the config is usable.
//!
//! Positions come from a [`LineIndex`] built once per file (the start offset of every line,
//! searched by bisection): a config of 100,000 monitors asks for a line per monitor, and
//! scanning the text from its start for each one made loading quadratic.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::Diagnostic;

/// A byte range in the config text.
pub(crate) type Span = Range<usize>;

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sp<T> {
    pub v: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub(super) fn new(v: T, span: Span) -> Self {
        Sp { v, span }
    }
}

pub(crate) struct Diags<'a> {
    file: &'a Path,
    text: &'a str,
    /// Where each line starts, built once: every position is a binary search plus a scan of
    /// one line for the column.
    lines: LineIndex,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Values whose `${VAR}` interpolation failed. Any later complaint about the same value
    /// (an endpoint that does not parse, an empty key) would only repeat that problem.
    poisoned: HashSet<(usize, usize)>,
    /// PEM files named by `[network]` tables, read once per parse however many monitors name
    /// them (a fleet of 100,000 `[monitor.network]` tables may share one `ca_file`).
    pub(super) pem_cache: HashMap<PathBuf, Result<crate::net::PemFile, String>>,
    /// The same for client certificate + key pairs (the error says whether it is the key's).
    pub(super) identity_cache: IdentityCache,
}

type IdentityCache =
    HashMap<(PathBuf, PathBuf), Result<crate::net::ClientIdentity, (bool, String)>>;

impl<'a> Diags<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Self {
        Diags {
            file,
            text,
            lines: LineIndex::new(text),
            errors: Vec::new(),
            warnings: Vec::new(),
            poisoned: HashSet::new(),
            pem_cache: HashMap::new(),
            identity_cache: HashMap::new(),
        }
    }

    /// The directory relative paths in the config are read from: the config file's.
    pub(super) fn base_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new(""))
    }

    pub(super) fn error(&mut self, span: &Span, message: impl Into<String>) {
        if self.poisoned.contains(&(span.start, span.end)) {
            return;
        }
        let d = self.at(span.start, message.into());
        self.errors.push(d);
    }

    /// A problem with the file as a whole (no position).
    pub(super) fn file_error(&mut self, message: impl Into<String>) {
        let d = self.file_level(message.into());
        self.errors.push(d);
    }

    pub(super) fn warn(&mut self, span: &Span, message: impl Into<String>) {
        let d = self.at(span.start, message.into());
        self.warnings.push(d);
    }

    pub(super) fn file_warn(&mut self, message: impl Into<String>) {
        let d = self.file_level(message.into());
        self.warnings.push(d);
    }

    /// Marks a value whose interpolation failed (see `poisoned`).
    pub(super) fn poison(&mut self, span: &Span) {
        self.poisoned.insert((span.start, span.end));
    }

    pub(super) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// 1-based line of a byte offset.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.lines.line(offset)
    }

    /// Errors and warnings, each sorted by position with exact repeats removed.
    pub(super) fn finish(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        (sorted(self.errors), sorted(self.warnings))
    }

    fn at(&self, offset: usize, message: String) -> Diagnostic {
        let (line, column) = self.lines.position(self.text, offset);
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        }
    }

    fn file_level(&self, message: String) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            line: 0,
            column: 0,
            message,
        }
    }
}

fn sorted(mut v: Vec<Diagnostic>) -> Vec<Diagnostic> {
    // Stable: problems at the same position keep the order they were found in.
    v.sort_by_key(|d| (d.line, d.column));
    let mut seen = HashSet::new();
    v.retain(|d| seen.insert((d.line, d.column, d.message.clone())));
    v
}

/// The byte offset at which each line of a text starts (the first is 0), in order.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        #[cfg(test)]
        counters::BUILDS.with(|c| c.set(c.get() + 1));
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex { starts }
    }

    /// 1-based line of a byte offset (an offset past the end is on the last line).
    pub(crate) fn line(&self, offset: usize) -> usize {
        // The number of line starts at or before `offset`; `starts[0] == 0` makes it ≥ 1.
        self.starts.partition_point(|&s| s <= offset)
    }

    /// 1-based (line, column) of a byte offset in `text` (the text this index was built
    /// from); the column counts characters, not bytes. Works on bytes so that an offset that
    /// is out of range or inside a character cannot panic.
    pub(crate) fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let bytes = text.as_bytes();
        let offset = offset.min(bytes.len());
        let line = self.line(offset);
        let line_start = self.starts[line - 1].min(offset);
        let in_line = &bytes[line_start..offset];
        #[cfg(test)]
        counters::SCANNED.with(|c| c.set(c.get() + in_line.len()));
        // UTF-8 continuation bytes are 0b10xx_xxxx; every other byte starts a character.
        let column = 1 + in_line.iter().filter(|&&b| b & 0xC0 != 0x80).count();
        (line, column)
    }
}

/// 1-based (line, column) of a byte offset, for a one-off position (building the index is a
/// scan of the text: keep a [`LineIndex`] when asking more than once).
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).position(text, offset)
}

/// Work counters, per thread so that tests running side by side do not see each other's:
/// how many line indexes were built and how many bytes were scanned for columns. A test of a
/// 100,000-monitor config asserts on them that loading is linear.
#[cfg(test)]
pub(crate) mod counters {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static BUILDS: Cell<usize> = const { Cell::new(0) };
        pub(crate) static SCANNED: Cell<usize> = const { Cell::new(0) };
    }

    /// (index builds, bytes scanned) on this thread since the last call; resets both.
    pub(crate) fn take() -> (usize, usize) {
        (
            BUILDS.with(|c| c.replace(0)),
            SCANNED.with(|c| c.replace(0)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 4), (1, 5));
        assert_eq!(position(text, 6), (2, 1));
        // `=` after `bé `: byte 10, but the fourth character of the line.
        assert_eq!(position(text, 10), (2, 4));
        // Out of range and mid-character offsets do not panic.
        assert_eq!(position(text, 1000).0, 3);
        assert_eq!(position(text, 8), (2, 3));
    }

    #[test]
    fn poisoned_spans_are_silenced_and_output_is_sorted() {
        let text = "a\nb\nc\n";
        let mut d = Diags::new(Path::new("x.toml"), text);
        d.error(&(4..5), "third");
        d.error(&(0..1), "first");
        d.error(&(0..1), "first");
        d.poison(&(2..3));
        d.error(&(2..3), "hidden");
        let (errors, _) = d.finish();
        let lines: Vec<_> = errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(lines, vec![(1, "first"), (3, "third")]);
    }
}
