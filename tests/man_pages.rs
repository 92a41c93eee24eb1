//! The committed man pages must match the clap definitions they are generated from.

#[test]
fn committed_man_pages_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = chanmon::cli::man_pages().unwrap();
    assert!(pages.len() >= 7, "chanmon.1 plus one page per command");
    for (name, bytes) in pages {
        let committed = std::fs::read(dir.join(&name)).unwrap_or_default();
        assert!(
            committed == bytes,
            "man/{name} is stale: run `cargo run -- man --out-dir man` and commit the result"
        );
    }
}
