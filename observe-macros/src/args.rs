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
//! On an `impl` block, `prefix = "store"` replaces the type's name in the
//! methods' operation names; on a method inside such a block, `skip` leaves
//! it unmonitored.
//!
//! This stage only reads what was written: each argument becomes an [`Arg`]
//! in source order, with its original tokens for error spans. Whether it is
//! allowed (position, duplicates, values) is for `valid` to say.
//!
//! The parser does not stop at the first mistake either: an argument that
//! cannot be read is kept as [`Arg::Malformed`] with its error, and parsing
//! resumes at the next top-level comma. Validation then reports these errors
//! together with its own, in source order, so a user sees every problem in
//! a single compile instead of fixing them one rebuild at a time.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Ident, LitStr, Path, Token, token};

use crate::context::{self, ContextEntry, ContextField};
use crate::duration::{self, DurationError};

/// Custom keywords for the option names; `crate` is a real keyword and is
/// matched with `Token![crate]` instead.
mod kw {
    syn::custom_keyword!(level);
    syn::custom_keyword!(context);
    syn::custom_keyword!(slow);
    syn::custom_keyword!(prefix);
    syn::custom_keyword!(objective);
    syn::custom_keyword!(sample);
    syn::custom_keyword!(skip);
}

const UNKNOWN_OPTION_HINT: &str =
    "expected one of: level, context, slow, crate, sample, objective, prefix, skip";
const OPERATION_EXAMPLE: &str =
    "expected an operation name, e.g. #[monitor_performance(\"db.query\")]";

/// The arguments of one `#[monitor_performance]` attribute, as written.
///
/// The accessors return the first usable value of each option, or `None`
/// when the option was not given, so the expansion decides the defaults in
/// one place. After validation each option occurs at most once.
#[derive(Debug)]
pub(crate) struct Args {
    /// The comma-separated arguments in source order.
    pub(crate) list: Vec<Arg>,
}

/// One comma-separated argument.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    /// A string literal: the operation name (allowed first only).
    Name(LitStr),
    /// A known option and its value.
    Option(Opt),
    /// Tokens that could not be read as an argument. Also stands for a
    /// missing comma, right after the argument it follows.
    Malformed(Error),
}

/// `key = value` or `key(...)` for a known option.
#[derive(Clone, Debug)]
pub(crate) struct Opt {
    /// Which option.
    pub(crate) key: Key,
    /// The option's name as written, where a repeat is reported.
    pub(crate) key_span: Span,
    /// The value, or why it could not be read.
    pub(crate) value: Result<Value, Error>,
}

/// The options the attribute knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// `level = "..."`
    Level,
    /// `context(...)`
    Context,
    /// `slow = "..."`
    Slow,
    /// `crate = path`
    Crate,
    /// `sample = 0.01`
    Sample,
    /// `objective = PATH`
    Objective,
    /// `prefix = "..."`, on an impl block
    Prefix,
    /// `skip`, on a method of an impl block
    Skip,
}

impl Key {
    /// The option's name as the user writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Level => "level",
            Key::Context => "context",
            Key::Slow => "slow",
            Key::Crate => "crate",
            Key::Sample => "sample",
            Key::Objective => "objective",
            Key::Prefix => "prefix",
            Key::Skip => "skip",
        }
    }
}

/// The value of an option that could be read.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// `level = "..."`: level of the success log line.
    Level(LevelArg),
    /// `context(...)`: values evaluated at call start, in source order.
    Context(Vec<ContextEntry>),
    /// `slow = "..."`: threshold above which a call counts as slow.
    Slow(SlowArg),
    /// `crate = path`: where the observe crate lives when it was renamed.
    Crate(CratePath),
    /// `sample = 0.01`: the share of success lines written.
    Sample(SampleArg),
    /// `objective = PATH`: the `Objective` constant the operation serves.
    Objective(Path),
    /// `prefix = "..."`: what the methods' names start with instead of
    /// the type's name.
    Prefix(LitStr),
    /// `skip`: the method is left unmonitored.
    Skip,
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

