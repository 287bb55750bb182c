//! Parsing of the arguments of `#[monitor_performance(...)]`.
//!
//! Accepted shape (everything is optional, options may come in any order):
//!
//! ```text
//! #[monitor_performance("op.name", level = "debug", slow = "250ms",
//!                       context(user_id = user.id, req = %req, raw = ?raw),
//!                       crate = ::my_observe)]
//! ```
//!
//! The parser does not stop at the first mistake: each argument is parsed on
//! its own, and on failure the parser skips to the next top-level comma and
//! carries on. All errors are then returned as one combined [`syn::Error`], so
//! a user sees every problem in a single compile instead of fixing them one
//! rebuild at a time.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, Ident, LitStr, Path, Token, token};

/// Custom keywords for the option names; `crate` is a real keyword and is
/// matched with `Token![crate]` instead.
mod kw {
    syn::custom_keyword!(level);
    syn::custom_keyword!(context);
    syn::custom_keyword!(slow);
}

const UNKNOWN_OPTION_HINT: &str = "expected one of: level, context, slow, crate";
const OPERATION_EXAMPLE: &str =
    "expected an operation name, e.g. #[monitor_performance(\"db.query\")]";
/// The context key a failed call's line fills in itself.
const RESERVED_CONTEXT_KEY: &str = "error_type";
const CONTEXT_FORM: &str = "expected `key = expr` in context, e.g. context(user_id = user.id)";
const DURATION_FORMAT: &str =
    "expected a number followed by ns, us, ms, s or m, e.g. slow = \"250ms\"";
const DURATION_ZERO: &str = "must be greater than zero";
const DURATION_TOO_LARGE: &str = "too large: must fit in u64 nanoseconds (about 584 years)";
const DURATION_NOT_WHOLE: &str = "not a whole number of nanoseconds";

/// Parsed arguments of one `#[monitor_performance]` attribute.
///
/// Every field is `None`/empty when the option was not given, so the
/// expansion decides the defaults in one place.
#[derive(Clone, Debug, Default)]
pub(crate) struct Args {
    /// The optional leading operation name, already validated.
    pub(crate) operation: Option<LitStr>,
    /// `level = "..."`: level of the success log line.
    pub(crate) level: Option<Level>,
    /// `context(...)`: values evaluated at call start, in source order.
    pub(crate) context: Vec<ContextField>,
    /// `slow = "..."`: threshold above which a call counts as slow.
    pub(crate) slow: Option<Slow>,
    /// `crate = path`: where the observe crate lives when it was renamed.
    pub(crate) krate: Option<Path>,
}

/// Log level accepted by `level = "..."`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// `"trace"`
    Trace,
    /// `"debug"`
    Debug,
    /// `"info"`
    Info,
    /// `"warn"`
    Warn,
    /// `"error"`
    Error,
}

impl Level {
    /// Name of the matching `tracing::Level` associated constant, so the
    /// expansion can build `Level::DEBUG` without its own lookup table.
    pub(crate) fn as_ident_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }

    /// Case-insensitive so `"DEBUG"` and `"Debug"` work like in most
    /// logging configuration formats.
    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// Slow-call threshold from `slow = "..."`.
#[derive(Clone, Debug)]
pub(crate) struct Slow {
    /// Threshold in nanoseconds; always greater than zero.
    pub(crate) nanos: u64,
    /// The literal as written, kept for spans and messages.
    pub(crate) lit: LitStr,
}

/// One `key = expr` entry of `context(...)`.
#[derive(Clone, Debug)]
pub(crate) struct ContextField {
    /// Dotted key (`a.b.c`) with any `r#` prefix removed from each part.
    pub(crate) key: String,
    /// Span of the key as written (the whole dotted key where the compiler
    /// can join spans, otherwise its first part).
    pub(crate) key_span: Span,
    /// How the value is recorded.
    pub(crate) kind: ValueKind,
    /// The value expression, without its `%`/`?` sigil.
    pub(crate) expr: Expr,
}

/// How a context value is recorded, following `tracing`'s field sigils.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// No sigil: the value is recorded as is.
    Value,
    /// `%expr`: recorded through `Display`.
    Display,
    /// `?expr`: recorded through `Debug`.
    Debug,
}

/// Accumulates errors so parsing can continue past the first one.
#[derive(Debug, Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// Option names already seen, so a repeat is reported even when the first
/// occurrence had an invalid value (and therefore left its field empty).
#[derive(Debug, Default)]
struct Seen {
    level: bool,
    context: bool,
    slow: bool,
    krate: bool,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut seen = Seen::default();
        let mut errors = Errors::default();
        let mut first = true;
        while !input.is_empty() {
            match parse_argument(input, &mut args, &mut seen, first) {
                Ok(()) => {
                    if !input.is_empty() && !input.peek(Token![,]) {
                        errors.push(Error::new(input.span(), "expected `,` between arguments"));
                    }
                }
                Err(error) => errors.push(error),
            }
            // Resynchronise on the next comma whatever happened, so one bad
            // argument cannot hide the errors of the ones after it.
            skip_to_comma(input);
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            }
            first = false;
        }
        errors.finish(args)
    }
}

