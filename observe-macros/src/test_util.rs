//! Helpers shared by the unit tests: run tokens through parse and validate,
//! and read back the model or the error messages.

use proc_macro2::TokenStream;

use crate::args::Args;
use crate::item::Item;
use crate::valid;

/// Arguments that parse and pass validation.
pub(crate) fn parse(tokens: TokenStream) -> Args {
    match check(tokens.clone(), None) {
        Ok(args) => args,
        Err(error) => panic!("`{tokens}` should be accepted, got: {error}"),
    }
}

/// Every error message for the arguments `tokens`, in reporting order.
pub(crate) fn errors(tokens: TokenStream) -> Vec<String> {
    item_errors(tokens, None)
}

/// The one error message for the arguments `tokens`.
pub(crate) fn single_error(tokens: TokenStream) -> String {
    let mut all = errors(tokens);
    assert_eq!(all.len(), 1, "expected exactly one error, got {all:?}");
    all.remove(0)
}

/// Every error message for the arguments `args` on the item `item` (when
/// given), in reporting order.
pub(crate) fn item_errors(args: TokenStream, item: Option<TokenStream>) -> Vec<String> {
    match check(args.clone(), item) {
        Ok(args) => panic!("`{args:?}` should be rejected"),
        Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
    }
}

fn check(args: TokenStream, item: Option<TokenStream>) -> syn::Result<Args> {
    let args = syn::parse2::<Args>(args)?;
    let item = item.and_then(Item::parse);
    valid::validate(&args, item.as_ref())?;
    Ok(args)
}
