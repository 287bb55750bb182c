//! Every semantic check: what the parsers could read but the attribute does
//! not allow.
//!
//! Errors are never returned early: all of them are combined into one
//! [`syn::Error`], each at its offending tokens. The parsers' own errors
//! (kept in the model where they occurred) are reported here too, in source
//! order with the others, so the user reads them top to bottom.

use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Attribute, Error, LitStr, Signature};

use crate::args::{Arg, Args, CratePath, Key, Opt, Value};
use crate::context::ContextEntry;
use crate::impl_block::{ImplBlock, Member, Method};
use crate::item::{Function, Item};

/// The context key a failed call's line fills in itself.
const RESERVED_CONTEXT_KEY: &str = "error_type";

/// Checks the attribute's arguments and, when the tokens it was put on are
/// valid Rust, the item.
pub(crate) fn validate(args: &Args, item: Option<&Item>) -> syn::Result<()> {
    let mut errors = Errors::default();
    match item {
        Some(Item::Fn(function)) => {
            check_args(args, Place::Fn, &mut errors);
            let attrs = function.outer_attrs.iter().chain(&function.inner_attrs);
            check_function(&function.sig, attrs, args, &mut errors);
        }
        Some(Item::Impl(block)) => check_block(args, block, &mut errors),
        Some(Item::Bodiless(f)) => {
            check_args(args, Place::Fn, &mut errors);
            errors.push(Error::new_spanned(
                f,
                "#[monitor_performance] needs a function body; put it on the implementation, \
                 or on a trait method with a default body",
            ));
        }
        Some(Item::Other(other)) => {
            check_args(args, Place::Unknown, &mut errors);
            errors.push(Error::new(
                item_kind_span(other),
                "#[monitor_performance] can only be applied to functions, methods and impl blocks",
            ));
        }
        None => check_args(args, Place::Unknown, &mut errors),
    }
    errors.finish()
}

/// Where an attribute sits, which decides the arguments it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// On a function outside an annotated impl block.
    Fn,
    /// On an impl block.
    Block,
    /// On a method inside an annotated impl block.
    Method,
    /// On something that is no function (reported on its own) or not
    /// valid Rust: only the arguments themselves are checked.
    Unknown,
}

/// Whether `name` is `[a-zA-Z_][a-zA-Z0-9_.:-]*`, the shape metric and log
/// backends accept without escaping. The runtime enforces the same rule on
/// every callsite; a unit test holds the two to one table.
pub(crate) fn is_valid_operation(name: &str) -> bool {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    valid_start && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Collects errors so checking can continue past the first one.
#[derive(Debug, Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn check_args(args: &Args, place: Place, errors: &mut Errors) {
    // Options already seen, so a repeat is reported even when the first
    // occurrence had an invalid value.
    let mut seen: Vec<Key> = Vec::new();
    let skipped = place == Place::Method && args.skip();
    for (index, arg) in args.list.iter().enumerate() {
        if skipped {
            check_beside_skip(arg, errors);
        }
        match arg {
            Arg::Name(lit) if place == Place::Block => errors.push(Error::new_spanned(
                lit,
                "an impl block takes no operation name: each method is named `Type.method`; \
                 use a prefix instead, e.g. #[monitor_performance(prefix = \"store\")], \
                 or name a method with its own #[monitor_performance(\"store.get\")]",
            )),
            // A missing comma is recorded after the argument it follows, so
            // it never takes the first place.
            Arg::Name(lit) if index == 0 => check_operation(lit, errors),
            Arg::Name(lit) => errors.push(Error::new_spanned(
                lit,
                "the operation name must be the first argument, \
                 e.g. #[monitor_performance(\"db.query\", level = \"debug\")]",
            )),
            Arg::Option(Opt {
                key,
                key_span,
                value,
            }) => {
                if seen.contains(key) {
                    errors.push(Error::new(
                        *key_span,
                        format!("duplicate option `{}`", key.name()),
                    ));
                } else {
                    seen.push(*key);
                }
                if let Some(message) = misplaced(*key, place) {
                    errors.push(Error::new(*key_span, message));
                    continue;
                }
                match value {
                    Ok(value) => check_value(value, errors),
                    Err(error) => errors.push(error.clone()),
                }
            }
            Arg::Malformed(error) => errors.push(error.clone()),
        }
    }
}

