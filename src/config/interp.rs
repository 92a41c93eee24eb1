//! `${VAR}` interpolation of string values.
//!
//! It runs on the parsed document, not on the raw text, so a variable whose value contains a
//! quote or a newline cannot change the TOML structure, and every error still points at the
//! string it came from.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Diags;

/// Environment lookup: `None` means the variable is unset.
pub(crate) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpError {
    Unset(String),
    Unterminated,
    BadName(String),
}

impl InterpError {
    pub(super) fn message(&self) -> String {
        match self {
            InterpError::Unset(name) => format!(
                "environment variable `{name}` is not set (used as ${{{name}}}); set it, or write `$$` for a literal `$`"
            ),
            InterpError::Unterminated => {
                "`${` without a closing `}`; write ${NAME}, or `$$` for a literal `$`".to_owned()
            }
            InterpError::BadName(name) => format!(
                "`${{{name}}}` is not a variable reference: names are ASCII letters, digits and `_`, not starting with a digit (write `$$` for a literal `$`)"
            ),
        }
    }
}

/// A valid environment variable name for `${NAME}` and `api_key_env`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces `${NAME}` with the variable's value and `$$` with `$`. Any other `$` is kept as is.
pub(crate) fn interpolate<'s>(s: &'s str, env: Env<'_>) -> Result<Cow<'s, str>, InterpError> {
    if !s.contains('$') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or(InterpError::Unterminated)?;
            let name = &tail[..end];
            if !is_var_name(name) {
                return Err(InterpError::BadName(name.to_owned()));
            }
            let value = env(name).ok_or_else(|| InterpError::Unset(name.to_owned()))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Interpolates every string value in the document, at any depth. Failures are reported at
/// the string's position, and the string is left as written.
pub(crate) fn interpolate_table(table: &mut DeTable<'_>, env: Env<'_>, d: &mut Diags<'_>) {
    for (_, value) in table.iter_mut() {
        interpolate_value(value, env, d);
    }
}

fn interpolate_value(value: &mut Spanned<DeValue<'_>>, env: Env<'_>, d: &mut Diags<'_>) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) => match interpolate(s, env) {
            Ok(Cow::Borrowed(_)) => {}
            Ok(Cow::Owned(new)) => *s = Cow::Owned(new),
            Err(e) => {
                d.error(&span, e.message());
                d.poison(&span);
            }
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                interpolate_value(item, env, d);
            }
        }
        DeValue::Table(t) => interpolate_table(t, env, d),
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".to_owned()),
            "QUOTE" => Some("a\"b\nc".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(s: &str) -> Result<String, InterpError> {
        interpolate(s, &env).map(Cow::into_owned)
    }

    #[test]
    fn replaces_variables_and_escapes() {
        assert_eq!(run("Bearer ${KEY}").unwrap(), "Bearer sk-123");
        assert_eq!(run("${KEY}${KEY}").unwrap(), "sk-123sk-123");
        assert_eq!(run("$${KEY}").unwrap(), "${KEY}");
        assert_eq!(run("cost $$5").unwrap(), "cost $5");
        assert_eq!(run("$$$$").unwrap(), "$$");
        assert_eq!(run("pa$word $ end$").unwrap(), "pa$word $ end$");
        assert_eq!(run("[${EMPTY}]").unwrap(), "[]");
        assert_eq!(run("${QUOTE}").unwrap(), "a\"b\nc");
        assert_eq!(run("plain").unwrap(), "plain");
        assert_eq!(run("é${KEY}é").unwrap(), "ésk-123é");
    }

    #[test]
    fn reports_unset_unterminated_and_bad_names() {
        assert_eq!(run("${NOPE}"), Err(InterpError::Unset("NOPE".into())));
        assert_eq!(run("x ${KEY"), Err(InterpError::Unterminated));
        assert_eq!(run("${"), Err(InterpError::Unterminated));
        assert_eq!(run("${}"), Err(InterpError::BadName(String::new())));
        assert_eq!(run("${1A}"), Err(InterpError::BadName("1A".into())));
        assert_eq!(run("${A:-x}"), Err(InterpError::BadName("A:-x".into())));
        assert!(InterpError::Unset("NOPE".into()).message().contains("NOPE"));
    }

    #[test]
    fn interpolates_nested_values_after_parsing() {
        let text = r#"
top = "${KEY}"
list = ["a", ["${KEY}", "$$"]]
[t.inner]
v = { deep = "${QUOTE}" }
n = 5
"#;
        let mut doc = DeTable::parse(text).unwrap().into_inner();
        let mut d = Diags::new(Path::new("c.toml"), text);
        interpolate_table(&mut doc, &env, &mut d);
        assert!(!d.has_errors());
        let top = doc.get("top").unwrap().get_ref().as_str().unwrap();
        assert_eq!(top, "sk-123");
        let list = doc.get("list").unwrap().get_ref().as_array().unwrap();
        let inner = list[1].get_ref().as_array().unwrap();
        assert_eq!(inner[0].get_ref().as_str(), Some("sk-123"));
        assert_eq!(inner[1].get_ref().as_str(), Some("$"));
        let t = doc.get("t").unwrap().get_ref().as_table().unwrap();
        let v = t.get("inner").unwrap().get_ref().as_table().unwrap();
        let deep = v.get("v").unwrap().get_ref().as_table().unwrap();
        // The quote and newline came from the environment and stayed data.
        assert_eq!(
            deep.get("deep").unwrap().get_ref().as_str(),
            Some("a\"b\nc")
        );
    }

    #[test]
    fn errors_point_at_the_string() {
        let text = "a = \"ok\"\nb = [\"${MISSING}\"]\n";
        let mut doc = DeTable::parse(text).unwrap().into_inner();
        let mut d = Diags::new(Path::new("c.toml"), text);
        interpolate_table(&mut doc, &env, &mut d);
        let (errors, _) = d.finish();
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].column), (2, 6));
        assert!(errors[0].message.contains("MISSING"));
    }

    #[test]
    fn var_names() {
        assert!(is_var_name("OPENAI_API_KEY"));
        assert!(is_var_name("_x1"));
        assert!(!is_var_name(""));
        assert!(!is_var_name("1X"));
        assert!(!is_var_name("A-B"));
    }
}
