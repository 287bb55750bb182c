//! The grammar of `context(key = expr, ...)`: dotted keys, `tracing`'s
//! `%`/`?` sigils, and any expression as the value.
//!
//! Like the rest of the attribute, an entry that cannot be read is kept as
//! [`ContextEntry::Malformed`] and reading resumes at the next comma, so one
//! broken entry does not hide the ones after it.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::ParseStream;
use syn::{Error, Expr, Ident, Token, token};

use crate::args::{next_span_or, skip_to_comma, spanned_or};

/// The expected form of an entry, shared by the messages about it.
pub(crate) const CONTEXT_FORM: &str =
    "expected `key = expr` in context, e.g. context(user_id = user.id)";

/// One entry of `context(...)`.
#[derive(Clone, Debug)]
pub(crate) enum ContextEntry {
    /// `key = [%|?]expr`
    Field(Box<ContextField>),
    /// An entry that could not be read, or a missing comma after the entry
    /// before it.
    Malformed(Error),
}

/// One `key = expr` entry of `context(...)`.
#[derive(Clone, Debug)]
pub(crate) struct ContextField {
    /// Dotted key (`a.b.c`) with any `r#` prefix removed from each part.
    pub(crate) key: String,
    /// Span of the key as written (the whole dotted key where the compiler
    /// can join spans, otherwise its first part).
    pub(crate) key_span: Span,
    /// The key's tokens, so errors about it cover all of it even where
    /// spans cannot be joined.
    pub(crate) key_tokens: TokenStream,
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

/// Parses `(key = expr, ...)` after `context`, reading past broken entries
/// rather than stopping at the first.
pub(crate) fn parse(input: ParseStream<'_>, key_span: Span) -> syn::Result<Vec<ContextEntry>> {
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

    let mut entries = Vec::new();
    while !content.is_empty() {
        match parse_field(&content) {
            Ok(field) => {
                entries.push(ContextEntry::Field(Box::new(field)));
                if !content.is_empty() && !content.peek(Token![,]) {
                    entries.push(ContextEntry::Malformed(Error::new(
                        content.span(),
                        "expected `,` between context entries",
                    )));
                }
            }
            Err(error) => entries.push(ContextEntry::Malformed(error)),
        }
        // Leftover tokens inside the parentheses would otherwise surface as
        // an extra, vague "unexpected token" error from syn.
        skip_to_comma(&content);
        if content.peek(Token![,]) {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(entries)
}

/// Parses one `key = [%|?]expr` entry.
fn parse_field(input: ParseStream<'_>) -> syn::Result<ContextField> {
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
    Ok(ContextField {
        key,
        key_span,
        key_tokens,
        kind,
        expr,
    })
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

#[cfg(test)]
mod tests {
    use quote::{ToTokens as _, quote};

    use super::*;
    use crate::args::Args;
    use crate::test_util::{parse, single_error};

    const FORM: &str = CONTEXT_FORM;

    fn fields(args: &Args) -> Vec<&ContextField> {
        args.context().collect()
    }

    fn keys(args: &Args) -> Vec<&str> {
        args.context().map(|f| f.key.as_str()).collect()
    }

    fn expr_string(expr: &Expr) -> String {
        expr.to_token_stream().to_string()
    }

    #[test]
    fn plain_display_debug() {
        let args = parse(quote!(context(a = x, b = %y.name(), c = ?z)));
        let fields = fields(&args);
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
    fn dotted_and_raw_keys() {
        let args = parse(quote!(context(
            user.id = u.id,
            a.b.c = 1,
            r#type = t,
            http.r#match = m
        )));
        assert_eq!(keys(&args), ["user.id", "a.b.c", "type", "http.match"]);
    }

    #[test]
    fn keyword_key_without_raw_prefix() {
        let args = parse(quote!(context(type = t)));
        assert_eq!(keys(&args), ["type"]);
    }

    #[test]
    fn trailing_comma_and_complex_exprs() {
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
        assert_eq!(keys(&args), ["n", "s", "g", "c", "q"]);
        let fields = fields(&args);
        assert_eq!(expr_string(&fields[2].expr), "f :: < A , B > (1 , 2)");
        assert_eq!(expr_string(&fields[4].expr), "res ?");
    }

    // ---- syntax errors -----------------------------------------------------

    #[test]
    fn entry_without_key_eq() {
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
    fn empty() {
        assert_eq!(
            single_error(quote!(context())),
            "empty `context()`: expected at least one `key = expr`, e.g. context(user_id = user.id)"
        );
    }

    #[test]
    fn without_parentheses() {
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
    fn missing_value() {
        let expected = format!("missing value for context key `a`; {FORM}");
        assert_eq!(single_error(quote!(context(a = ))), expected);
        assert_eq!(single_error(quote!(context(a = , b = 1))), expected);
        assert_eq!(single_error(quote!(context(a = %))), expected);
        assert_eq!(single_error(quote!(context(a = ?, b = 2))), expected);
    }

    #[test]
    fn missing_comma() {
        assert_eq!(
            single_error(quote!(context(a = 1 b = 2))),
            "expected `,` between context entries"
        );
    }

    #[test]
    fn key_keeps_its_tokens() {
        let args = parse(quote!(context(a.r#b.c = 1)));
        let key_tokens = fields(&args)[0].key_tokens.to_string();
        assert_eq!(key_tokens, "a . r#b . c");
    }

    #[test]
    fn bad_expression_reports_syn_error() {
        let message = single_error(quote!(context(a = =)));
        assert!(message.starts_with("expected"), "{message}");
    }

    #[test]
    fn empty_entry_between_commas() {
        assert_eq!(single_error(quote!(context(a = 1,, b = 2))), FORM);
    }
}
