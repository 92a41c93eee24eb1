//! The `command` sink: runs a program (no shell) with the notification as JSON on stdin and
//! as `CHANMON_*` environment variables, killed after the sink's timeout. Exit status 0 is a
//! delivery; anything else is a failed attempt (retried like any other), its stderr kept
//! (capped, redacted) as the reason.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::event::{Notification, clip};

/// The environment a command sees besides its own (`text`: the message text, templated or
/// not).
pub(crate) fn env_of(n: &Notification, text: String) -> Vec<(&'static str, String)> {
    let first = n.events.first();
    let get = |f: fn(&super::AlertEvent) -> String| first.map(f).unwrap_or_default();
    vec![
        ("CHANMON_EVENT_ID", n.event_id.clone()),
        ("CHANMON_EVENT", get(|e| e.event.as_str().to_owned())),
        ("CHANMON_INCIDENT", get(|e| e.incident.clone())),
        ("CHANMON_MONITOR", get(|e| e.monitor.clone())),
        ("CHANMON_MONITOR_NAME", get(|e| e.monitor_name.clone())),
        (
            "CHANMON_MODELS",
            n.events
                .iter()
                .map(|e| e.model.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("CHANMON_STATUS", get(|e| e.status.clone())),
        ("CHANMON_KIND", get(|e| e.kind.clone())),
        ("CHANMON_MESSAGE", get(|e| e.message.clone())),
        ("CHANMON_TITLE", n.title()),
        ("CHANMON_TEXT", text),
    ]
}

/// Runs `argv` with `n` and waits at most `timeout`. Blocking: call from a blocking thread.
pub(crate) fn run(
    argv: &[String],
    n: &Notification,
    text: String,
    timeout: Duration,
) -> Result<String, String> {
    let (program, args) = argv.split_first().ok_or("the command is empty")?;
    let body = serde_json::to_vec(n).map_err(|e| e.to_string())?;
    let mut child = Command::new(program)
        .args(args)
        .envs(env_of(n, text))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input is not an error.
        let _ = stdin.write_all(&body);
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {timeout:?}; killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    let read = |r: Option<&mut dyn Read>| {
        let mut s = String::new();
        if let Some(r) = r {
            let _ = r.take(4096).read_to_string(&mut s);
        }
        s
    };
    let out = read(child.stdout.as_mut().map(|s| s as &mut dyn Read));
    let err = read(child.stderr.as_mut().map(|s| s as &mut dyn Read));
    if status.success() {
        Ok(clip(out.trim(), 300))
    } else {
        Err(format!(
            "{program} exited with {status}: {}",
            clip(err.trim(), 300)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertEvent, EventKind};

    fn note() -> Notification {
        Notification {
            event_id: "e1".into(),
            events: vec![AlertEvent {
                event_id: "e1".into(),
                event: EventKind::Opened,
                incident: "i1".into(),
                monitor: "m".into(),
                monitor_name: "M".into(),
                model: "gpt; rm -rf /".into(),
                status: "error".into(),
                kind: "timeout".into(),
                message: "$(reboot)".into(),
                since_ms: 0,
                at_ms: 0,
                duration_ms: 0,
            }],
            status_page: None,
        }
    }

    #[test]
    fn the_event_arrives_on_stdin_and_in_the_environment_without_a_shell() {
        let argv: Vec<String> = [
            "/bin/sh",
            "-c",
            "read -r line; printf '%s|%s|%s' \"$CHANMON_EVENT\" \"$CHANMON_MODELS\" \"$line\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = run(&argv, &note(), String::new(), Duration::from_secs(10)).unwrap();
        assert!(out.starts_with("opened|gpt; rm -rf /|{"), "{out}");
        assert!(
            out.contains("$(reboot)"),
            "passed as data, never run: {out}"
        );
    }

    #[test]
    fn failures_and_timeouts_are_errors() {
        let sh =
            |script: &str| -> Vec<String> { vec!["/bin/sh".into(), "-c".into(), script.into()] };
        let e = run(
            &sh("echo nope >&2; exit 3"),
            &note(),
            String::new(),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(e.contains("exited") && e.contains("nope"), "{e}");
        let e = run(
            &sh("sleep 30"),
            &note(),
            String::new(),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(e.contains("killed"), "{e}");
        let e = run(
            &["/nonexistent/prog".to_owned()],
            &note(),
            String::new(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.contains("cannot run"), "{e}");
    }
}