/// `level = "..."` as written.
#[derive(Clone, Debug)]
pub(crate) struct LevelArg {
    /// The literal, kept for spans and messages.
    pub(crate) lit: LitStr,
    /// The level it names, if it names one.
    pub(crate) level: Option<Level>,
}

/// `slow = "..."` as written.
#[derive(Clone, Debug)]
pub(crate) struct SlowArg {
    /// The literal, kept for spans and messages.
    pub(crate) lit: LitStr,
    /// The threshold in nanoseconds, or why the literal is not a duration.
    pub(crate) nanos: Result<u64, DurationError>,
}

/// `sample = ...` as written.
#[derive(Clone, Debug)]
pub(crate) struct SampleArg {
    /// The literal, kept for spans and messages.
    pub(crate) lit: syn::Lit,
    /// The share, if the literal is a number.
    pub(crate) rate: Option<f64>,
}

/// `crate = ...` as written.
#[derive(Clone, Debug)]
pub(crate) enum CratePath {
    /// `crate = ::my_observe`
    Path(Path),
    /// `crate = "::my_observe"`, serde's spelling of the same option;
    /// `path` is `None` when the string holds no path.
    Str { lit: LitStr, path: Option<Path> },
}

impl Args {
    /// The explicit operation name.
    pub(crate) fn operation(&self) -> Option<&LitStr> {
        self.list.iter().find_map(|arg| match arg {
            Arg::Name(lit) => Some(lit),
            _ => None,
        })
    }

    /// The level of the success line.
    pub(crate) fn level(&self) -> Option<Level> {
        self.values().find_map(|value| match value {
            Value::Level(arg) => arg.level,
            _ => None,
        })
    }

    /// The context fields, in source order.
    pub(crate) fn context(&self) -> impl Iterator<Item = &ContextField> {
        self.values()
            .find_map(|value| match value {
                Value::Context(entries) => Some(entries),
                _ => None,
            })
            .into_iter()
            .flatten()
            .filter_map(|entry| match entry {
                ContextEntry::Field(field) => Some(&**field),
                ContextEntry::Malformed(_) => None,
            })
    }

    /// The slow threshold in nanoseconds, with the literal it came from.
    pub(crate) fn slow(&self) -> Option<(u64, &LitStr)> {
        self.values().find_map(|value| match value {
            Value::Slow(arg) => arg.nanos.ok().map(|nanos| (nanos, &arg.lit)),
            _ => None,
        })
    }

    /// The path of the observe crate.
    pub(crate) fn krate(&self) -> Option<&Path> {
        self.values().find_map(|value| match value {
            Value::Crate(
                CratePath::Path(path)
                | CratePath::Str {
                    path: Some(path), ..
                },
            ) => Some(path),
            _ => None,
        })
    }

    /// The share of success lines written, with the literal it came from,
    /// when it is a valid share.
    pub(crate) fn sample(&self) -> Option<(f64, &syn::Lit)> {
        self.values().find_map(|value| match value {
            Value::Sample(arg) => arg
                .rate
                .filter(|r| (0.0..=1.0).contains(r))
                .map(|r| (r, &arg.lit)),
            _ => None,
        })
    }

    /// The path of the operation's `Objective` constant.
    pub(crate) fn objective(&self) -> Option<&Path> {
        self.values().find_map(|value| match value {
            Value::Objective(path) => Some(path),
            _ => None,
        })
    }

    /// The prefix of the methods' operation names on an impl block.
    pub(crate) fn prefix(&self) -> Option<&LitStr> {
        self.values().find_map(|value| match value {
            Value::Prefix(lit) => Some(lit),
            _ => None,
        })
    }

    /// Whether the method is left unmonitored.
    pub(crate) fn skip(&self) -> bool {
        self.values().any(|value| matches!(value, Value::Skip))
    }

