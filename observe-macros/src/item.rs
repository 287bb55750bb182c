//! The annotated item, parsed into a small model: a function (and how its
//! body is shaped, including the body `#[async_trait]` writes), a function
//! without a body, an impl block (see `impl_block`), or something else.
//! Whether it is accepted is for `valid` to say.

use proc_macro2::TokenStream;
use syn::{Attribute, Block, Expr, ItemFn, Signature, Stmt, TraitItemFn, Visibility};

use crate::impl_block::ImplBlock;

/// A function with a body.
#[derive(Debug)]
pub(crate) struct Function {
    pub(crate) outer_attrs: Vec<Attribute>,
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Body,
}

/// What the function's body is.
#[derive(Debug)]
pub(crate) enum Body {
    /// A plain block, of a sync or an `async fn`.
    Plain(Block),
    /// A body `#[async_trait]` already rewrote: statements, then a final
    /// `Box::pin(async move { .. })` whose inner block is instrumented.
    AsyncTrait {
        stmts: Vec<Stmt>,
        pin_path: syn::ExprPath,
        inner: Block,
    },
}

/// What the attribute was put on.
#[derive(Debug)]
pub(crate) enum Item {
    /// A function with a body.
    Fn(Function),
    /// A function signature without a body (`fn f(&self);` in a trait).
    Bodiless(TraitItemFn),
    /// An impl block, whose methods are monitored.
    Impl(ImplBlock),
    /// Anything else: a struct, a trait, ...
    Other(syn::Item),
}

impl Item {
    /// Parses the annotated item.
    ///
    /// `None` means the tokens are not valid Rust at all: the caller
    /// re-emits them untouched so rustc reports the real syntax error.
    pub(crate) fn parse(tokens: TokenStream) -> Option<Self> {
        let item = match syn::parse2::<syn::Item>(tokens) {
            Ok(syn::Item::Fn(f)) => return Some(Item::Fn(Function::from_syn(f))),
            Ok(syn::Item::Impl(block)) => return Some(Item::Impl(ImplBlock::parse(block))),
            Ok(item) => item,
            Err(_) => return None,
        };
        // syn keeps a body-less `fn` outside a trait as verbatim tokens; read
        // them as a trait method, whose body is optional.
        if let syn::Item::Verbatim(tokens) = &item {
            if let Ok(f) = syn::parse2::<TraitItemFn>(tokens.clone()) {
                if f.default.is_none() {
                    return Some(Item::Bodiless(f));
                }
            }
        }
        Some(Item::Other(item))
    }
}

impl Function {
    fn from_syn(f: ItemFn) -> Self {
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = f;
        Self::from_parts(attrs, vis, sig, *block)
    }

