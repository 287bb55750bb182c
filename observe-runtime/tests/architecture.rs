//! The runtime's folders import each other in one direction only: down.
//!
//! Reads every `.rs` file under `observe-runtime/src`, finds the modules it
//! names through `crate::X` (and through `super::` chains that climb to the
//! crate root), in `use` items and inline paths alike, and fails on any
//! that sits higher in [`RANKS`] than the file's own top-level module.
//! Comments, doc comments and string literals are not code and are
//! skipped, and so are `#[cfg(test)]` items: unit tests may use the test
//! kit and the sinks above the code they test.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules of `observe-runtime/src`, bottom to top. A module
/// may name `crate::X` only for X below it, or itself. `lib.rs` is above
/// all of them: it assembles the public API (including the public
/// `metrics` module), so a path through it (`crate::metrics`,
/// `crate::Status`) counts as the top.
const RANKS: &[&str] = &[
    "base",        // clock, metric names, Status, Background, JSON writers, thread slots
    "slo",         // service level objectives and their Prometheus rules
    "correlation", // correlation IDs, scopes, propagation
    "record",      // the typed record of a finished call
    "log",         // JSON layer, validator, redaction, timestamps
    "recorder",    // native histogram store, per-callsite handles, collector, Tee
    "volume",      // log volume per operation: sampling, rate limits, level floors
    "operation",   // callsite, guard, context, outcome, Monitored
    "net",         // connection, HTTP and TLS clients
    "sink",        // stdout, file, TCP, UDP, Elasticsearch, capture, queue, worker
    "export",      // the /metrics listener, the InfluxDB push, line protocol
    "otlp",        // OTLP export of spans, log records and metrics
    "system",      // the system and process sampler
    "builder",     // Observe::builder and every builder method
    "testing",     // the capture kit
    "__private",   // what the attribute's expansion names
];

/// Root-level names defined inside a module: `#[macro_export]` macros.
const ROOT_ALIASES: &[(&str, &str)] = &[("__callsite", "operation"), ("__objective", "slo")];

/// Upward imports allowed for now, each with the change that removes it:
/// (file under `src/`, the module it may still name, why). Empty: every
/// import points down.
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// Rank of a top-level module; `lib.rs` and anything at the crate root that
/// is not a module of the table rank above everything.
fn rank(module: &str) -> usize {
    let module = ROOT_ALIASES
        .iter()
        .find(|(alias, _)| *alias == module)
        .map_or(module, |(_, m)| m);
    RANKS
        .iter()
        .position(|m| *m == module)
        .unwrap_or(RANKS.len())
}

fn rank_name(module: &str) -> String {
    let r = rank(module);
    if r == RANKS.len() {
        format!("{module} (lib.rs level, above every module)")
    } else {
        format!("{module} (rank {r})")
    }
}

/// One `crate::X` reference: the module named, the byte offset of the path.
#[derive(Debug, PartialEq)]
struct Reference {
    module: String,
    offset: usize,
}

