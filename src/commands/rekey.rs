//! `chanmon rekey`: re-seal every stored secret under a new master key, in one transaction.
//!
//! Refused while a daemon runs on the database: the daemon holds the old key in memory and
//! would keep sealing with it. Rekey takes the daemon lock itself for its whole run, so no
//! daemon starts meanwhile; a `chanmon check` that syncs meanwhile makes the swap fail (it is a
//! compare-and-swap) and nothing is written.

use std::path::Path;

use anyhow::{Context, anyhow};

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading, print};
use crate::cli::RekeyArgs;
use crate::keys;
use crate::secret::{KeyOrigin, MASTER_KEY_ENV, MASTER_KEY_NEW_ENV};
use crate::store::{self, OpenMode, StoreError};

pub(super) fn rekey(config_path: &Path, args: RekeyArgs) -> Outcome {
    let config = load_config_for_reading(config_path)?;
    let _lock = match store::daemon_lock(&config.database) {
        Ok(l) => l,
        Err(StoreError::DaemonRunning { holder, .. }) => {
            return Err(anyhow!(
                "a chanmon daemon{holder} runs on {}: stop it first, then rekey, install the new key, and start it again (rekey never runs beside a daemon, which would keep sealing with the old key); nothing was written",
                config.database
            ))
            .or_exit(EXIT_RUNTIME);
        }
        Err(e) => return Err(e).or_exit(EXIT_RUNTIME),
    };
    let (new, new_origin) =
        keys::new_master_key(args.new_key_file.as_deref()).or_exit(EXIT_CONFIG)?;
    let (old, old_origin) = keys::current_master_key(&config)
        .or_exit(EXIT_CONFIG)?
        .with_context(|| {
            format!(
                "no current master key: set {MASTER_KEY_ENV} or create the key file {}",
                config.master_key_file.display()
            )
        })
        .or_exit(EXIT_CONFIG)?;
    let mut db = store::open(&config.database, OpenMode::Existing).or_exit(EXIT_RUNTIME)?;
    let report = keys::rekey(db.as_mut(), &old, &new, args.forget_unreadable)
        .with_context(|| format!("rekeying {}", config.database))
        .or_exit(EXIT_RUNTIME)?;
    let new_where = match &new_origin {
        KeyOrigin::Env => format!("${MASTER_KEY_NEW_ENV}"),
        KeyOrigin::File(p) => format!("key file {}", p.display()),
        KeyOrigin::Created(p) => format!("new key file {} (created, mode 0600)", p.display()),
    };
    let mut out = format!(
        "re-sealed {} of {} under the new master key ({new_where}) in one transaction",
        super::count(report.resealed, "secret"),
        super::count(report.monitors, "monitor")
    );
    if report.already_new > 0 {
        out.push_str(&format!(
            "; {} were sealed with the new key already",
            report.already_new
        ));
    }
    if !report.forgotten.is_empty() {
        out.push_str(&format!(
            "; emptied (neither key opened them): {}",
            report.forgotten.join(", ")
        ));
    }
    out.push_str(&format!(
        ".\nThe old key ({old_origin}) opens nothing in {} now. Before starting chanmon again, make the new key the master key: {}. Backups taken before now still need the old key.",
        config.database,
        match &old_origin {
            KeyOrigin::Env => format!("set {MASTER_KEY_ENV} to it"),
            KeyOrigin::File(p) | KeyOrigin::Created(p) => format!(
                "replace {} with it (or set {MASTER_KEY_ENV})",
                p.display()
            ),
        }
    ));
    print(&out);
    Ok(0)
}