    fn values(&self) -> impl Iterator<Item = &Value> {
        self.list.iter().filter_map(|arg| match arg {
            Arg::Option(Opt {
                value: Ok(value), ..
            }) => Some(value),
            _ => None,
        })
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut list = Vec::new();
        while !input.is_empty() {
            let arg = parse_argument(input, list.is_empty()).unwrap_or_else(Arg::Malformed);
            // A comma is only looked for after an argument read to its end:
            // after a broken one the next token is not where a comma belongs.
            let read_whole = matches!(arg, Arg::Name(_) | Arg::Option(Opt { value: Ok(_), .. }));
            list.push(arg);
            if read_whole && !input.is_empty() && !input.peek(Token![,]) {
                list.push(Arg::Malformed(Error::new(
                    input.span(),
                    "expected `,` between arguments",
                )));
            }
            // Resynchronise on the next comma whatever happened, so one bad
            // argument cannot hide the errors of the ones after it.
            skip_to_comma(input);
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(Self { list })
    }
}

/// Parses one comma-separated argument.
fn parse_argument(input: ParseStream<'_>, first: bool) -> syn::Result<Arg> {
    if input.peek(LitStr) {
        return input.parse().map(Arg::Name);
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
    let (key, key_span, value) = if lookahead.peek(kw::level) {
        let key_span = input.parse::<kw::level>()?.span;
        let value = parse_level_value(input, key_span).map(Value::Level);
        (Key::Level, key_span, value)
    } else if lookahead.peek(kw::context) {
        let key_span = input.parse::<kw::context>()?.span;
        let value = context::parse(input, key_span).map(Value::Context);
        (Key::Context, key_span, value)
    } else if lookahead.peek(kw::slow) {
        let key_span = input.parse::<kw::slow>()?.span;
        let value = parse_slow_value(input, key_span).map(Value::Slow);
        (Key::Slow, key_span, value)
    } else if lookahead.peek(Token![crate]) {
        let key_span = input.parse::<Token![crate]>()?.span;
        let value = parse_crate_value(input, key_span).map(Value::Crate);
        (Key::Crate, key_span, value)
    } else if lookahead.peek(kw::sample) {
        let key_span = input.parse::<kw::sample>()?.span;
        let value = parse_sample_value(input, key_span).map(Value::Sample);
        (Key::Sample, key_span, value)
    } else if lookahead.peek(kw::objective) {
        let key_span = input.parse::<kw::objective>()?.span;
        let value = parse_objective_value(input, key_span).map(Value::Objective);
        (Key::Objective, key_span, value)
    } else if lookahead.peek(kw::prefix) {
        let key_span = input.parse::<kw::prefix>()?.span;
        let value = parse_prefix_value(input, key_span).map(Value::Prefix);
        (Key::Prefix, key_span, value)
    } else if lookahead.peek(kw::skip) {
        let key_span = input.parse::<kw::skip>()?.span;
        let value = parse_skip_value(input);
        (Key::Skip, key_span, value)
    } else if input.peek(Ident::peek_any) {
        let ident = input.call(Ident::parse_any)?;
        return Err(Error::new_spanned(
            &ident,
            format!("unknown option `{ident}`; {UNKNOWN_OPTION_HINT}"),
        ));
    } else {
        return Err(lookahead.error());
    };
    Ok(Arg::Option(Opt {
        key,
        key_span,
        value,
    }))
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
        && !input.peek(kw::prefix)
        && !input.peek(kw::objective)
        && !input.peek(kw::sample)
        && !input.peek(kw::skip)
        && !input.peek2(Token![=])
        && !input.peek2(token::Paren)
}

/// Parses `= "<level>"` after `level`.
fn parse_level_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<LevelArg> {
    let eq_span = expect_eq(input, key_span, "level", "level = \"debug\"")?;
    let lit = expect_str(
        input,
        eq_span,
        "expected a string literal for `level`, e.g. level = \"debug\"",
    )?;
    let level = Level::from_name(&lit.value());
    Ok(LevelArg { lit, level })
}

/// Parses `= "<duration>"` after `slow`.
fn parse_slow_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<SlowArg> {
    let eq_span = expect_eq(input, key_span, "slow", "slow = \"250ms\"")?;
    let lit = expect_str(
        input,
        eq_span,
        "expected a quoted duration for `slow`, e.g. slow = \"250ms\"",
    )?;
    let nanos = duration::parse(&lit.value());
    Ok(SlowArg { lit, nanos })
}

/// Parses `= 0.01` after `sample`.
fn parse_sample_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<SampleArg> {
    let eq_span = expect_eq(input, key_span, "sample", "sample = 0.01")?;
    if !(input.peek(syn::LitFloat) || input.peek(syn::LitInt)) {
        return Err(Error::new(
            next_span_or(input, eq_span),
            "expected a number for `sample`, e.g. sample = 0.01",
        ));
    }
    let lit: syn::Lit = input.parse()?;
    let rate = match &lit {
        syn::Lit::Float(f) => f.base10_parse::<f64>().ok(),
        syn::Lit::Int(i) => i.base10_parse::<u8>().ok().map(f64::from),
        _ => None,
    };
    Ok(SampleArg { lit, rate })
}

/// Parses `= PATH` after `objective`: the path of an `Objective` constant.
fn parse_objective_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<Path> {
    let eq_span = expect_eq(input, key_span, "objective", "objective = API")?;
    if input.peek(Token![::]) || input.peek(Ident::peek_any) {
        Path::parse_mod_style(input)
    } else {
        Err(Error::new(
            next_span_or(input, eq_span),
            "expected the path of an `Objective` constant for `objective`, e.g. objective = API",
        ))
    }
}

/// Parses `= "<prefix>"` after `prefix`.
fn parse_prefix_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<LitStr> {
    let eq_span = expect_eq(input, key_span, "prefix", "prefix = \"store\"")?;
    expect_str(
        input,
        eq_span,
        "expected a string literal for `prefix`, e.g. prefix = \"store\"",
    )
}

/// `skip` is a bare flag: anything after it up to the next comma is an
/// error.
fn parse_skip_value(input: ParseStream<'_>) -> syn::Result<Value> {
    if input.is_empty() || input.peek(Token![,]) {
        Ok(Value::Skip)
    } else {
        let span = input.span();
        Err(spanned_or(
            skip_to_comma(input),
            span,
            "`skip` takes no value, e.g. #[monitor_performance(skip)]",
        ))
    }
}

/// Parses `= path` after `crate`. A string literal holding the path is also
/// accepted because that is how serde spells the same option.
fn parse_crate_value(input: ParseStream<'_>, key_span: Span) -> syn::Result<CratePath> {
    let eq_span = expect_eq(input, key_span, "crate", "crate = ::observe")?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let path = lit.parse_with(Path::parse_mod_style).ok();
        return Ok(CratePath::Str { lit, path });
    }
    if input.peek(Token![::]) || input.peek(Ident::peek_any) {
        Path::parse_mod_style(input).map(CratePath::Path)
    } else {
        Err(Error::new(
            next_span_or(input, eq_span),
            "expected a path for `crate`, e.g. crate = ::observe",
        ))
    }
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
pub(crate) fn next_span_or(input: ParseStream<'_>, fallback: Span) -> Span {
    if input.is_empty() {
        fallback
    } else {
        input.span()
    }
}

/// Consumes tokens up to (not including) the next comma at this nesting
/// level and returns them. Commas inside groups are never seen here, since a
/// group is a single token tree.
pub(crate) fn skip_to_comma(input: ParseStream<'_>) -> TokenStream {
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
pub(crate) fn spanned_or(tokens: TokenStream, fallback: Span, message: &str) -> Error {
    if tokens.is_empty() {
        Error::new(fallback, message)
    } else {
        Error::new_spanned(tokens, message)
    }
}

#[cfg(test)]
mod tests;
