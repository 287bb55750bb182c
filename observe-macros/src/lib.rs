//! The `#[monitor_performance]` attribute of the observe toolkit.
//!
//! Use it through the `observe` crate, which documents it; this crate only
//! holds the macro's parse -> validate -> expand pipeline: `args` parses the
//! attribute (with `context` and `duration` for its small grammars), `item`
//! the annotated item (`impl_block` an annotated impl block), `valid` holds
//! every check, and `expand` writes the instrumented function.

// The workspace denies `unsafe`; only the runtime has one audited use.
#![forbid(unsafe_code)]

mod args;
mod context;
mod duration;
mod expand;
mod impl_block;
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
    let parsed = Item::parse(item.clone());
    let checked = syn::parse2::<Args>(args)
        .and_then(|args| valid::validate(&args, parsed.as_ref()).map(|()| args));
    match (checked, parsed) {
        (Ok(args), Some(Item::Fn(function))) => {
            let operation = args
                .operation()
                .map_or_else(|| function.default_operation(), syn::LitStr::value);
            expand::expand(&args, function, &operation)
        }
        (Ok(args), Some(Item::Impl(block))) => impl_block::expand(&args, block),
        // Not valid Rust: rustc reports the real error on the user's tokens.
        (Ok(_), _) => item,
        (Err(error), parsed) => {
            let error = error.to_compile_error();
            // A block goes back without its methods' attributes, which
            // would otherwise expand on their own and add errors of theirs.
            let item = match parsed {
                Some(Item::Impl(block)) => block.into_plain(),
                _ => item,
            };
            quote!(#error #item)
        }
    }
}
