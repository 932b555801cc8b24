//! The architecture, checked rather than hoped for.
//!
//! **No code decides by message text** (STYLE.md habit 10). Reasons cross
//! the wire as machine-readable codes (`senatus_proto::reason`,
//! docs/PROTOCOL.md 20): a `Status`'s reason, an error's variant, a gRPC
//! code. The words of an error are for people and free to change, so no
//! shipped code may branch on them. [`no_code_decides_by_message_text`]
//! reads every source file of the crates that handle peer and client
//! errors (node, testnet, transport, proto) and fails on any line outside
//! test code that contains one of [`TEXT_MATCHES`]: `.message().contains(`,
//! `.message().starts_with(`, `.message().ends_with(`, `.message() ==`,
//! `.message() !=`, `to_string().contains(` or `to_string().starts_with(`.
//!
//! Test code may match text (asserting what a human reads is a fair test):
//! files under `tests/` are not read, and neither is the body of an item
//! marked `#[cfg(test)]` (`mod tests { ... }`). Comments and the contents
//! of string literals are not code and are not matched.

use std::path::{Path, PathBuf};

/// What deciding by message text looks like.
const TEXT_MATCHES: &[&str] = &[
    ".message().contains(",
    ".message().starts_with(",
    ".message().ends_with(",
    ".message() ==",
    ".message() !=",
    "to_string().contains(",
    "to_string().starts_with(",
];

/// Source trees checked, relative to the workspace root.
const CHECKED: &[&str] = &["node/src", "testnet/src", "transport/src", "proto/src"];

/// Most files read (the crates hold a few dozen): a bound, not a guess.
const FILES_MAX: usize = 1_000;

#[test]
fn no_code_decides_by_message_text() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("node/ has a parent");
    let mut files = Vec::new();
    for dir in CHECKED {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() >= 20,
        "found only {} files under {CHECKED:?}: is the walk broken?",
        files.len()
    );
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for (line, what) in text_matches(&text) {
            let shown = file.strip_prefix(root).unwrap_or(file);
            found.push(format!("{}:{line}: {what}", shown.display()));
        }
    }
    assert!(
        found.is_empty(),
        "code decides by message text; match on the reason (senatus_proto::reason) or the error's variant instead:\n{}",
        found.join("\n")
    );
}

/// The checker catches what it must and nothing else: a test that cannot
/// fail is a defect.
#[test]
fn the_checker_finds_text_matches_in_code_only() {
    let source = r#"
fn forward(s: &Status) -> bool {
    // A comment may say s.message().contains("LockedDown").
    let words = "s.message().starts_with(\"x\") in a string is not code";
    let brace = '{';
    if s.message().starts_with("LockedDown") {
        return true;
    }
    e.to_string().contains("already on the ledger")
}

#[cfg(test)]
mod tests {
    fn t() {
        assert!(err.message().contains("no token"));
        let s = "}"; let c = '}';
    }
}
#[cfg(test)]
use super::*;

fn after_the_tests(s: &Status) -> bool {
    s.message() == "no quorum"
}
"#;
    let found: Vec<usize> = text_matches(source).into_iter().map(|(l, _)| l).collect();
    assert_eq!(found, vec![6, 9, 23], "{:?}", text_matches(source));
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for e in entries {
        let path = e.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
        assert!(out.len() <= FILES_MAX, "more than {FILES_MAX} files");
    }
}

/// (1-based line, pattern) of every text match in the code of `source`,
/// outside `#[cfg(test)]` items.
fn text_matches(source: &str) -> Vec<(usize, &'static str)> {
    let code = code_only(source);
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        for p in TEXT_MATCHES {
            if line.contains(p) {
                out.push((i + 1, *p));
            }
        }
    }
    out
}

/// `source` with comments, string and char literal contents and the bodies
/// of `#[cfg(test)]` items blanked to spaces; newlines are kept, so line
/// numbers stay those of `source`.
fn code_only(source: &str) -> String {
    let b = source.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            // Block comments nest in Rust.
            let mut depth = 0usize;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(rest) {
            // r"..." or r#"..."#: no escapes, ends at the quote and hashes.
            let open = 2 + hashes;
            out.extend(&rest[..open]);
            i += open;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while i < b.len() && !b[i..].starts_with(&close) {
                out.push(blank(b[i]));
                i += 1;
            }
            let n = close.len().min(b.len() - i);
            out.extend(&b[i..i + n]);
            i += n;
        } else if b[i] == b'"' {
            out.push(b'"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    out.push(b' ');
                    i += 1;
                }
                out.push(blank(b[i]));
                i += 1;
            }
            if i < b.len() {
                out.push(b'"');
                i += 1;
            }
        } else if let Some(n) = char_literal_len(rest) {
            out.push(b'\'');
            out.extend(std::iter::repeat_n(b' ', n - 2));
            out.push(b'\'');
            i += n;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let code = String::from_utf8_lossy(&out).into_owned();
    without_test_items(&code)
}

/// `r"` or `r#..#"` at the start of `s` (not part of an identifier such
/// as `for"`, which Rust does not allow anyway): the number of hashes.
fn raw_string_start(s: &[u8]) -> Option<usize> {
    let rest = s.strip_prefix(b"r")?;
    let hashes = rest.iter().take_while(|c| **c == b'#').count();
    (rest.get(hashes) == Some(&b'"')).then_some(hashes)
}

/// The length of a char literal at the start of `s` (`'x'`, `'\n'`,
/// `'\u{7f}'`), or None for a lifetime (`'a`).
fn char_literal_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'\'') {
        return None;
    }
    if s.get(1) == Some(&b'\\') {
        let end = s.iter().skip(2).position(|c| *c == b'\'')?;
        return Some(end + 3);
    }
    // One character of up to four UTF-8 bytes, then the closing quote.
    let width = match s.get(1)? {
        c if *c < 0x80 => 1,
        c if *c >= 0xf0 => 4,
        c if *c >= 0xe0 => 3,
        _ => 2,
    };
    (s.get(1 + width) == Some(&b'\'')).then_some(width + 2)
}

/// `code` (comments and literals already blank) with every item marked
/// `#[cfg(test)]` blanked from the attribute to its closing brace.
fn without_test_items(code: &str) -> String {
    let mut out: Vec<u8> = code.as_bytes().to_vec();
    let marker = b"#[cfg(test)]";
    let mut from = 0;
    while let Some(at) = find(&out[from..], marker).map(|p| p + from) {
        // The item: to its `;` if it has no body (`use`), else from its
        // first `{` to the matching `}` (braces in literals are already
        // blank).
        let Some(open) = out[at..]
            .iter()
            .position(|c| *c == b'{' || *c == b';')
            .map(|p| p + at)
        else {
            break;
        };
        let mut depth = 0usize;
        let mut end = open + 1;
        for (j, c) in out.iter().enumerate().skip(open) {
            if out[open] == b';' {
                break;
            }
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        for c in &mut out[at..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
