//! Serves chanmon's mock LLM upstream on loopback so chanmon can be tried without any API key.
//!
//! ```text
//! cargo run --example mock_upstream -- [--port 8787] [--key test-key]
//! ```
//!
//! It prints its origin, then answers OpenAI (`/v1/chat/completions`, `/v1/responses`),
//! Anthropic (`/v1/messages`) and Gemini (`/v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse`) requests until Ctrl-C. The model name picks the behaviour:
//! any ordinary name answers correctly; `delay-200-300`, `wrong`, `echo`, `empty`, `canned`,
//! `essay`, `thinking`, `thinking-only`, `malformed`, `stall`, `huge`, `refuse`, `safety`,
//! `status-429` (and other codes), `stream-error`, `redirect` and `leak` misbehave on purpose.

#[path = "../tests/support/mock.rs"]
mod mock;

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: mock_upstream [--port PORT] [--key KEY] [--base-path PATH] [--auth-header NAME]\n\
     \n\
     Serves OpenAI, Anthropic and Gemini wire formats on 127.0.0.1 until Ctrl-C.\n\
     --port PORT          port to bind (default 0: any free port)\n\
     --key KEY            the API key to accept (default test-key)\n\
     --base-path PATH     serve under a gateway's path (OpenAI: PATH/chat/completions)\n\
     --auth-header NAME   expect the key in this header (e.g. api-key) for every provider\n"
}

fn parse_args() -> Result<mock::MockOptions, String> {
    let mut opts = mock::MockOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                opts.port = v
                    .parse()
                    .map_err(|_| format!("--port: {v:?} is not a port number"))?;
            }
            "--key" => opts.key = value()?,
            "--base-path" => opts.base_path = value()?,
            "--auth-header" => opts.auth_header = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(why) if why.is_empty() => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprint!("mock_upstream: {why}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mock_upstream: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = mock::MockUpstream::start_with(opts);
    println!("mock upstream listening on {}", server.base_url());
    println!("API key: {}", server.key());
    println!("Ctrl-C to stop");
    if let Err(e) = runtime.block_on(tokio::signal::ctrl_c()) {
        eprintln!("mock_upstream: cannot wait for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    drop(server);
    ExitCode::SUCCESS
}
