//! `chanmon verify`: is the database sound? Integrity, sealed keys, monitors the config no
//! longer has, the daemon lock, rollups against raw rows. Reads only (the file is opened
//! read-only), so it is safe while the daemon runs and leaves a damaged file as it is.
//!
//! Exit codes: 0 sound, 1 needs attention, 2 damaged, 3 could not verify.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use super::{Outcome, print};
use crate::cli::VerifyArgs;
use crate::config::{self, Config};
use crate::keys;
use crate::store::{self, OpenMode, RollupAudit, Storage, StoreError};

pub(crate) const EXIT_SOUND: i32 = 0;
pub(crate) const EXIT_ATTENTION: i32 = 1;
pub(crate) const EXIT_DAMAGED: i32 = 2;
pub(crate) const EXIT_UNVERIFIED: i32 = 3;

/// Integrity problems listed before "and N more".
const MAX_PROBLEMS: usize = 10;
/// Monitors (or secrets) listed before "and N more".
const MAX_LISTED: usize = 20;

/// How a finding weighs; the verdict is the heaviest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Info,
    Attention,
    Unverified,
    Damaged,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Attention => "ATTENTION",
            Level::Unverified => "UNVERIFIED",
            Level::Damaged => "DAMAGED",
        }
    }
}

#[derive(Default)]
struct Report {
    lines: Vec<(Level, String)>,
}

impl Report {
    fn add(&mut self, level: Level, text: impl Into<String>) {
        self.lines.push((level, text.into()));
    }

    fn worst(&self) -> Level {
        self.lines
            .iter()
            .map(|(l, _)| *l)
            .max()
            .unwrap_or(Level::Ok)
    }

    /// A store error from one of the checks: damage, or a check that could not run.
    fn failed(&mut self, what: &str, e: &StoreError) {
        match e {
            StoreError::Damaged { detail, .. } => {
                self.add(Level::Damaged, format!("{what}: {detail}"))
            }
            other => self.add(Level::Unverified, format!("{what}: {other}")),
        }
    }

    fn render(&self, db: &str) -> (String, i32) {
        let mut out = format!("chanmon verify: {db}\n");
        for (level, text) in &self.lines {
            let mut lines = text.lines();
            let _ = writeln!(
                out,
                "  {:<10} {}",
                level.label(),
                lines.next().unwrap_or("")
            );
            for more in lines {
                let _ = writeln!(out, "  {:<10} {more}", "");
            }
        }
        let (verdict, code) = match self.worst() {
            Level::Ok | Level::Info => ("sound", EXIT_SOUND),
            Level::Attention => ("needs attention", EXIT_ATTENTION),
            Level::Damaged => (
                "DAMAGED: stop the daemon, keep this file aside, and restore the last good backup (README, \"Backup and restore\"); verify did not change the file",
                EXIT_DAMAGED,
            ),
            Level::Unverified => ("could not verify everything (see above)", EXIT_UNVERIFIED),
        };
        let _ = writeln!(out, "result: {verdict} (exit {code})");
        (out, code)
    }
}

pub(super) fn verify(config_path: &Path, args: VerifyArgs) -> Outcome {
    let config = match config::load(config_path) {
        Ok(l) => l.config,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "chanmon verify: could not verify: {} is not a valid config (exit {EXIT_UNVERIFIED})",
                config_path.display()
            );
            return Ok(EXIT_UNVERIFIED);
        }
    };
    let db = config.database.to_string();
    let mut report = Report::default();
    match store::open(&config.database, OpenMode::ReadOnly) {
        Ok(store) => check_all(store.as_ref(), &config, &args, &mut report),
        Err(e) => report.failed("cannot open the database", &e),
    }
    let (text, code) = report.render(&db);
    if code != EXIT_SOUND || !args.quiet {
        print(&text);
    }
    Ok(code)
}

