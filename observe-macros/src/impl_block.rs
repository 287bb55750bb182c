//! `#[monitor_performance]` on an `impl` block: every method with a body is
//! monitored as `Type.method` (or `prefix.method`).
//!
//! Parsing takes each method's own `#[monitor_performance(...)]` off it and
//! keeps its arguments beside it, so that the block's expansion is the only
//! one: an attribute left on a method would expand a second time, on its
//! own. `valid` checks the block and its methods together; `expand` here
//! layers each method's options over the block's and hands the method to
//! the function expansion.

use proc_macro2::TokenStream;
use quote::ToTokens as _;
use syn::{Attribute, Error, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, Meta, Type};

use crate::args::{Arg, Args, Key, Opt};
use crate::expand;
use crate::item::Function;

/// An annotated impl block.
#[derive(Debug)]
pub(crate) struct ImplBlock {
    /// The block as written, with its items moved to `members`.
    pub(crate) header: ItemImpl,
    /// The block's items in source order.
    pub(crate) members: Vec<Member>,
}

/// One item of the block.
#[derive(Debug)]
pub(crate) enum Member {
    /// A method (an associated fn with a body).
    Method(Method),
    /// Consts, associated types, macro invocations: left as they are.
    Other(ImplItem),
}

/// A method of the block.
#[derive(Debug)]
pub(crate) struct Method {
    /// The method without its `#[monitor_performance]` attributes.
    pub(crate) func: ImplItemFn,
    /// The `#[monitor_performance]` attributes it carried, in source order
    /// (more than one is an error).
    pub(crate) attrs: Vec<MethodAttr>,
}

/// A `#[monitor_performance(...)]` on a method of the block.
#[derive(Debug)]
pub(crate) struct MethodAttr {
    /// The attribute as written, where errors about it point.
    pub(crate) attr: Attribute,
    /// Its arguments, or why they cannot be read.
    pub(crate) args: syn::Result<Args>,
}

impl ImplBlock {
    /// Splits the block into its members, taking the methods' own
    /// `#[monitor_performance]` attributes off them.
    pub(crate) fn parse(mut header: ItemImpl) -> Self {
        let members = std::mem::take(&mut header.items)
            .into_iter()
            .map(|item| match item {
                ImplItem::Fn(func) => Member::Method(Method::parse(func)),
                other => Member::Other(other),
            })
            .collect();
        Self { header, members }
    }

    /// The identifier methods are named after: the last path segment of
    /// the self type (`Store` for `impl<T> Trait for crate::Store<T>`, and
    /// for `&Store`). `None` for types without one, such as `[T]` or
    /// `dyn Trait`.
    pub(crate) fn type_ident(&self) -> Option<&Ident> {
        let mut ty = &*self.header.self_ty;
        loop {
            ty = match ty {
                Type::Path(path) => return path.path.segments.last().map(|s| &s.ident),
                Type::Reference(reference) => &reference.elem,
                Type::Paren(inner) => &inner.elem,
                Type::Group(inner) => &inner.elem,
                _ => return None,
            };
        }
    }

    /// The block with its methods untouched: what is emitted next to the
    /// compile errors, without the methods' attributes, so none of them
    /// expands on its own and adds errors of its own.
    pub(crate) fn into_plain(self) -> TokenStream {
        let Self {
            mut header,
            members,
        } = self;
        header.items = members
            .into_iter()
            .map(|member| match member {
                Member::Method(method) => ImplItem::Fn(method.func),
                Member::Other(item) => item,
            })
            .collect();
        header.into_token_stream()
    }
}

impl Method {
    fn parse(mut func: ImplItemFn) -> Self {
        let (ours, rest): (Vec<Attribute>, Vec<Attribute>) =
            func.attrs.into_iter().partition(is_monitor_performance);
        func.attrs = rest;
        let attrs = ours
            .into_iter()
            .map(|attr| MethodAttr {
                args: read_args(&attr),
                attr,
            })
            .collect();
        Self { func, attrs }
    }