/// Why option `key` is not allowed at `place`, if it is not.
fn misplaced(key: Key, place: Place) -> Option<&'static str> {
    match (key, place) {
        (Key::Context, Place::Block) => Some(
            "`context` is not allowed on an impl block: arguments differ per method; \
             put it on the method, e.g. #[monitor_performance(context(id = id))]",
        ),
        (Key::Prefix, Place::Fn | Place::Method) => Some(
            "`prefix` only applies to an impl block; name this function's operation instead, \
             e.g. #[monitor_performance(\"store.get\")]",
        ),
        (Key::Skip, Place::Fn | Place::Block) => Some(
            "`skip` only applies to a method inside an impl block under \
             #[monitor_performance]; elsewhere remove the attribute instead",
        ),
        _ => None,
    }
}

/// A skipped method is not monitored, so any other argument beside `skip`
/// would be ignored: each is an error.
fn check_beside_skip(arg: &Arg, errors: &mut Errors) {
    const MESSAGE: &str = "`skip` takes no other options: a skipped method is not \
                           monitored; remove this option or `skip`";
    match arg {
        Arg::Name(lit) => errors.push(Error::new_spanned(lit, MESSAGE)),
        Arg::Option(opt) if opt.key != Key::Skip => errors.push(Error::new(opt.key_span, MESSAGE)),
        Arg::Option(_) | Arg::Malformed(_) => {}
    }
}

/// Enforces [`is_valid_operation`] on an explicit name.
fn check_operation(lit: &LitStr, errors: &mut Errors) {
    let name = lit.value();
    if name.is_empty() {
        errors.push(Error::new_spanned(
            lit,
            "operation name is empty; omit it or give a name, \
             e.g. #[monitor_performance(\"db.query\")]",
        ));
    } else if !is_valid_operation(&name) {
        errors.push(Error::new_spanned(
            lit,
            format!(
                "invalid operation name `{name}`: use letters, digits, `_`, `.`, `:` or `-`, \
                 starting with a letter or `_`"
            ),
        ));
    }
}

fn check_value(value: &Value, errors: &mut Errors) {
    match value {
        Value::Level(arg) if arg.level.is_none() => errors.push(Error::new_spanned(
            &arg.lit,
            format!(
                "invalid level `{}`; expected one of: trace, debug, info, warn, error",
                arg.lit.value()
            ),
        )),
        Value::Slow(arg) => {
            if let Err(reason) = arg.nanos {
                errors.push(Error::new_spanned(
                    &arg.lit,
                    format!("invalid duration `{}`: {reason}", arg.lit.value()),
                ));
            }
        }
        Value::Crate(CratePath::Str { lit, path: None }) => errors.push(Error::new_spanned(
            lit,
            format!(
                "invalid crate path `{}`, e.g. crate = ::observe",
                lit.value()
            ),
        )),
        Value::Context(entries) => check_context(entries, errors),
        Value::Prefix(lit) => check_prefix(lit, errors),
        Value::Sample(arg) => {
            if !arg.rate.is_some_and(|r| (0.0..=1.0).contains(&r)) {
                errors.push(Error::new_spanned(
                    &arg.lit,
                    "invalid `sample`: expected a share of success lines between 0 and 1, e.g. sample = 0.01",
                ));
            }
        }
        Value::Level(_) | Value::Crate(_) | Value::Objective(_) | Value::Skip => {}
    }
}

/// A prefix starts every method's operation name, so it follows the same
/// rule as a name.
fn check_prefix(lit: &LitStr, errors: &mut Errors) {
    let prefix = lit.value();
    if !is_valid_operation(&prefix) {
        errors.push(Error::new_spanned(
            lit,
            format!(
                "invalid prefix `{prefix}`: use letters, digits, `_`, `.`, `:` or `-`, \
                 starting with a letter or `_`, e.g. prefix = \"store\""
            ),
        ));
    }
}

fn check_context(entries: &[ContextEntry], errors: &mut Errors) {
    let mut keys: Vec<&str> = Vec::new();
    for entry in entries {
        let field = match entry {
            ContextEntry::Field(field) => field,
            ContextEntry::Malformed(error) => {
                errors.push(error.clone());
                continue;
            }
        };
        if keys.contains(&field.key.as_str()) {
            errors.push(Error::new_spanned(
                &field.key_tokens,
                format!("duplicate context key `{}`", field.key),
            ));
        } else if field.key == RESERVED_CONTEXT_KEY {
            // A second `error_type` member would make the line's `context`
            // an object with a duplicate key.
            errors.push(Error::new_spanned(
                &field.key_tokens,
                "context key `error_type` is reserved: a failed call's line \
                 carries its error's type under it; pick another key",
            ));
        } else {
            keys.push(&field.key);
        }
    }
}