/// Parses one comma-separated argument and stores it in `args`.
fn parse_argument(
    input: ParseStream<'_>,
    args: &mut Args,
    seen: &mut Seen,
    first: bool,
) -> syn::Result<()> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        if !first {
            return Err(Error::new_spanned(
                &lit,
                "the operation name must be the first argument, \
                 e.g. #[monitor_performance(\"db.query\", level = \"debug\")]",
            ));
        }
        validate_operation(&lit)?;
        args.operation = Some(lit);
        return Ok(());
    }
    if first && looks_like_misspelled_name(input) {
        let span = input.span();
        return Err(spanned_or(skip_to_comma(input), span, OPERATION_EXAMPLE));
    }

    let lookahead = input.lookahead1();
    if first {
        // Only so the generic "expected one of" message lists it.
        lookahead.peek(LitStr);
    }
    if lookahead.peek(kw::level) {
        let key: kw::level = input.parse()?;
        let value = parse_level_value(input, key.span);
        store(&mut args.level, &mut seen.level, value, key.span, "level")
    } else if lookahead.peek(kw::context) {
        let key: kw::context = input.parse()?;
        let value = parse_context_value(input, key.span);
        let mut slot = None;
        let result = store(&mut slot, &mut seen.context, value, key.span, "context");
        if let Some(fields) = slot {
            args.context = fields;
        }
        result
    } else if lookahead.peek(kw::slow) {
        let key: kw::slow = input.parse()?;
        let value = parse_slow_value(input, key.span);
        store(&mut args.slow, &mut seen.slow, value, key.span, "slow")
    } else if lookahead.peek(Token![crate]) {
        let key: Token![crate] = input.parse()?;
        let value = parse_crate_value(input, key.span);
        store(&mut args.krate, &mut seen.krate, value, key.span, "crate")
    } else if input.peek(Ident::peek_any) {
        let ident = input.call(Ident::parse_any)?;
        Err(Error::new_spanned(
            &ident,
            format!("unknown option `{ident}`; {UNKNOWN_OPTION_HINT}"),
        ))
    } else {
        Err(lookahead.error())
    }
}

/// Stores an option's value unless the option was already given; reports the
/// duplicate and any error in the value together.
fn store<T>(
    slot: &mut Option<T>,
    seen: &mut bool,
    value: syn::Result<T>,
    key_span: Span,
    name: &str,
) -> syn::Result<()> {
    let mut errors = Errors::default();
    if *seen {
        errors.push(Error::new(key_span, format!("duplicate option `{name}`")));
    }
    *seen = true;
    match value {
        Ok(value) if slot.is_none() && errors.0.is_none() => *slot = Some(value),
        Ok(_) => {}
        Err(error) => errors.push(error),
    }
    errors.finish(())
}

/// True when the first argument is clearly meant as the operation name but is
/// not a string literal: any other literal, or a bare identifier/path such as
/// `db_query` that is not written like an option (`name = ...`, `name(...)`).
fn looks_like_misspelled_name(input: ParseStream<'_>) -> bool {
    if input.peek(syn::Lit) {
        return true;
    }
    input.peek(Ident::peek_any)
        && !input.peek(kw::level)
        && !input.peek(kw::context)
        && !input.peek(kw::slow)
        && !input.peek(Token![crate])
        && !input.peek2(Token![=])
        && !input.peek2(token::Paren)
}

/// Whether `name` is `[a-zA-Z_][a-zA-Z0-9_.:-]*`, the shape metric and log
/// backends accept without escaping.
pub(crate) fn is_valid_operation(name: &str) -> bool {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    valid_start && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Enforces [`is_valid_operation`] on an explicit name.
fn validate_operation(lit: &LitStr) -> syn::Result<()> {
    let name = lit.value();
    if name.is_empty() {
        return Err(Error::new_spanned(
            lit,
            "operation name is empty; omit it or give a name, \
             e.g. #[monitor_performance(\"db.query\")]",
        ));
    }
    if is_valid_operation(&name) {
        Ok(())
    } else {
        Err(Error::new_spanned(
            lit,
            format!(
                "invalid operation name `{name}`: use letters, digits, `_`, `.`, `:` or `-`, \
                 starting with a letter or `_`"
            ),
        ))
    }
}

/// Parses `= "<level>"` after `level`.
fn parse_level_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<Level> {
    let eq_span = expect_eq(input, key_span, "level", "level = \"debug\"")?;
    let lit = expect_str(
        input,
        eq_span,
        "expected a string literal for `level`, e.g. level = \"debug\"",
    )?;
    Level::from_name(&lit.value()).ok_or_else(|| {
        Error::new_spanned(
            &lit,
            format!(
                "invalid level `{}`; expected one of: trace, debug, info, warn, error",
                lit.value()
            ),
        )
    })
}

/// Parses `= "<duration>"` after `slow`.
fn parse_slow_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<Slow> {
    let eq_span = expect_eq(input, key_span, "slow", "slow = \"250ms\"")?;
    let lit = expect_str(
        input,
        eq_span,
        "expected a quoted duration for `slow`, e.g. slow = \"250ms\"",
    )?;
    match parse_duration(&lit.value()) {
        Ok(nanos) => Ok(Slow { nanos, lit }),
        Err(reason) => Err(Error::new_spanned(
            &lit,
            format!("invalid duration `{}`: {reason}", lit.value()),
        )),
    }
}

/// Parses `= path` after `crate`. A string literal holding the path is also
/// accepted because that is how serde spells the same option.
fn parse_crate_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<Path> {
    let eq_span = expect_eq(input, key_span, "crate", "crate = ::observe")?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return lit.parse_with(Path::parse_mod_style).map_err(|_| {
            Error::new_spanned(
                &lit,
                format!(
                    "invalid crate path `{}`, e.g. crate = ::observe",
                    lit.value()
                ),
            )
        });
    }
    if input.peek(Token![::]) || input.peek(Ident::peek_any) {
        Path::parse_mod_style(input)
    } else {
        Err(Error::new(
            next_span_or(input, eq_span),
            "expected a path for `crate`, e.g. crate = ::observe",
        ))
    }
}

