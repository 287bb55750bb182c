//! The `#[monitor_performance]` attribute of the observe toolkit.
//!
//! Use it through the `observe` crate, which documents it; this crate only
//! holds the macro's parse -> validate -> expand pipeline:
//! `args` parses the attribute, `item` the annotated function,
//! `expand` writes the instrumented function.

// The workspace denies `unsafe`; only the runtime has one audited use.
#![forbid(unsafe_code)]

mod args;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Times a function, joins or starts its correlation scope, and records its
/// outcome in logs and metrics. Documented in the `observe` crate.
#[proc_macro_attribute]
pub fn monitor_performance(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::monitor_performance(args.into(), item.into()).into()
}