    /// The arguments of the method's own attribute, when it has one that
    /// could be read.
    pub(crate) fn args(&self) -> Option<&Args> {
        self.attrs.first().and_then(|a| a.args.as_ref().ok())
    }

    /// Whether the block's expansion instruments this method: not when it
    /// says `skip`, and not a `const fn` (or a specialising `default fn`)
    /// the user did not ask for by name.
    pub(crate) fn is_monitored(&self) -> bool {
        match self.attrs.first() {
            Some(attr) => !attr.args.as_ref().is_ok_and(Args::skip),
            None => self.func.sig.constness.is_none() && self.func.defaultness.is_none(),
        }
    }

    /// The method's own name, without any `r#`.
    pub(crate) fn name(&self) -> String {
        Function::name_of(&self.func.sig)
    }
}

/// Whether `attr` is `#[monitor_performance]`, however its path is
/// spelled (`observe::monitor_performance` too).
fn is_monitor_performance(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "monitor_performance")
}

fn read_args(attr: &Attribute) -> syn::Result<Args> {
    match &attr.meta {
        Meta::Path(_) => Ok(Args { list: Vec::new() }),
        Meta::List(list) => syn::parse2(list.tokens.clone()),
        Meta::NameValue(value) => Err(Error::new_spanned(
            value.eq_token,
            "expected #[monitor_performance] or #[monitor_performance(...)]",
        )),
    }
}

/// The block with its monitored methods instrumented. `args` and `block`
/// passed validation.
pub(crate) fn expand(args: &Args, block: ImplBlock) -> TokenStream {
    let prefix = args.prefix().map_or_else(
        || {
            block
                .type_ident()
                .map(|ident| ident.to_string().trim_start_matches("r#").to_owned())
                .unwrap_or_default()
        },
        LitStr::value,
    );
    let ImplBlock {
        mut header,
        members,
    } = block;
    header.items = members
        .into_iter()
        .map(|member| match member {
            Member::Method(method) if method.is_monitored() => {
                ImplItem::Verbatim(expand_method(args, method, &prefix))
            }
            Member::Method(method) => ImplItem::Fn(method.func),
            Member::Other(item) => item,
        })
        .collect();
    header.into_token_stream()
}

fn expand_method(block_args: &Args, method: Method, prefix: &str) -> TokenStream {
    let name = method.name();
    let own = method
        .attrs
        .into_iter()
        .next()
        .and_then(|attr| attr.args.ok());
    let args = layered(own, block_args);
    let operation = args
        .operation()
        .map_or_else(|| format!("{prefix}.{name}"), LitStr::value);
    let ImplItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = method.func;
    expand::expand(
        &args,
        Function::from_parts(attrs, vis, sig, block),
        &operation,
    )
}

/// A method's arguments over the block's: the method's own options, then
/// each option of the block the method does not set itself.
fn layered(own: Option<Args>, block: &Args) -> Args {
    let mut list = own.map_or_else(Vec::new, |args| args.list);
    let set: Vec<Key> = list
        .iter()
        .filter_map(|arg| match arg {
            Arg::Option(opt) => Some(opt.key),
            _ => None,
        })
        .collect();
    list.extend(
        block
            .list
            .iter()
            .filter(|arg| {
                matches!(arg, Arg::Option(Opt { key, .. }) if inherited(*key) && !set.contains(key))
            })
            .cloned(),
    );
    Args { list }
}

/// Whether a method inherits the block's value of option `key`.
fn inherited(key: Key) -> bool {
    match key {
        Key::Level | Key::Slow | Key::Sample | Key::Crate | Key::Objective => true,
        // Not allowed on a block (context), or about the block itself.
        Key::Context | Key::Prefix | Key::Skip => false,
    }
}

#[cfg(test)]
mod tests;
