//! The `chanmon` binary: parse arguments, set up logging, run a command, map its outcome to
//! an exit code. Everything else lives in the library.

use clap::Parser;

use chanmon::cli::Cli;
use chanmon::commands::{self, EXIT_RUNTIME};

/// glibc's malloc keeps freed memory in per-thread arenas: after a reload parsed a large config
/// on a blocking thread, the daemon's RSS stayed at its peak (and a second reload on another
/// thread added another). mimalloc returns freed pages to the system. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    chanmon::logging::init(cli.log_format, commands::default_log_filter(&cli.command));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chanmon: error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_RUNTIME);
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(failure) => {
            // Config errors are already one `error: file:line:col: …` line per problem.
            match failure.error.downcast_ref::<chanmon::config::ConfigError>() {
                Some(e) => eprintln!("{e}"),
                None => eprintln!("chanmon: error: {:#}", failure.error),
            }
            failure.code
        }
    };
    // Do not wait for stray blocking tasks (a probe lock wait, say) at exit.
    runtime.shutdown_background();
    std::process::exit(code);
}
