//! A minimal aligned text table; widths count characters, colour codes do not count.

use crate::model::Status;

pub(crate) struct Table {
    head: Vec<String>,
    rows: Vec<Vec<(String, Option<Status>)>>,
}

impl Table {
    pub(crate) fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Cells with an optional status to colour them by.
    pub(crate) fn row(&mut self, cells: Vec<(String, Option<Status>)>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self, color: bool) -> String {
        let mut widths: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, (c, _)) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(&str, Option<Status>)>, out: &mut String| {
            let mut l = String::new();
            for (i, (c, st)) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = w.saturating_sub(c.chars().count());
                let text = match st {
                    Some(s) => super::paint(c, *s, color),
                    None => (*c).to_owned(),
                };
                l.push_str(&text);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(
            self.head.iter().map(|h| (h.as_str(), None)).collect(),
            &mut out,
        );
        for r in &self.rows {
            line(r.iter().map(|(c, s)| (c.as_str(), *s)).collect(), &mut out);
        }
        out
    }
}
