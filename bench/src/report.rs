//! A benchmark report: one ordered list of figures, printed either as an
//! aligned table for people or as one JSON line for scripts, so the two can
//! never disagree. JSON is written by hand (no serde): the values are only
//! numbers, strings and nulls.

use std::fmt::Write as _;

/// A figure's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A count.
    Int(u64),
    /// A measurement, printed with `decimals` digits in the table.
    Float(f64, usize),
    /// Text.
    Text(String),
    /// Not measured in this run (e.g. no `--pid`).
    None,
}

/// One figure: its JSON key, its table label and unit.
#[derive(Clone, Debug)]
struct Row {
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    value: Value,
}

/// Figures in print order, with optional section headings and notes.
#[derive(Clone, Debug, Default)]
pub struct Report {
    title: String,
    entries: Vec<Entry>,
    notes: Vec<String>,
}

#[derive(Clone, Debug)]
enum Entry {
    Section(&'static str),
    Row(Row),
}

impl Report {
    /// An empty report with a title line.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// Starts a table section (not in the JSON).
    pub fn section(&mut self, name: &'static str) {
        self.entries.push(Entry::Section(name));
    }

    /// Adds a figure.
    pub fn add(
        &mut self,
        key: &'static str,
        label: &'static str,
        unit: &'static str,
        value: Value,
    ) {
        self.entries.push(Entry::Row(Row {
            key,
            label,
            unit,
            value,
        }));
    }

    /// Adds figures of one unit: `(key, label, value)` each, in order.
    pub fn rows<const N: usize>(
        &mut self,
        unit: &'static str,
        rows: [(&'static str, &'static str, Value); N],
    ) {
        for (key, label, value) in rows {
            self.add(key, label, unit, value);
        }
    }

    /// Adds a note printed under the table (and as `notes` in JSON).
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The aligned table, ending in a newline.
    pub fn table(&self) -> String {
        let width = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Row(r) => Some(r.label.len()),
                Entry::Section(_) => None,
            })
            .max()
            .unwrap_or(0);
        let mut out = format!("{}\n", self.title);
        for e in &self.entries {
            match e {
                Entry::Section(name) => {
                    let _ = writeln!(out, "{name}");
                }
                Entry::Row(r) => {
                    let v = match &r.value {
                        Value::Int(n) => group(*n),
                        Value::Float(x, d) => format!("{x:.d$}", d = *d),
                        Value::Text(t) => t.clone(),
                        Value::None => "-".into(),
                    };
                    let unit = if matches!(r.value, Value::None) {
                        ""
                    } else {
                        r.unit
                    };
                    let line = format!("  {:width$}  {v} {unit}", r.label);
                    let _ = writeln!(out, "{}", line.trim_end());
                }
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }

    /// One JSON object on one line (no newline).
    pub fn json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(out, "\"title\":{}", json_str(&self.title));
        for e in &self.entries {
            if let Entry::Row(r) = e {
                let v = match &r.value {
                    Value::Int(n) => n.to_string(),
                    Value::Float(x, _) if x.is_finite() => {
                        // Enough digits for any figure here, no exponent.
                        let s = format!("{x:.6}");
                        s.trim_end_matches('0').trim_end_matches('.').to_owned()
                    }
                    Value::Float(..) | Value::None => "null".into(),
                    Value::Text(t) => json_str(t),
                };
                let _ = write!(out, ",{}:{v}", json_str(r.key));
            }
        }
        let notes: Vec<String> = self.notes.iter().map(|n| json_str(n)).collect();
        let _ = write!(out, ",\"notes\":[{}]}}", notes.join(","));
        out
    }
}

/// `1234567` → `1,234,567`.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A JSON string literal (RFC 8259 §7).
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::new("load: x");
        r.section("clients");
        r.add("clients", "clients", "", Value::Int(19000));
        r.add("p50_ms", "latency p50", "ms", Value::Float(1.25, 2));
        r.add("rss_kib", "server RSS", "KiB", Value::None);
        r.add("label", "label", "", Value::Text("a \"b\"".into()));
        r.note("machine-wide");
        r
    }

    #[test]
    fn table() {
        assert_eq!(
            sample().table(),
            "load: x\nclients\n  clients      19,000\n  latency p50  1.25 ms\n  \
             server RSS   -\n  label        a \"b\"\nnote: machine-wide\n"
        );
    }

    #[test]
    fn json() {
        assert_eq!(
            sample().json(),
            r#"{"title":"load: x","clients":19000,"p50_ms":1.25,"rss_kib":null,"label":"a \"b\"","notes":["machine-wide"]}"#
        );
    }
}