/// Parses `(key = expr, ...)` after `context`, collecting every entry's
/// errors rather than stopping at the first.
fn parse_context_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<Vec<ContextField>> {
    if !input.peek(token::Paren) {
        return Err(Error::new(
            next_span_or(input, key_span),
            "expected `(` after `context`, e.g. context(user_id = user.id)",
        ));
    }
    let content;
    let paren = syn::parenthesized!(content in input);
    if content.is_empty() {
        return Err(Error::new(
            paren.span.join(),
            "empty `context()`: expected at least one `key = expr`, \
             e.g. context(user_id = user.id)",
        ));
    }

    let mut fields: Vec<ContextField> = Vec::new();
    let mut errors = Errors::default();
    while !content.is_empty() {
        match parse_context_field(&content) {
            Ok((field, key_tokens)) => {
                if !content.is_empty() && !content.peek(Token![,]) {
                    errors.push(Error::new(
                        content.span(),
                        "expected `,` between context entries",
                    ));
                }
                if fields.iter().any(|f| f.key == field.key) {
                    errors.push(Error::new_spanned(
                        key_tokens,
                        format!("duplicate context key `{}`", field.key),
                    ));
                } else if field.key == RESERVED_CONTEXT_KEY {
                    // A second `error_type` member would make the line's
                    // `context` an object with a duplicate key.
                    errors.push(Error::new_spanned(
                        key_tokens,
                        "context key `error_type` is reserved: a failed call's line \
                         carries its error's type under it; pick another key",
                    ));
                } else {
                    fields.push(field);
                }
            }
            Err(error) => errors.push(error),
        }
        // Leftover tokens inside the parentheses would otherwise surface as
        // an extra, vague "unexpected token" error from syn.
        skip_to_comma(&content);
        if content.peek(Token![,]) {
            content.parse::<Token![,]>()?;
        }
    }
    errors.finish(fields)
}

/// Parses one `key = [%|?]expr` entry. Also returns the key's tokens so
/// errors about the key can cover all of it, even where spans cannot be
/// joined.
fn parse_context_field(input: ParseStream<'_>) -> syn::Result<(ContextField, TokenStream)> {
    // Checking the `key =` shape on a fork first lets a malformed entry be
    // reported as a whole with the expected form, instead of as whatever
    // token happened to break the parse.
    let fork = input.fork();
    let well_formed = parse_key(&fork).is_ok()
        && fork.peek(Token![=])
        && !fork.peek(Token![==])
        && !fork.peek(Token![=>]);
    if !well_formed {
        let span = input.span();
        return Err(spanned_or(skip_to_comma(input), span, CONTEXT_FORM));
    }

    let (key, key_span, key_tokens) = parse_key(input)?;
    let eq: Token![=] = input.parse()?;
    let mut value_start = eq.span;
    let kind = if input.peek(Token![%]) {
        value_start = input.parse::<Token![%]>()?.span;
        ValueKind::Display
    } else if input.peek(Token![?]) {
        value_start = input.parse::<Token![?]>()?.span;
        ValueKind::Debug
    } else {
        ValueKind::Value
    };
    if input.is_empty() || input.peek(Token![,]) {
        return Err(Error::new(
            value_start,
            format!("missing value for context key `{key}`; {CONTEXT_FORM}"),
        ));
    }
    let expr: Expr = input.parse()?;
    let field = ContextField {
        key,
        key_span,
        kind,
        expr,
    };
    Ok((field, key_tokens))
}

