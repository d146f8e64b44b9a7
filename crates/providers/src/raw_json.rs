//! Edits to the top-level members of a JSON object without re-encoding it.
//!
//! OpenAI-compatible upstreams must receive the client's body exactly as sent,
//! unknown parameters and key order included, with only `model` (and for
//! streams `stream_options`) changed. Parsing into a `serde_json::Value` and
//! serialising again would sort keys and reformat numbers, so instead this
//! module finds the byte span of each top-level member and splices new bytes
//! in. Callers validate the document with `serde_json` first; the scanner then
//! only has to find boundaries, which it does by tracking strings and nesting.

use std::ops::Range;

/// One `"key": value` member of an object, as byte offsets into the document.
#[derive(Debug, Clone)]
struct Member {
    /// The decoded key.
    key: String,
    /// From the key's opening quote to the end of the value.
    span: Range<usize>,
    /// The value alone.
    value: Range<usize>,
}

/// The members of the object that starts at the first non-blank byte of `doc`,
/// plus the offsets of its opening and closing braces.
struct ObjectLayout {
    open: usize,
    close: usize,
    members: Vec<Member>,
}

fn skip_blank(doc: &[u8], mut i: usize) -> usize {
    while i < doc.len() && matches!(doc[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Offset just past the string whose opening quote is at `i`.
fn skip_string(doc: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < doc.len() {
        match doc[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Offset just past the value that starts at `i`.
fn skip_value(doc: &[u8], i: usize) -> Option<usize> {
    match doc.get(i)? {
        b'"' => skip_string(doc, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < doc.len() {
                match doc[j] {
                    b'"' => {
                        j = skip_string(doc, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < doc.len() && !matches!(doc[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            Some(j)
        }
    }
}

fn layout(doc: &[u8]) -> Option<ObjectLayout> {
    let open = skip_blank(doc, 0);
    if doc.get(open) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::new();
    let mut i = skip_blank(doc, open + 1);
    if doc.get(i) == Some(&b'}') {
        return Some(ObjectLayout {
            open,
            close: i,
            members,
        });
    }
    loop {
        if doc.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(doc, i)?;
        let key: String = serde_json::from_slice(&doc[i..key_end]).ok()?;
        let colon = skip_blank(doc, key_end);
        if doc.get(colon) != Some(&b':') {
            return None;
        }
        let value_start = skip_blank(doc, colon + 1);
        let value_end = skip_value(doc, value_start)?;
        members.push(Member {
            key,
            span: i..value_end,
            value: value_start..value_end,
        });
        let next = skip_blank(doc, value_end);
        match doc.get(next) {
            Some(b',') => i = skip_blank(doc, next + 1),
            Some(b'}') => {
                return Some(ObjectLayout {
                    open,
                    close: next,
                    members,
                });
            }
            _ => return None,
        }
    }
}

/// The raw bytes of member `key` (the last one if the key is repeated, as
/// `serde_json` would read it), or `None` when absent or `doc` is no object.
pub(crate) fn get<'a>(doc: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let layout = layout(doc)?;
    layout
        .members
        .iter()
        .rev()
        .find(|m| m.key == key)
        .map(|m| &doc[m.value.clone()])
}

/// `doc` with every member `key` set to `raw_value`, appended at the end when
/// absent. Returns `None` when `doc` is not a JSON object.
pub(crate) fn set(doc: &[u8], key: &str, raw_value: &[u8]) -> Option<Vec<u8>> {
    let layout = layout(doc)?;
    let mut out = Vec::with_capacity(doc.len() + raw_value.len() + key.len() + 4);
    let hits: Vec<&Member> = layout.members.iter().filter(|m| m.key == key).collect();
    if hits.is_empty() {
        out.extend_from_slice(&doc[..layout.close]);
        if let Some(last) = layout.members.last() {
            // Keep whatever followed the last value (usually a newline) after the new member.
            out.truncate(last.span.end);
            out.push(b',');
        }
        push_member(&mut out, key, raw_value);
        match layout.members.last() {
            Some(last) => out.extend_from_slice(&doc[last.span.end..]),
            None => out.extend_from_slice(&doc[layout.close..]),
        }
        return Some(out);
    }
    let mut cursor = 0;
    for member in hits {
        out.extend_from_slice(&doc[cursor..member.value.start]);
        out.extend_from_slice(raw_value);
        cursor = member.value.end;
    }
    out.extend_from_slice(&doc[cursor..]);
    Some(out)
}

/// `doc` without any member `key`. Returns `None` when `doc` is not a JSON object.
///
/// When something is removed the blanks between members are not kept; values
/// and the text around the object are.
pub(crate) fn remove(doc: &[u8], key: &str) -> Option<Vec<u8>> {
    let layout = layout(doc)?;
    if !layout.members.iter().any(|m| m.key == key) {
        return Some(doc.to_vec());
    }
    let mut out = Vec::with_capacity(doc.len());
    out.extend_from_slice(&doc[..=layout.open]);
    let mut first = true;
    for member in layout.members.iter().filter(|m| m.key != key) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&doc[member.span.clone()]);
    }
    out.extend_from_slice(&doc[layout.close..]);
    Some(out)
}

fn push_member(out: &mut Vec<u8>, key: &str, raw_value: &[u8]) {
    // A `String` always serialises.
    let quoted = serde_json::to_vec(key).unwrap_or_default();
    out.extend_from_slice(&quoted);
    out.push(b':');
    out.extend_from_slice(raw_value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn replaces_value_and_keeps_everything_else_byte_for_byte() {
        let doc = br#"{ "z_unknown": {"a":[1,2,{"model":"inner"}]}, "model" : "gpt-x", "n":1.50 }"#;
        let out = set(doc, "model", br#""upstream""#).unwrap();
        assert_eq!(
            out,
            br#"{ "z_unknown": {"a":[1,2,{"model":"inner"}]}, "model" : "upstream", "n":1.50 }"#
        );
    }

    #[test]
    fn appends_when_absent_and_handles_empty_objects() {
        let out = set(br#"{"a":1}"#, "model", br#""m""#).unwrap();
        assert_eq!(parse(&out), json!({"a":1,"model":"m"}));
        let out = set(b"{}", "model", br#""m""#).unwrap();
        assert_eq!(parse(&out), json!({"model":"m"}));
        let out = set(b"{\n  \"a\": 1\n}\n", "b", b"true").unwrap();
        assert_eq!(parse(&out), json!({"a":1,"b":true}));
    }

    #[test]
    fn strings_with_braces_and_escaped_quotes_do_not_confuse_the_scanner() {
        let doc = br#"{"messages":[{"content":"a \"}\" {[ b"}],"model":"x"}"#;
        assert_eq!(get(doc, "model"), Some(&br#""x""#[..]));
        let out = set(doc, "model", br#""y""#).unwrap();
        assert_eq!(parse(&out)["messages"][0]["content"], "a \"}\" {[ b");
        assert_eq!(parse(&out)["model"], "y");
    }

    #[test]
    fn escaped_keys_are_matched_by_their_decoded_name() {
        let out = set(br#"{"mod\u0065l":"a"}"#, "model", br#""b""#).unwrap();
        assert_eq!(parse(&out), json!({"model":"b"}));
    }

    #[test]
    fn removes_first_middle_last_and_only_members() {
        for (doc, want) in [
            (&br#"{"s":1,"a":2,"b":3}"#[..], json!({"a":2,"b":3})),
            (br#"{"a":2,"s":1,"b":3}"#, json!({"a":2,"b":3})),
            (br#"{"a":2,"b":3,"s":1}"#, json!({"a":2,"b":3})),
            (br#"{"s":1}"#, json!({})),
            (br#"{"a":1,"s":1,"s":2}"#, json!({"a":1})),
            (br#"{"a":1}"#, json!({"a":1})),
        ] {
            let out = remove(doc, "s").unwrap();
            assert_eq!(parse(&out), want, "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(set(b"[1]", "model", b"1").is_none());
        assert!(get(b"\"x\"", "model").is_none());
    }
}
