//! The bits of JSON `share ls --json`, `status --json` and `top --json` print, and the
//! aligned columns of their tables.

use std::fmt::Write as _;

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json_opt(v: Option<&str>) -> String {
    v.map_or_else(|| "null".into(), json_str)
}

/// A number if the text is one, else a string (a quota key someone wrote garbage into).
pub fn json_num_or_str(v: Option<&str>) -> String {
    match v {
        None => "null".into(),
        Some(t) if t.parse::<u64>().is_ok() => t.to_string(),
        Some(t) => json_str(t),
    }
}

/// Rows as left-aligned columns two spaces apart, each line without trailing blanks.
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (cell, w) in r.iter().zip(&widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
