//! `parse` must never panic, whatever the text: arbitrary input, TOML-ish token soup, and
//! random edits of a valid config.

use std::path::Path;

use proptest::prelude::*;

use super::parse;

const VALID: &str = r#"
database = "x.db"
[runner]
workers = 4
tick = "1s"
[network]
allow_cidrs = ["127.0.0.0/8"]
[defaults]
interval = "1m"
headers = { "X-A" = "${A}" }
body = { max_tokens = 8 }
[[monitor]]
id = "m"
provider = "openai"
endpoint = "https://api.openai.com"
api_key_env = "KEY"
model = "gpt-4o-mini"
extra_models = ["o4-mini"]
timeout = "20s"
[monitor.network]
allow_http = true
"#;

const TOKENS: &[&str] = &[
    "[[monitor]]",
    "[monitor.network]",
    "[defaults]",
    "[runner]",
    "[network]",
    "\n",
    " = ",
    "id",
    "provider",
    "\"openai\"",
    "\"gemini\"",
    "model",
    "\"m\"",
    "extra_models",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "${",
    "$$",
    "${A}",
    "}",
    "interval",
    "\"5s\"",
    "\"99999999d\"",
    "timeout",
    "headers",
    "body",
    "endpoint",
    "\"http://[::1]\"",
    "\"https://h/x?y#z\"",
    "api_key",
    "api_key_env",
    "0x7fffffffffffffff",
    "-9223372036854775808",
    "1e999",
    "nan",
    "1979-05-27",
    "true",
    "é",
    "\u{0}",
    "#",
    ".",
    "allow_cidrs",
    "\"::/0\"",
    "max_body",
];

fn env(name: &str) -> Option<String> {
    (name == "A").then(|| "v\"al".to_owned())
}

fn run(text: &str) {
    // Either outcome is fine; a panic is not.
    let _ = parse(text, Path::new("p.toml"), &env);
}

#[test]
fn the_base_config_is_valid() {
    assert!(parse(VALID, Path::new("p.toml"), &env).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        run(&text);
    }

    #[test]
    fn token_soup_never_panics(picks in prop::collection::vec(0..TOKENS.len(), 0..80)) {
        let text: String = picks.into_iter().map(|i| TOKENS[i]).collect();
        run(&text);
    }

    #[test]
    fn mutated_valid_config_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..4u8, 0..TOKENS.len(), any::<char>()), 1..8)
    ) {
        let mut chars: Vec<char> = VALID.chars().collect();
        for (at, op, token, c) in edits {
            if chars.is_empty() {
                break;
            }
            let i = at.index(chars.len());
            match op {
                0 => { chars.remove(i); }
                1 => chars.insert(i, c),
                2 => {
                    for (k, t) in TOKENS[token].chars().enumerate() {
                        chars.insert(i + k, t);
                    }
                }
                _ => {
                    // Drop a whole run up to the next newline.
                    let end = chars[i..].iter().position(|&x| x == '\n').map_or(chars.len(), |p| i + p);
                    chars.drain(i..end);
                }
            }
        }
        let text: String = chars.into_iter().collect();
        run(&text);
    }
}

/// Pieces an attacker (or a sloppy paste) would put in an endpoint.
const URL_PIECES: &[&str] = &[
    "https://",
    "http://",
    "h.example",
    "127.0.0.1",
    "[::1]",
    ":8443",
    "/",
    "//",
    "v1",
    "api",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2f",
    "%5c",
    "%00",
    "%41",
    "\\",
    "@",
    "user:pw@",
    "?",
    "#",
    "key=x",
    " ",
    "\t",
    "{acct}",
    "é",
    ";",
    "~",
    "-_",
];

proptest! {
    /// Whatever `parse_endpoint` accepts is a clean base URL: http(s), a host, no userinfo,
    /// query or fragment, a path with no dot, empty or disguised segments, and stable when
    /// written out and read again (so what is stored is what is called).
    #[test]
    fn accepted_endpoints_are_clean(parts in proptest::collection::vec(0..URL_PIECES.len(), 1..12)) {
        let text: String = parts.iter().map(|&i| URL_PIECES[i]).collect();
        if let Ok(url) = super::validate::parse_endpoint(&text) {
            prop_assert!(matches!(url.scheme(), "http" | "https"), "{text}");
            prop_assert!(url.host().is_some() && url.username().is_empty() && url.password().is_none());
            prop_assert!(url.query().is_none() && url.fragment().is_none(), "{text}");
            let path = url.path().to_ascii_lowercase();
            prop_assert!(path == "/" || !path.ends_with('/'), "{text}");
            for seg in path.split('/').skip(1) {
                prop_assert!(path == "/" || !seg.is_empty(), "{text}");
                prop_assert!(seg != "." && seg != "..", "{text}");
            }
            prop_assert!(!path.contains("%2e") && !path.contains("%2f") && !path.contains("%5c"), "{text}");
            prop_assert!(!url.as_str().contains(char::is_whitespace), "{text}");
            let again = super::validate::parse_endpoint(url.as_str());
            prop_assert_eq!(again.as_ref().ok(), Some(&url), "{}", text);
        }
    }
}
