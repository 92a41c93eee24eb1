//! Incremental Server-Sent Events parsing (the WHATWG rules that matter here): lines end in
//! `\n`, `\r\n` or `\r`; `event:` names the event, `data:` lines accumulate, a blank line
//! dispatches, `:` starts a comment. Bytes may split anywhere, including inside UTF-8.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Event {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub(super) struct Parser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    skip_lf: bool,
}

impl Parser {
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        let mut bytes = chunk;
        if self.skip_lf && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.skip_lf = false;
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                let mut next = i + 1;
                if b == b'\r' {
                    if next < self.buf.len() {
                        if self.buf[next] == b'\n' {
                            next += 1;
                        }
                    } else {
                        self.skip_lf = true;
                    }
                }
                self.line(&line, &mut out);
                start = next;
                i = next;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        out
    }

    /// End of stream: a final event without its blank line still counts.
    pub(super) fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            self.line(&line, &mut out);
        }
        self.line("", &mut out);
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(Event {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_anywhere() {
        let text = "event: a\ndata: {\"x\":1}\n\n: comment\r\ndata: é\r\ndata: two\r\n\r\ndata: [DONE]\n\n";
        let bytes = text.as_bytes();
        for split in 0..bytes.len() {
            let mut p = Parser::default();
            let mut ev = p.push(&bytes[..split]);
            ev.extend(p.push(&bytes[split..]));
            ev.extend(p.finish());
            assert_eq!(ev.len(), 3, "split at {split}");
            assert_eq!(ev[0].event.as_deref(), Some("a"));
            assert_eq!(ev[1].data, "é\ntwo");
            assert_eq!(ev[2].data, "[DONE]");
        }
    }

    #[test]
    fn a_last_event_without_blank_line_is_kept() {
        let mut p = Parser::default();
        assert!(p.push(b"data: x").is_empty());
        assert_eq!(p.finish()[0].data, "x");
    }
}