    /// A function from its parts: those of a free function or of a method
    /// in an impl block.
    pub(crate) fn from_parts(
        attrs: Vec<Attribute>,
        vis: Visibility,
        sig: Signature,
        block: Block,
    ) -> Self {
        let (inner_attrs, outer_attrs) = attrs
            .into_iter()
            .partition(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
        let body = if sig.asyncness.is_none() {
            async_trait_body(&block).unwrap_or(Body::Plain(block))
        } else {
            Body::Plain(block)
        };
        Self {
            outer_attrs,
            inner_attrs,
            vis,
            sig,
            body,
        }
    }

    /// The operation name when the attribute gives none: the function's
    /// name, without any `r#`.
    pub(crate) fn default_operation(&self) -> String {
        Self::name_of(&self.sig)
    }

    /// The name of the function `sig` declares, without any `r#`.
    pub(crate) fn name_of(sig: &Signature) -> String {
        sig.ident.to_string().trim_start_matches("r#").to_owned()
    }

    /// Whether the function never returns (`-> !`), so nothing follows its
    /// body.
    pub(crate) fn diverges(&self) -> bool {
        matches!(&self.sig.output, syn::ReturnType::Type(_, ty) if matches!(**ty, syn::Type::Never(_)))
    }
}

/// Recognises the body `#[async_trait]` writes for an `async fn`: any
/// statements, then `Box::pin(async move { .. })` as the tail expression.
fn async_trait_body(block: &Block) -> Option<Body> {
    let (last, rest) = block.stmts.split_last()?;
    let Stmt::Expr(Expr::Call(call), None) = last else {
        return None;
    };
    let Expr::Path(path) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let is_box_pin = segments.len() >= 2
        && segments[segments.len() - 2] == "Box"
        && segments[segments.len() - 1] == "pin";
    if !is_box_pin || call.args.len() != 1 {
        return None;
    }
    let Some(Expr::Async(async_block)) = call.args.first() else {
        return None;
    };
    async_block.capture?;
    Some(Body::AsyncTrait {
        stmts: rest.to_vec(),
        pin_path: path.clone(),
        inner: async_block.block.clone(),
    })
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> Item {
        match Item::parse(tokens.clone()) {
            Some(item) => item,
            None => panic!("`{tokens}` should parse"),
        }
    }

    #[test]
    fn function_with_body() {
        for tokens in [
            quote!(
                fn f() {}
            ),
            quote!(
                pub async fn f(&self) -> u32 {
                    1
                }
            ),
            quote!(
                #[inline]
                unsafe fn f<T: Copy>(t: T) -> T
                where
                    T: Send,
                {
                    t
                }
            ),
        ] {
            assert!(matches!(parse(tokens), Item::Fn(_)));
        }
    }

    #[test]
    fn function_without_body() {
        for tokens in [
            quote!(
                fn f(&self);
            ),
            quote!(
                async fn f(&self) -> u32;
            ),
            quote!(
                #[doc = "x"]
                unsafe fn f<T>()
                where
                    T: Send;
            ),
        ] {
            assert!(matches!(parse(tokens), Item::Bodiless(_)));
        }
    }

    #[test]
    fn other_items() {
        for tokens in [
            quote!(
                struct S;
            ),
            quote!(
                trait T {
                    fn f();
                }
            ),
            // Mentions `fn` and ends in `;`, yet is no function.
            quote!(
                type F = fn();
            ),
            quote!(
                const X: fn() = f;
            ),
            quote!(
                static S: fn() = f;
            ),
        ] {
            assert!(matches!(parse(tokens), Item::Other(_)));
        }
    }

    #[test]
    fn not_rust() {
        assert!(Item::parse(quote!(fn f() { let })).is_none());
        assert!(Item::parse(quote!(fn)).is_none());
    }

    #[test]
    fn attributes_split_by_style() {
        let Item::Fn(f) = parse(quote!(
            #[inline]
            fn f() {
                #![allow(unused)]
            }
        )) else {
            panic!("a function");
        };
        assert_eq!(f.outer_attrs.len(), 1);
        assert_eq!(f.inner_attrs.len(), 1);
    }

    #[test]
    fn async_trait_body_is_recognised() {
        let Item::Fn(f) = parse(quote!(
            fn get<'a>(&'a self) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>> {
                let __self = self;
                Box::pin(async move { 1 })
            }
        )) else {
            panic!("a function");
        };
        assert!(matches!(&f.body, Body::AsyncTrait { stmts, .. } if stmts.len() == 1));

        // Not `async move`, not `Box::pin`, or an `async fn`: a plain body.
        for tokens in [
            quote!(
                fn get(&self) -> Pin<Box<dyn Future<Output = u32>>> {
                    Box::pin(async { 1 })
                }
            ),
            quote!(
                fn get(&self) -> Pin<Box<dyn Future<Output = u32>>> {
                    pin(async move { 1 })
                }
            ),
            quote!(
                async fn get(&self) -> Pin<Box<dyn Future<Output = u32>>> {
                    Box::pin(async move { 1 })
                }
            ),
        ] {
            let Item::Fn(f) = parse(tokens) else {
                panic!("a function");
            };
            assert!(matches!(f.body, Body::Plain(_)));
        }
    }

    #[test]
    fn default_operation_drops_raw_prefix() {
        let Item::Fn(f) = parse(quote!(
            fn r#match() {}
        )) else {
            panic!("a function");
        };
        assert_eq!(f.default_operation(), "match");
    }

    #[test]
    fn diverges() {
        for (tokens, expected) in [
            (
                quote!(
                    fn f() -> ! {
                        loop {}
                    }
                ),
                true,
            ),
            (
                quote!(
                    fn f() -> u8 {
                        0
                    }
                ),
                false,
            ),
            (
                quote!(
                    fn f() {}
                ),
                false,
            ),
        ] {
            let Item::Fn(f) = parse(tokens) else {
                panic!("a function");
            };
            assert_eq!(f.diverges(), expected);
        }
    }
}
