//! The bits of JSON `share ls --json` and `status --json` print.

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