fn check_all(store: &dyn Storage, config: &Config, args: &VerifyArgs, report: &mut Report) {
    let check = if args.quick {
        "quick_check"
    } else {
        "integrity_check"
    };
    match store.check_integrity(args.quick) {
        Ok(problems) if problems.is_empty() => {
            report.add(Level::Ok, format!("{check}: no problems"));
        }
        Ok(problems) => {
            let mut text = format!(
                "{check} found {} problem{}:",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for p in problems.iter().take(MAX_PROBLEMS) {
                let _ = write!(text, "\n{p}");
            }
            if problems.len() > MAX_PROBLEMS {
                let _ = write!(text, "\n… and {} more", problems.len() - MAX_PROBLEMS);
            }
            report.add(Level::Damaged, text);
        }
        Err(e) => report.failed(check, &e),
    }
    check_keys(store, config, report);
    check_monitors(store, config, report);
    check_daemon(config, report);
    match store.audit_rollups() {
        Ok(audit) => rollup_lines(&audit, report),
        Err(e) => report.failed("comparing rollups with raw rows", &e),
    }
}

/// Does the master key open every sealed secret?
fn check_keys(store: &dyn Storage, config: &Config, report: &mut Report) {
    let key = match keys::current_master_key(config) {
        Ok(k) => k,
        Err(e) => {
            report.add(Level::Attention, format!("{e:#}"));
            return;
        }
    };
    let secrets = match store.sealed_secrets() {
        Ok(s) => s.len(),
        Err(e) => return report.failed("reading the sealed secrets", &e),
    };
    let Some((key, origin)) = key else {
        if secrets > 0 {
            report.add(
                Level::Attention,
                format!(
                    "no master key (neither {} nor the key file {} exists): the {secrets} sealed secrets cannot be checked",
                    crate::secret::MASTER_KEY_ENV,
                    config.master_key_file.display()
                ),
            );
        } else {
            report.add(Level::Ok, "no sealed secrets stored");
        }
        return;
    };
    match keys::audit(store, &key) {
        Ok(a) if a.unopenable.is_empty() => report.add(
            Level::Ok,
            format!(
                "the master key ({origin}) opens all {}",
                super::count(a.total, "sealed secret")
            ),
        ),
        Ok(a) => {
            let mut text = format!(
                "the master key ({origin}) cannot open {} of {} sealed secrets (sealed with another master key? restore that key, or put these monitors' keys in the config and run `chanmon check`):",
                a.unopenable.len(),
                a.total
            );
            for (s, why) in a.unopenable.iter().take(MAX_LISTED) {
                let _ = write!(text, "\n{}: {why}", keys::describe(s));
            }
            if a.unopenable.len() > MAX_LISTED {
                let _ = write!(text, "\n… and {} more", a.unopenable.len() - MAX_LISTED);
            }
            report.add(Level::Attention, text);
        }
        Err(e) => report.failed("opening the sealed secrets", &e),
    }
}

/// Monitors in the database that the config no longer has: kept on purpose, listed.
fn check_monitors(store: &dyn Storage, config: &Config, report: &mut Report) {
    let stored = match store.monitors() {
        Ok(m) => m,
        Err(e) => return report.failed("reading the monitors", &e),
    };
    let configured: BTreeSet<&str> = config.monitors.iter().map(|m| m.id.as_str()).collect();
    let gone: Vec<&str> = stored
        .iter()
        .map(|m| m.id.as_str())
        .filter(|id| !configured.contains(id))
        .collect();
    if gone.is_empty() {
        report.add(
            Level::Info,
            format!(
                "{} stored, all in the config",
                super::count(stored.len(), "monitor")
            ),
        );
    } else {
        let mut listed = gone
            .iter()
            .take(MAX_LISTED)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if gone.len() > MAX_LISTED {
            listed.push_str(&format!(" … and {} more", gone.len() - MAX_LISTED));
        }
        report.add(
            Level::Info,
            format!(
                "{} of {} stored monitors are not in the config (kept on purpose with their history, disabled): {listed}",
                gone.len(),
                stored.len(),
            ),
        );
    }
}

fn check_daemon(config: &Config, report: &mut Report) {
    match store::daemon_lock_holder(&config.database) {
        Ok(None) => report.add(Level::Info, "no daemon holds the database lock"),
        Ok(Some(pid)) if pid.is_empty() => {
            report.add(Level::Info, "a daemon holds the database lock")
        }
        Ok(Some(pid)) => report.add(
            Level::Info,
            format!("a daemon holds the database lock (pid {pid})"),
        ),
        Err(e) => report.failed("reading the daemon lock", &e),
    }
}

fn rollup_lines(audit: &RollupAudit, report: &mut Report) {
    let since = match audit.raw_from {
        Some(t) => format!("hours after the prune watermark {}", t.to_rfc3339()),
        None => "hours (never pruned)".to_owned(),
    };
    if audit.mismatched == 0 {
        report.add(
            Level::Ok,
            format!(
                "rollups agree with raw rows: {} {since}, {} rows",
                audit.hours, audit.rows
            ),
        );
        return;
    }
    let mut text = format!(
        "rollups disagree with raw rows in {} of {} {since} (fix: `chanmon prune --rebuild-rollups`):",
        audit.mismatched, audit.hours
    );
    for m in &audit.mismatches {
        let _ = write!(
            text,
            "\n{} {} hour {}: rollup {} checks, raw rows {}",
            m.monitor,
            m.model,
            m.hour.to_rfc3339(),
            m.rollup_checks,
            m.raw_checks
        );
    }
    if audit.mismatched > audit.mismatches.len() as u64 {
        let _ = write!(
            text,
            "\n… and {} more",
            audit.mismatched - audit.mismatches.len() as u64
        );
    }
    report.add(Level::Attention, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heaviest_finding_decides_the_exit_code() {
        let mut r = Report::default();
        r.add(Level::Ok, "a");
        r.add(Level::Info, "b");
        assert_eq!(r.render("db").1, EXIT_SOUND);
        r.add(Level::Attention, "c");
        assert_eq!(r.render("db").1, EXIT_ATTENTION);
        r.add(Level::Unverified, "d");
        assert_eq!(r.render("db").1, EXIT_UNVERIFIED);
        r.add(Level::Damaged, "e\nsecond line");
        let (text, code) = r.render("db");
        assert_eq!(code, EXIT_DAMAGED);
        assert!(
            text.contains("  DAMAGED    e\n             second line\n"),
            "{text}"
        );
    }
}
