//! Every file in `tests/bad_configs/` must fail to load with an error at the line and with the
//! text its header announces:
//!
//! ```toml
//! # expect-line: 7
//! # expect: substring of the message
//! ```
//!
//! The same files drive the binary-level test of `chanmon validate`, so keep that header format.

use std::fs;
use std::path::{Path, PathBuf};

struct Expectation {
    line: usize,
    text: String,
}

fn expectation(path: &Path) -> Expectation {
    let content = fs::read_to_string(path).unwrap();
    let mut lines = content.lines();
    let line = lines
        .next()
        .and_then(|l| l.strip_prefix("# expect-line: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: first line must be `# expect-line: N`", path.display()));
    let text = lines
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{}: second line must be `# expect: text`", path.display()))
        .to_owned();
    Expectation { line, text }
}

fn bad_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_configs");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn there_are_enough_bad_configs() {
    assert!(bad_configs().len() >= 25, "{}", bad_configs().len());
}

#[test]
fn each_bad_config_fails_where_it_says() {
    let mut failures = Vec::new();
    for path in bad_configs() {
        let want = expectation(&path);
        let outcome = std::panic::catch_unwind(|| chanmon::config::load(&path));
        let err = match outcome {
            Err(_) => {
                failures.push(format!("{}: panicked", path.display()));
                continue;
            }
            Ok(Ok(_)) => {
                failures.push(format!("{}: loaded without error", path.display()));
                continue;
            }
            Ok(Err(e)) => e,
        };
        let shown = err.to_string();
        let at_line = err
            .errors
            .iter()
            .any(|d| d.line == want.line && d.message.contains(&want.text));
        if !at_line || !shown.contains(&format!(":{}:", want.line)) {
            failures.push(format!(
                "{}: expected an error at line {} containing {:?}; got:\n{shown}",
                path.display(),
                want.line,
                want.text
            ));
        }
        // Every diagnostic names the file it came from.
        assert!(err.errors.iter().all(|d| d.file == path), "{shown}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