fn is_ident(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// `src` with comments, string and char literals replaced by spaces (line
/// breaks kept, so offsets and line numbers still match the file).
fn blank_non_code(src: &str) -> Vec<u8> {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        if b[i..].starts_with(b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if !prev_ident
            && [&b"r#"[..], b"r\"", b"br#", b"br\""]
                .iter()
                .any(|p| b[i..].starts_with(p))
        {
            // Raw string: r"..", r#".."#, br".." ...
            let start = i;
            let mut j = i + if b[i] == b'b' { 2 } else { 1 };
            let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
            j += hashes;
            if b.get(j) != Some(&b'"') {
                i += 1; // `r#ident`, a raw identifier
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let end = b[j + 1..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| j + 1 + p + close.len());
            blank(&mut out, start, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}', a multi-byte char), or a
            // lifetime / label ('a), which is code.
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end + 1);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The offset of the `}` matching the `{` at `open`.
fn matching_brace(code: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// Blanks every item marked `#[cfg(test)]`.
fn blank_test_items(code: &mut [u8]) {
    const ATTR: &[u8] = b"#[cfg(test)]";
    let mut from = 0;
    while let Some(p) = code[from..].windows(ATTR.len()).position(|w| w == ATTR) {
        let start = from + p;
        let mut j = start + ATTR.len();
        // Further attributes of the same item, then the item up to its
        // `;` or its `{ .. }`.
        let mut nesting = 0i32;
        let end = loop {
            match code.get(j) {
                None => break code.len(),
                Some(b'(' | b'[') => nesting += 1,
                Some(b')' | b']') => nesting -= 1,
                Some(b';') if nesting == 0 => break j + 1,
                Some(b'{') if nesting == 0 => break matching_brace(code, j) + 1,
                _ => {}
            }
            j += 1;
        };
        let end = end.min(code.len());
        for c in &mut code[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
}

/// Finds the keyword `word` as a whole token.
fn tokens<'a>(code: &'a [u8], word: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..code.len()).filter(move |&i| {
        code[i..].starts_with(word)
            && (i == 0 || !is_ident(code[i - 1]) && code[i - 1] != b'$')
            && code.get(i + word.len()).is_none_or(|&c| !is_ident(c))
    })
}

fn skip_ws(code: &[u8], mut i: usize) -> usize {
    while code.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// After `::`: at `i`, the next path segment, or the first segment of each
/// member of a `{ .. }` group.
fn segments_at(code: &[u8], i: usize) -> Vec<String> {
    let i = skip_ws(code, i);
    if code.get(i) == Some(&b'{') {
        let close = matching_brace(code, i);
        let inner = &code[i + 1..close.min(code.len())];
        let mut members = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (j, &c) in inner.iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b',' if depth == 0 => {
                    members.push(&inner[start..j]);
                    start = j + 1;
                }
                _ => {}
            }
        }
        members.push(&inner[start..]);
        members
            .into_iter()
            .filter_map(|m| {
                let m = &m[skip_ws(m, 0)..];
                let len = m.iter().take_while(|&&c| is_ident(c)).count();
                (len > 0).then(|| String::from_utf8_lossy(&m[..len]).into_owned())
            })
            .filter(|s| s != "self")
            .collect()
    } else {
        let len = code[i..].iter().take_while(|&&c| is_ident(c)).count();
        if len == 0 {
            Vec::new()
        } else {
            vec![String::from_utf8_lossy(&code[i..i + len]).into_owned()]
        }
    }
}

/// If `::` follows `i` (after whitespace), the offset after it.
fn after_path_sep(code: &[u8], i: usize) -> Option<usize> {
    let i = skip_ws(code, i);
    code[i..].starts_with(b"::").then_some(i + 2)
}

/// Byte ranges of the inline `mod name { .. }` blocks.
fn inline_modules(code: &[u8]) -> Vec<(usize, usize)> {
    tokens(code, b"mod")
        .filter_map(|i| {
            let name = skip_ws(code, i + 3);
            let len = code[name..].iter().take_while(|&&c| is_ident(c)).count();
            let open = skip_ws(code, name + len);
            (len > 0 && code.get(open) == Some(&b'{')).then(|| (open, matching_brace(code, open)))
        })
        .collect()
}

/// The top-level modules a file's code names. `depth` is how many modules
/// deep the file's own items are (1 for `src/x.rs` and `src/x/mod.rs`).
fn references(src: &str, depth: usize) -> Vec<Reference> {
    let mut code = blank_non_code(src);
    blank_test_items(&mut code);
    let mut found = Vec::new();
    for i in tokens(&code, b"crate") {
        if let Some(next) = after_path_sep(&code, i + 5) {
            for module in segments_at(&code, next) {
                found.push(Reference { module, offset: i });
            }
        }
    }
    let inline = inline_modules(&code);
    let mut chain_end = 0;
    for i in tokens(&code, b"super").collect::<Vec<_>>() {
        // A chain starts at a `super` that does not follow `::`.
        let before = code[..i].trim_ascii_end();
        if i < chain_end || before.ends_with(b"::") {
            continue;
        }
        let (mut supers, mut j, mut path) = (0, i, None);
        while code[j..].starts_with(b"super") && code.get(j + 5).is_none_or(|&c| !is_ident(c)) {
            supers += 1;
            match after_path_sep(&code, j + 5) {
                Some(next) => {
                    j = skip_ws(&code, next);
                    path = Some(j);
                }
                // `pub(super)`, or a chain ending in `super` itself.
                None => {
                    path = None;
                    break;
                }
            }
        }
        chain_end = j;
        let here = depth + inline.iter().filter(|(s, e)| *s < i && i < *e).count();
        if let Some(at) = path.filter(|_| supers >= here) {
            for module in segments_at(&code, at) {
                found.push(Reference { module, offset: i });
            }
        }
    }
    found.sort_by_key(|r| r.offset);
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The file's top-level module and how deep its items are, from its path
/// under `src/`; `None` for `lib.rs`.
fn module_of(relative: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts == ["lib.rs"] {
        return None;
    }
    let top = parts[0].trim_end_matches(".rs").to_owned();
    let depth = if parts.last().is_some_and(|f| f == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((top, depth))
}

#[test]
fn imports_between_runtime_modules_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files in {}",
        files.len(),
        src.display()
    );

    let mut problems = String::new();
    let mut exceptions_used = vec![false; KNOWN_EXCEPTIONS.len()];
    for path in &files {
        let relative = path.strip_prefix(&src).expect("a file under src/");
        let Some((module, depth)) = module_of(relative) else {
            continue;
        };
        let shown = format!("observe-runtime/src/{}", relative.display());
        if !RANKS.contains(&module.as_str()) {
            let _ = writeln!(
                problems,
                "{shown}: top-level module `{module}` is not in the rank table of tests/architecture.rs; add it where it belongs",
            );
            continue;
        }
        let text = fs::read_to_string(path).expect("a UTF-8 source file");
        for r in references(&text, depth) {
            if rank(&r.module) <= rank(&module) {
                continue;
            }
            let file = relative.to_string_lossy().replace('\\', "/");
            if let Some(k) = KNOWN_EXCEPTIONS
                .iter()
                .position(|(f, m, _)| *f == file && *m == r.module)
            {
                exceptions_used[k] = true;
                continue;
            }
            let line_no = text[..r.offset].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or_default().trim();
            let _ = writeln!(
                problems,
                "{shown}:{line_no}: `{line}` imports upward: {} may not use {}",
                rank_name(&module),
                rank_name(&r.module),
            );
        }
    }
    for ((file, module, why), used) in KNOWN_EXCEPTIONS.iter().zip(exceptions_used) {
        if !used {
            let _ = writeln!(
                problems,
                "known exception `{file}` -> `{module}` ({why}) no longer occurs: delete it from KNOWN_EXCEPTIONS",
            );
        }
    }
    assert!(
        problems.is_empty(),
        "module order violated (bottom to top: {}):\n{problems}",
        RANKS.join(" < ")
    );
}

#[test]
fn the_scanner_reads_paths_not_comments_or_strings() {
    let src = r#"
use crate::{base::names, log::{self, JsonLayer}};
// use crate::builder;
/* crate::sink */
const S: &str = "crate::testing";
const R: &str = r"crate::export";
fn f<'a>(x: &'a str) -> char { crate::net::conn::go(x); '{' }
#[cfg(test)]
mod tests {
    use crate::testing;
}
"#;
    let modules: Vec<String> = references(src, 1).into_iter().map(|r| r.module).collect();
    assert_eq!(modules, ["base", "log", "net"]);
}

#[test]
fn the_scanner_follows_super_to_the_crate_root() {
    // In `src/a/b.rs`, `super::super::x` is `crate::x`; `super::y` is in `a`.
    let src = "use super::super::{sink, base};\nuse super::y;\nmod inner {\n    use super::super::super::export;\n}\n";
    let modules: Vec<String> = references(src, 2).into_iter().map(|r| r.module).collect();
    assert_eq!(modules, ["sink", "base", "export"]);
}

#[test]
fn files_map_to_their_top_level_module() {
    assert_eq!(module_of(Path::new("lib.rs")), None);
    assert_eq!(
        module_of(Path::new("testing.rs")),
        Some(("testing".into(), 1))
    );
    assert_eq!(
        module_of(Path::new("sink/mod.rs")),
        Some(("sink".into(), 1))
    );
    assert_eq!(
        module_of(Path::new("export/influxdb/http.rs")),
        Some(("export".into(), 3))
    );
    assert_eq!(rank("__callsite"), rank("operation"));
    assert_eq!(rank("metrics"), RANKS.len());
}
