//! The mock upstream as a program: try chanmon without any API key.
//!
//!     cargo run --example mock_upstream -- --port 8089 --key test-key
//!     cargo run -- check --config examples/mock.toml --all
//!
//! The model name picks the behaviour (see tests/support/mock.rs): `good`, `delay-200-300`,
//! `wrong`, `thinking`, `status-429`, `stall`, …

#[path = "../tests/support/mock.rs"]
mod mock;

fn main() {
    let mut opts = mock::MockOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => opts.port = p,
                None => fail("--port needs a number"),
            },
            "--key" => match args.next() {
                Some(k) => opts.key = k,
                None => fail("--key needs a value"),
            },
            "-h" | "--help" => {
                println!("usage: mock_upstream [--port N] [--key KEY]");
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let m = mock::MockUpstream::start_with(opts);
    println!(
        "mock upstream listening on {} (key {})",
        m.origin(),
        m.key()
    );
    loop {
        std::thread::park();
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("mock_upstream: {msg}");
    std::process::exit(2)
}