/// Parses a dotted key. Keywords are accepted as parts (`type`, like
/// `r#type`) because the key only ever becomes a string.
fn parse_key(input: ParseStream<'_>) -> syn::Result<(String, Span, TokenStream)> {
    let first = input.call(Ident::parse_any)?;
    let mut key = first.unraw().to_string();
    let mut last_span = first.span();
    let mut tokens = TokenStream::new();
    tokens.extend([TokenTree::Ident(first.clone())]);
    while input.peek(Token![.]) {
        let dot: Token![.] = input.parse()?;
        let part = input.call(Ident::parse_any)?;
        key.push('.');
        key.push_str(&part.unraw().to_string());
        last_span = part.span();
        tokens.extend(quote::quote!(#dot #part));
    }
    let span = first.span().join(last_span).unwrap_or(first.span());
    Ok((key, span, tokens))
}

/// Consumes `=` and returns its span, or explains with an example what was
/// expected.
fn expect_eq(
    input: ParseStream<'_>,
    key_span: Span,
    name: &str,
    example: &str,
) -> syn::Result<Span> {
    if input.peek(Token![=]) {
        Ok(input.parse::<Token![=]>()?.span)
    } else {
        Err(Error::new(
            next_span_or(input, key_span),
            format!("expected `=` after `{name}`, e.g. {example}"),
        ))
    }
}

/// Consumes a string literal or fails with `message` at the next token.
fn expect_str(input: ParseStream<'_>, fallback: Span, message: &str) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        input.parse()
    } else {
        Err(Error::new(next_span_or(input, fallback), message))
    }
}

/// Span of the next token, or `fallback` at the end of the input: there the
/// stream's own span is the whole attribute, which points at nothing useful.
fn next_span_or(input: ParseStream<'_>, fallback: Span) -> Span {
    if input.is_empty() {
        fallback
    } else {
        input.span()
    }
}

/// Consumes tokens up to (not including) the next comma at this nesting
/// level and returns them. Commas inside groups are never seen here, since a
/// group is a single token tree.
fn skip_to_comma(input: ParseStream<'_>) -> TokenStream {
    let mut skipped = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        match input.parse::<TokenTree>() {
            Ok(tree) => skipped.extend([tree]),
            Err(_) => break,
        }
    }
    skipped
}

/// An error covering `tokens`, or at `fallback` when there are none (an empty
/// argument between two commas has no tokens of its own to point at).
fn spanned_or(tokens: TokenStream, fallback: Span, message: &str) -> Error {
    if tokens.is_empty() {
        Error::new(fallback, message)
    } else {
        Error::new_spanned(tokens, message)
    }
}

