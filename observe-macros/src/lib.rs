//! The `#[monitor_performance]` attribute of the observe toolkit.
//!
//! Use it through the `observe` crate, which documents it; this crate only
//! holds the macro's parse -> validate -> expand pipeline: `args` parses the
//! attribute (with `context` and `duration` for its small grammars), `item`
//! the annotated item, `valid` holds every check, and `expand` writes the
//! instrumented function.

// The workspace denies `unsafe`; only the runtime has one audited use.
#![forbid(unsafe_code)]

mod args;
mod context;
mod duration;
mod expand;
mod item;
#[cfg(test)]
mod test_util;
mod valid;

use proc_macro::TokenStream;
use quote::quote;

use crate::args::Args;
use crate::item::Item;

/// Times a function, joins or starts its correlation scope, and records its
/// outcome in logs and metrics. Documented in the `observe` crate.
#[proc_macro_attribute]
pub fn monitor_performance(args: TokenStream, item: TokenStream) -> TokenStream {
    pipeline(args.into(), item.into()).into()
}

/// Parse, validate, expand. On error: the compile errors together with the
/// untouched item, so callers get no knock-on errors (unknown function,
/// unused imports) on top of the real ones.
fn pipeline(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let checked = syn::parse2::<Args>(args).and_then(|args| {
        let parsed = Item::parse(item.clone());
        valid::validate(&args, parsed.as_ref())?;
        Ok((args, parsed))
    });
    match checked {
        Ok((args, Some(Item::Fn(function)))) => expand::expand(&args, function),
        // Not valid Rust: rustc reports the real error on the user's tokens.
        Ok(_) => item,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item)
        }
    }
}