fn check_function<'a>(
    sig: &Signature,
    mut attrs: impl Iterator<Item = &'a Attribute>,
    args: &Args,
    errors: &mut Errors,
) {
    if let Some(c) = &sig.constness {
        errors.push(Error::new_spanned(
            c,
            "#[monitor_performance] cannot be applied to a `const fn`: timing and logging \
             cannot run at compile time",
        ));
    }
    if let Some(a) = attrs.find(|a| a.path().is_ident("track_caller")) {
        // The body runs in a closure, and closures cannot inherit the
        // caller's location on stable Rust: it would silently point into
        // the function instead.
        errors.push(Error::new_spanned(
            a,
            "#[monitor_performance] cannot be combined with #[track_caller]: the body runs \
             inside a closure, where `Location::caller()` would report the function itself",
        ));
    }
    // Without an explicit name the function's name is the operation's (or
    // its last part, in an impl block), so it must have the operation
    // name's shape (a non-ASCII identifier has not).
    if args.operation().is_none() {
        let name = Function::name_of(sig);
        if !is_valid_operation(&name) {
            errors.push(Error::new_spanned(
                &sig.ident,
                format!(
                    "the function name `{name}` is not a valid operation name (letters, digits, \
                     `_`, `.`, `:` or `-`, ASCII only); name the operation explicitly, \
                     e.g. #[monitor_performance(\"my_operation\")]"
                ),
            ));
        }
    }
}

/// An annotated impl block: the block's arguments, the name its methods
/// get, and each method with its own attribute.
fn check_block(args: &Args, block: &ImplBlock, errors: &mut Errors) {
    check_args(args, Place::Block, errors);
    let methods = block.members.iter().filter_map(|member| match member {
        Member::Method(method) => Some(method),
        Member::Other(_) => None,
    });
    let mut needs_type_name = false;
    for method in methods {
        check_method(method, errors);
        needs_type_name |=
            method.is_monitored() && method.args().is_none_or(|a| a.operation().is_none());
    }
    if args.prefix().is_some() || !needs_type_name {
        return;
    }
    match block.type_ident() {
        None => errors.push(Error::new_spanned(
            &block.header.self_ty,
            "this type has no name to give its methods' operations; give a prefix, \
             e.g. #[monitor_performance(prefix = \"store\")]",
        )),
        Some(ident) => {
            let name = ident.to_string();
            let name = name.trim_start_matches("r#");
            if !is_valid_operation(name) {
                errors.push(Error::new_spanned(
                    ident,
                    format!(
                        "the type name `{name}` cannot start an operation name (letters, digits, \
                         `_`, `.`, `:` or `-`, ASCII only); give a prefix, \
                         e.g. #[monitor_performance(prefix = \"store\")]"
                    ),
                ));
            }
        }
    }
}

fn check_method(method: &Method, errors: &mut Errors) {
    for extra in method.attrs.iter().skip(1) {
        errors.push(Error::new_spanned(
            &extra.attr,
            "duplicate #[monitor_performance] on this method; merge the options into one",
        ));
    }
    if let Some(attr) = method.attrs.first() {
        match &attr.args {
            Ok(own) => check_args(own, Place::Method, errors),
            Err(error) => errors.push(error.clone()),
        }
    }
    if let (Some(default), true) = (&method.func.defaultness, method.is_monitored()) {
        // The expansion writes the signature back without it.
        errors.push(Error::new_spanned(
            default,
            "#[monitor_performance] cannot be applied to a specialising `default fn`",
        ));
    }
    if method.is_monitored() {
        // A name on the block is an error of its own: it names no method.
        let unnamed = Args { list: Vec::new() };
        let own = method.args().unwrap_or(&unnamed);
        check_function(&method.func.sig, method.func.attrs.iter(), own, errors);
    }
}

/// The span of the keyword that says what the item is (`struct`, `impl`..).
fn item_kind_span(item: &syn::Item) -> Span {
    use syn::Item;
    match item {
        Item::Struct(i) => i.struct_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Const(i) => i.const_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Use(i) => i.use_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Macro(i) => i.mac.path.span(),
        other => other.span(),
    }
}

#[cfg(test)]
mod tests;