/// Parses a duration such as `"250ms"`, `"1.5s"` or `"10µs"` into nanoseconds.
///
/// The grammar is strict: digits, optionally `.` and more digits, then a unit
/// (`ns`, `us`, `µs`/`μs`, `ms`, `s`, `m`), with no whitespace, sign or
/// exponent anywhere. One canonical spelling keeps thresholds greppable, and
/// a stray space in a string literal is trivial to fix at compile time.
///
/// The value is computed exactly (no floating point), must be a whole number
/// of nanoseconds, greater than zero and at most `u64::MAX` nanoseconds. The
/// error is a reason meant to follow "invalid duration `...`: ".
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let format_error = || DURATION_FORMAT.to_owned();
    let unit_start = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(format_error)?;
    let (number, unit) = s.split_at(unit_start);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU look identical,
        // and keyboards differ in which one they produce.
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(format_error()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // Rejects ".5s", "1.s" and "1.2.3s".
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.') {
        return Err(format_error());
    }
    // Only digits remain, so the one way `parse` can fail is overflow.
    let whole: u128 = whole.parse().map_err(|_| DURATION_TOO_LARGE.to_owned())?;

    let fraction = fraction.trim_end_matches('0');
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        // The largest unit is 6 * 10^10 ns, so a fraction whose last non-zero
        // digit is further right than that can never be whole nanoseconds;
        // the cap also keeps the arithmetic below within u128.
        if fraction.len() > 20 {
            return Err(DURATION_NOT_WHOLE.to_owned());
        }
        let digits: u128 = fraction.parse().map_err(|_| format_error())?;
        let scale = fraction.bytes().fold(1u128, |scale, _| scale * 10);
        let scaled = digits * unit_nanos;
        if scaled % scale != 0 {
            return Err(DURATION_NOT_WHOLE.to_owned());
        }
        scaled / scale
    };

    let total = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or_else(|| DURATION_TOO_LARGE.to_owned())?;
    if total == 0 {
        return Err(DURATION_ZERO.to_owned());
    }
    u64::try_from(total).map_err(|_| DURATION_TOO_LARGE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{ToTokens as _, quote};

    fn parse(tokens: TokenStream) -> Args {
        match syn::parse2::<Args>(tokens.clone()) {
            Ok(args) => args,
            Err(error) => panic!("`{tokens}` should parse, got: {error}"),
        }
    }

    fn errors(tokens: TokenStream) -> Vec<String> {
        match syn::parse2::<Args>(tokens.clone()) {
            Ok(args) => panic!("`{tokens}` should fail, got: {args:?}"),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn single_error(tokens: TokenStream) -> String {
        let mut all = errors(tokens);
        assert_eq!(all.len(), 1, "expected exactly one error, got {all:?}");
        all.remove(0)
    }

    fn expr_string(expr: &Expr) -> String {
        expr.to_token_stream().to_string()
    }

    // ---- accepted forms ----------------------------------------------------

    #[test]
    fn empty_input_gives_all_defaults() {
        let args = parse(quote!());
        assert!(args.operation.is_none());
        assert!(args.level.is_none());
        assert!(args.context.is_empty());
        assert!(args.slow.is_none());
        assert!(args.krate.is_none());
    }

    #[test]
    fn name_only() {
        let args = parse(quote!("db.query"));
        assert_eq!(
            args.operation.map(|l| l.value()).as_deref(),
            Some("db.query")
        );
        assert!(args.level.is_none() && args.slow.is_none() && args.krate.is_none());
        assert!(args.context.is_empty());
    }

    #[test]
    fn name_with_trailing_comma() {
        let args = parse(quote!("op",));
        assert_eq!(args.operation.map(|l| l.value()).as_deref(), Some("op"));
    }

    #[test]
    fn name_allowed_characters() {
        for name in [
            "_x",
            "a",
            "db.query",
            "svc::handler",
            "get-user_2",
            "A9._:-",
        ] {
            let args = parse(quote!(#name));
            assert_eq!(args.operation.map(|l| l.value()).as_deref(), Some(name));
        }
    }

    #[test]
    fn level_each_value_case_insensitive() {
        let cases = [
            ("trace", Level::Trace),
            ("debug", Level::Debug),
            ("info", Level::Info),
            ("warn", Level::Warn),
            ("error", Level::Error),
            ("DEBUG", Level::Debug),
            ("Warn", Level::Warn),
            ("eRRoR", Level::Error),
        ];
        for (text, expected) in cases {
            let args = parse(quote!(level = #text));
            assert_eq!(args.level, Some(expected), "level = {text:?}");
        }
    }

    #[test]
    fn level_ident_strings() {
        assert_eq!(Level::Trace.as_ident_str(), "TRACE");
        assert_eq!(Level::Debug.as_ident_str(), "DEBUG");
        assert_eq!(Level::Info.as_ident_str(), "INFO");
        assert_eq!(Level::Warn.as_ident_str(), "WARN");
        assert_eq!(Level::Error.as_ident_str(), "ERROR");
    }

    #[test]
    fn slow_option() {
        let args = parse(quote!(slow = "250ms"));
        let slow = args.slow.expect("slow");
        assert_eq!(slow.nanos, 250_000_000);
        assert_eq!(slow.lit.value(), "250ms");
    }

    #[test]
    fn slow_with_unicode_micro() {
        assert_eq!(
            parse(quote!(slow = "10µs")).slow.expect("slow").nanos,
            10_000
        );
        // Greek small letter mu, which looks the same.
        assert_eq!(
            parse(quote!(slow = "10μs")).slow.expect("slow").nanos,
            10_000
        );
    }

    #[test]
    fn crate_option_path_forms() {
        for (tokens, expected) in [
            (quote!(crate = ::my_observe), ":: my_observe"),
            (quote!(crate = my_observe), "my_observe"),
            (
                quote!(crate = crate::reexports::observe),
                "crate :: reexports :: observe",
            ),
            (quote!(crate = "::my_observe"), ":: my_observe"),
        ] {
            let args = parse(tokens);
            let path = args.krate.expect("crate");
            assert_eq!(path.to_token_stream().to_string(), expected);
        }
    }

    #[test]
    fn context_plain_display_debug() {
        let args = parse(quote!(context(a = x, b = %y.name(), c = ?z)));
        let fields = &args.context;
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].key, "a");
        assert_eq!(fields[0].kind, ValueKind::Value);
        assert_eq!(expr_string(&fields[0].expr), "x");
        assert_eq!(fields[1].key, "b");
        assert_eq!(fields[1].kind, ValueKind::Display);
        assert_eq!(expr_string(&fields[1].expr), "y . name ()");
        assert_eq!(fields[2].key, "c");
        assert_eq!(fields[2].kind, ValueKind::Debug);
        assert_eq!(expr_string(&fields[2].expr), "z");
    }

    #[test]
    fn context_dotted_and_raw_keys() {
        let args = parse(quote!(context(
            user.id = u.id,
            a.b.c = 1,
            r#type = t,
            http.r#match = m
        )));
        let keys: Vec<&str> = args.context.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["user.id", "a.b.c", "type", "http.match"]);
    }

    #[test]
    fn context_keyword_key_without_raw_prefix() {
        let args = parse(quote!(context(type = t)));
        assert_eq!(args.context[0].key, "type");
    }

    #[test]
    fn context_trailing_comma_and_complex_exprs() {
        let args = parse(quote!(context(
            n = a.len() + 1,
            s = match x {
                Some(v) => v,
                None => 0,
            },
            g = f::<A, B>(1, 2),
            c = |a, b| a + b,
            q = res?,
        )));
        let keys: Vec<&str> = args.context.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["n", "s", "g", "c", "q"]);
        assert_eq!(expr_string(&args.context[2].expr), "f :: < A , B > (1 , 2)");
        assert_eq!(expr_string(&args.context[4].expr), "res ?");
    }

    #[test]
    fn all_options_with_name() {
        let args = parse(quote!(
            "db.query",
            level = "debug",
            context(user_id = user.id, req = %req),
            slow = "1.5s",
            crate = ::my_observe,
        ));
        assert_eq!(
            args.operation.map(|l| l.value()).as_deref(),
            Some("db.query")
        );
        assert_eq!(args.level, Some(Level::Debug));
        assert_eq!(args.context.len(), 2);
        assert_eq!(args.slow.map(|s| s.nanos), Some(1_500_000_000));
        assert!(args.krate.is_some());
    }

    #[test]
    fn all_options_any_order_without_name() {
        let args = parse(quote!(
            crate = ::my_observe,
            slow = "2m",
            context(k = v),
            level = "warn"
        ));
        assert!(args.operation.is_none());
        assert_eq!(args.level, Some(Level::Warn));
        assert_eq!(args.context[0].key, "k");
        assert_eq!(args.slow.map(|s| s.nanos), Some(120_000_000_000));
        assert!(args.krate.is_some());
    }

    #[test]
    fn options_in_reverse_order_after_name() {
        let args = parse(quote!("op", slow = "5us", level = "trace"));
        assert_eq!(args.operation.map(|l| l.value()).as_deref(), Some("op"));
        assert_eq!(args.level, Some(Level::Trace));
        assert_eq!(args.slow.map(|s| s.nanos), Some(5_000));
    }

    #[test]
    fn parse_str_round_trip() {
        // Same path the macro takes when the attribute is written by hand.
        let args: Args =
            syn::parse_str(r#""op", level = "info", context(a.b = %c)"#).expect("parse");
        assert_eq!(args.level, Some(Level::Info));
        assert_eq!(args.context[0].key, "a.b");
    }

    // ---- operation name errors ---------------------------------------------

    #[test]
    fn name_non_string_literal() {
        let expected = "expected an operation name, e.g. #[monitor_performance(\"db.query\")]";
        assert_eq!(single_error(quote!(42)), expected);
        assert_eq!(single_error(quote!(true)), expected);
        assert_eq!(single_error(quote!(4.2, level = "info")), expected);
    }

    #[test]
    fn name_as_ident_or_path() {
        let expected = "expected an operation name, e.g. #[monitor_performance(\"db.query\")]";
        assert_eq!(single_error(quote!(db_query)), expected);
        assert_eq!(single_error(quote!(db::query, level = "info")), expected);
    }

    #[test]
    fn name_empty() {
        assert_eq!(
            single_error(quote!("")),
            "operation name is empty; omit it or give a name, \
             e.g. #[monitor_performance(\"db.query\")]"
        );
    }

    #[test]
    fn name_invalid_characters() {
        assert_eq!(
            single_error(quote!("a b")),
            "invalid operation name `a b`: use letters, digits, `_`, `.`, `:` or `-`, \
             starting with a letter or `_`"
        );
        for bad in ["1abc", ".a", "-a", "a/b", "é", "a\u{b5}", "a b"] {
            let message = single_error(quote!(#bad));
            assert!(
                message.starts_with(&format!("invalid operation name `{bad}`")),
                "{bad:?}: {message}"
            );
        }
    }

    #[test]
    fn name_not_first() {
        let message = single_error(quote!(level = "info", "op"));
        assert!(
            message.starts_with("the operation name must be the first argument"),
            "{message}"
        );
        let message = single_error(quote!("op", "again"));
        assert!(message.starts_with("the operation name must be the first argument"));
    }

    // ---- option errors -----------------------------------------------------

    #[test]
    fn unknown_option() {
        assert_eq!(
            single_error(quote!(foo = 1)),
            "unknown option `foo`; expected one of: level, context, slow, crate"
        );
        assert_eq!(
            single_error(quote!("op", bar(1))),
            "unknown option `bar`; expected one of: level, context, slow, crate"
        );
        // A bare identifier after the name is an option slot, not a name.
        assert_eq!(
            single_error(quote!("op", baz)),
            "unknown option `baz`; expected one of: level, context, slow, crate"
        );
        assert_eq!(
            single_error(quote!(type = 1)),
            "unknown option `type`; expected one of: level, context, slow, crate"
        );
    }

    #[test]
    fn unexpected_token_uses_lookahead_message() {
        // syn reads `-1` as a (negative) literal, i.e. a misspelled name.
        assert!(single_error(quote!(-1)).starts_with("expected an operation name"));
        assert_eq!(
            single_error(quote!(= 1)),
            "expected one of: string literal, `level`, `context`, `slow`, `crate`"
        );
        assert_eq!(
            single_error(quote!("op", -1)),
            "expected one of: `level`, `context`, `slow`, `crate`"
        );
    }

    #[test]
    fn duplicate_options() {
        assert_eq!(
            single_error(quote!(level = "info", level = "debug")),
            "duplicate option `level`"
        );
        assert_eq!(
            single_error(quote!(slow = "1s", slow = "2s")),
            "duplicate option `slow`"
        );
        assert_eq!(
            single_error(quote!(context(a = 1), context(b = 2))),
            "duplicate option `context`"
        );
        assert_eq!(
            single_error(quote!(crate = a, crate = b)),
            "duplicate option `crate`"
        );
    }

    #[test]
    fn duplicate_after_invalid_first_is_still_duplicate() {
        let all = errors(quote!(level = "loud", level = "debug"));
        assert_eq!(
            all,
            [
                "invalid level `loud`; expected one of: trace, debug, info, warn, error",
                "duplicate option `level`",
            ]
        );
    }

    #[test]
    fn duplicate_with_invalid_value_reports_both() {
        let all = errors(quote!(slow = "1s", slow = "fast"));
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0], "duplicate option `slow`");
        assert!(all[1].starts_with("invalid duration `fast`"), "{all:?}");
    }

    #[test]
    fn missing_comma_between_arguments() {
        assert_eq!(
            single_error(quote!("op" level = "info")),
            "expected `,` between arguments"
        );
        assert_eq!(
            single_error(quote!(level = "info" "x")),
            "expected `,` between arguments"
        );
    }

    #[test]
    fn stray_commas() {
        let message = single_error(quote!("op",, level = "info"));
        assert_eq!(
            message,
            "expected one of: `level`, `context`, `slow`, `crate`"
        );
    }

    #[test]
    fn level_errors() {
        assert_eq!(
            single_error(quote!(level = "verbose")),
            "invalid level `verbose`; expected one of: trace, debug, info, warn, error"
        );
        assert_eq!(
            single_error(quote!(level = debug)),
            "expected a string literal for `level`, e.g. level = \"debug\""
        );
        assert_eq!(
            single_error(quote!(level)),
            "expected `=` after `level`, e.g. level = \"debug\""
        );
        assert_eq!(
            single_error(quote!(level "debug")),
            "expected `=` after `level`, e.g. level = \"debug\""
        );
        assert_eq!(
            single_error(quote!(level =)),
            "expected a string literal for `level`, e.g. level = \"debug\""
        );
    }

    #[test]
    fn slow_errors() {
        assert_eq!(
            single_error(quote!(slow = "25 parsecs")),
            "invalid duration `25 parsecs`: expected a number followed by ns, us, ms, s or m, \
             e.g. slow = \"250ms\""
        );
        assert_eq!(
            single_error(quote!(slow = "0ms")),
            "invalid duration `0ms`: must be greater than zero"
        );
        assert_eq!(
            single_error(quote!(slow = "18446744073709551616ns")),
            "invalid duration `18446744073709551616ns`: \
             too large: must fit in u64 nanoseconds (about 584 years)"
        );
        assert_eq!(
            single_error(quote!(slow = "0.5ns")),
            "invalid duration `0.5ns`: not a whole number of nanoseconds"
        );
        assert_eq!(
            single_error(quote!(slow = 250ms)),
            "expected a quoted duration for `slow`, e.g. slow = \"250ms\""
        );
        assert_eq!(
            single_error(quote!(slow = 250)),
            "expected a quoted duration for `slow`, e.g. slow = \"250ms\""
        );
        assert_eq!(
            single_error(quote!(slow("1s"))),
            "expected `=` after `slow`, e.g. slow = \"250ms\""
        );
    }

    #[test]
    fn crate_errors() {
        assert_eq!(
            single_error(quote!(crate = 1)),
            "expected a path for `crate`, e.g. crate = ::observe"
        );
        assert_eq!(
            single_error(quote!(crate = "not a path")),
            "invalid crate path `not a path`, e.g. crate = ::observe"
        );
        assert_eq!(
            single_error(quote!(crate)),
            "expected `=` after `crate`, e.g. crate = ::observe"
        );
    }

    // ---- context errors ----------------------------------------------------

    const FORM: &str = "expected `key = expr` in context, e.g. context(user_id = user.id)";

    #[test]
    fn context_entry_without_key_eq() {
        assert_eq!(single_error(quote!(context(user_id))), FORM);
        assert_eq!(single_error(quote!(context(1 + 2))), FORM);
        assert_eq!(single_error(quote!(context(user.id))), FORM);
        assert_eq!(single_error(quote!(context(%user))), FORM);
        assert_eq!(single_error(quote!(context(a == b))), FORM);
        assert_eq!(single_error(quote!(context(a => b))), FORM);
        assert_eq!(single_error(quote!(context(a. = b))), FORM);
        assert_eq!(single_error(quote!(context("k" = v))), FORM);
    }

    #[test]
    fn context_empty() {
        assert_eq!(
            single_error(quote!(context())),
            "empty `context()`: expected at least one `key = expr`, e.g. context(user_id = user.id)"
        );
    }

    #[test]
    fn context_without_parentheses() {
        assert_eq!(
            single_error(quote!(context = 1)),
            "expected `(` after `context`, e.g. context(user_id = user.id)"
        );
        assert_eq!(
            single_error(quote!(context[a = 1])),
            "expected `(` after `context`, e.g. context(user_id = user.id)"
        );
    }

    #[test]
    fn context_duplicate_keys() {
        assert_eq!(
            single_error(quote!(context(a = 1, b = 2, a = 3))),
            "duplicate context key `a`"
        );
        assert_eq!(
            single_error(quote!(context(a.b = 1, a.r#b = 2))),
            "duplicate context key `a.b`"
        );
        assert_eq!(
            single_error(quote!(context(r#type = 1, type = 2))),
            "duplicate context key `type`"
        );
    }

    #[test]
    fn context_missing_value() {
        let expected = format!("missing value for context key `a`; {FORM}");
        assert_eq!(single_error(quote!(context(a = ))), expected);
        assert_eq!(single_error(quote!(context(a = , b = 1))), expected);
        assert_eq!(single_error(quote!(context(a = %))), expected);
        assert_eq!(single_error(quote!(context(a = ?, b = 2))), expected);
    }

    #[test]
    fn context_missing_comma() {
        assert_eq!(
            single_error(quote!(context(a = 1 b = 2))),
            "expected `,` between context entries"
        );
    }

    #[test]
    fn context_bad_expression_reports_syn_error() {
        let message = single_error(quote!(context(a = =)));
        assert!(message.starts_with("expected"), "{message}");
    }

    #[test]
    fn context_empty_entry_between_commas() {
        assert_eq!(single_error(quote!(context(a = 1,, b = 2))), FORM);
    }

    #[test]
    fn context_reports_every_bad_entry() {
        let all = errors(quote!(context(user_id, a = 1, 1 + 2, a = 2, b = )));
        assert_eq!(
            all,
            [
                FORM.to_owned(),
                FORM.to_owned(),
                "duplicate context key `a`".to_owned(),
                format!("missing value for context key `b`; {FORM}"),
            ]
        );
    }

    // ---- all errors at once ------------------------------------------------

    #[test]
    fn three_mistakes_three_errors() {
        let all = errors(quote!(level = "loud", foo = 1, slow = "25 parsecs"));
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(
            all[0],
            "invalid level `loud`; expected one of: trace, debug, info, warn, error"
        );
        assert_eq!(
            all[1],
            "unknown option `foo`; expected one of: level, context, slow, crate"
        );
        assert!(
            all[2].starts_with("invalid duration `25 parsecs`"),
            "{all:?}"
        );
    }

    #[test]
    fn every_kind_of_mistake_at_once() {
        let all = errors(quote!(
            42,
            "late",
            level = "loud",
            context(user_id),
            slow = "0s",
            crate = 1,
            level = "info",
            bogus
        ));
        assert_eq!(
            all,
            [
                "expected an operation name, e.g. #[monitor_performance(\"db.query\")]",
                "the operation name must be the first argument, \
                 e.g. #[monitor_performance(\"db.query\", level = \"debug\")]",
                "invalid level `loud`; expected one of: trace, debug, info, warn, error",
                FORM,
                "invalid duration `0s`: must be greater than zero",
                "expected a path for `crate`, e.g. crate = ::observe",
                "duplicate option `level`",
                "unknown option `bogus`; expected one of: level, context, slow, crate",
            ]
        );
    }

    #[test]
    fn error_recovery_skips_garbage_to_next_comma() {
        // The garbage after `foo` must not produce extra errors, and the
        // option after it must still be checked.
        let all = errors(quote!(foo = 1 2 3 (x, y), level = "nope"));
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].starts_with("unknown option `foo`"));
        assert!(all[1].starts_with("invalid level `nope`"));
    }

    #[test]
    fn valid_options_are_not_reported_next_to_errors() {
        let all = errors(quote!("op", level = "info", foo = 1, slow = "1s"));
        assert_eq!(all.len(), 1, "{all:?}");
    }

    // ---- parse_duration ----------------------------------------------------

    #[test]
    fn duration_units() {
        assert_eq!(parse_duration("7ns"), Ok(7));
        assert_eq!(parse_duration("7us"), Ok(7_000));
        assert_eq!(parse_duration("7µs"), Ok(7_000));
        assert_eq!(parse_duration("7μs"), Ok(7_000));
        assert_eq!(parse_duration("7ms"), Ok(7_000_000));
        assert_eq!(parse_duration("7s"), Ok(7_000_000_000));
        assert_eq!(parse_duration("7m"), Ok(420_000_000_000));
    }

    #[test]
    fn duration_decimals() {
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("0.25ms"), Ok(250_000));
        assert_eq!(parse_duration("2.50s"), Ok(2_500_000_000));
        assert_eq!(
            parse_duration("1.000000000000000000000000000000s"),
            Ok(1_000_000_000)
        );
        assert_eq!(parse_duration("0.000000001s"), Ok(1));
        assert_eq!(parse_duration("0.5m"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1.0ns"), Ok(1));
        assert_eq!(parse_duration("007ms"), Ok(7_000_000));
    }

    #[test]
    fn duration_rejects_zero() {
        for s in ["0ns", "0s", "0.0ms", "000m"] {
            assert_eq!(parse_duration(s), Err(DURATION_ZERO.to_owned()), "{s}");
        }
    }

    #[test]
    fn duration_limits() {
        assert_eq!(parse_duration("18446744073709551615ns"), Ok(u64::MAX));
        for s in [
            "18446744073709551616ns",
            "18446744073709552us",
            "307445735m",
            "99999999999999999999999999999999999999999999s",
        ] {
            assert_eq!(parse_duration(s), Err(DURATION_TOO_LARGE.to_owned()), "{s}");
        }
        // Just under the limit in bigger units.
        assert_eq!(
            parse_duration("18446744073s"),
            Ok(18_446_744_073_000_000_000)
        );
        assert_eq!(parse_duration("307445734m"), Ok(18_446_744_040_000_000_000));
    }

    #[test]
    fn duration_rejects_sub_nanosecond() {
        for s in [
            "0.5ns",
            "1.0001us",
            "0.0000000001s",
            "1.000000000000000000001s",
        ] {
            assert_eq!(parse_duration(s), Err(DURATION_NOT_WHOLE.to_owned()), "{s}");
        }
    }

    #[test]
    fn duration_rejects_whitespace() {
        // Decision: no trimming; one canonical spelling.
        for s in [" 250ms", "250ms ", "250 ms", "\t1s", "1s\n"] {
            assert_eq!(parse_duration(s), Err(DURATION_FORMAT.to_owned()), "{s:?}");
        }
    }

    #[test]
    fn duration_rejects_malformed() {
        for s in [
            "",
            "ms",
            "250",
            "25 parsecs",
            ".5s",
            "1.s",
            "1.2.3s",
            "+1s",
            "-1s",
            "1e3ms",
            "1_000ms",
            "1h",
            "1MS",
            "1Ms",
            "1sec",
            "1mss",
            "s1",
            "1,5s",
            "١s",
        ] {
            assert_eq!(parse_duration(s), Err(DURATION_FORMAT.to_owned()), "{s:?}");
        }
    }
}
