//! The annotated item: which function shapes are accepted, and how an
//! `#[async_trait]` body is recognised.

use proc_macro2::TokenStream;
use syn::spanned::Spanned as _;
use syn::{Attribute, Block, Error, Expr, ItemFn, Signature, Stmt, Visibility};

/// A function the attribute can instrument.
pub(crate) struct Function {
    pub(crate) outer_attrs: Vec<Attribute>,
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Body,
}

/// What the function's body is.
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

impl Function {
    /// Parses and checks the annotated item.
    ///
    /// `Ok(None)` means the tokens are not valid Rust at all: the caller
    /// re-emits them untouched so rustc reports the real syntax error.
    pub(crate) fn parse(tokens: TokenStream) -> Result<Option<Self>, Error> {
        let item: syn::Item = match syn::parse2(tokens.clone()) {
            Ok(item) => item,
            Err(_) => return Ok(None),
        };
        let f = match item {
            syn::Item::Fn(f) => f,
            syn::Item::Verbatim(v) if looks_like_bodiless_fn(&v) => {
                return Err(Error::new_spanned(
                    v,
                    "#[monitor_performance] needs a function body; put it on the implementation, \
                     or on a trait method with a default body",
                ));
            }
            other => {
                return Err(Error::new(
                    item_kind_span(&other),
                    "#[monitor_performance] can only be applied to functions and methods",
                ));
            }
        };
        Self::check(&f)?;
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = f;
        let (inner_attrs, outer_attrs) = attrs
            .into_iter()
            .partition(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
        let body = if sig.asyncness.is_none() {
            async_trait_body(&block).unwrap_or(Body::Plain(*block))
        } else {
            Body::Plain(*block)
        };
        Ok(Some(Self {
            outer_attrs,
            inner_attrs,
            vis,
            sig,
            body,
        }))
    }

    fn check(f: &ItemFn) -> Result<(), Error> {
        if let Some(c) = &f.sig.constness {
            return Err(Error::new_spanned(
                c,
                "#[monitor_performance] cannot be applied to a `const fn`: timing and logging \
                 cannot run at compile time",
            ));
        }
        if let Some(a) = f.attrs.iter().find(|a| a.path().is_ident("track_caller")) {
            // The body runs in a closure, and closures cannot inherit the
            // caller's location on stable Rust: it would silently point
            // into the function instead.
            return Err(Error::new_spanned(
                a,
                "#[monitor_performance] cannot be combined with #[track_caller]: the body runs \
                 inside a closure, where `Location::caller()` would report the function itself",
            ));
        }
        Ok(())
    }

    /// Whether the function never returns (`-> !`), so nothing follows its
    /// body.
    pub(crate) fn diverges(&self) -> bool {
        matches!(&self.sig.output, syn::ReturnType::Type(_, ty) if matches!(**ty, syn::Type::Never(_)))
    }
}

fn looks_like_bodiless_fn(tokens: &TokenStream) -> bool {
    let s = tokens.to_string();
    s.contains("fn ") && s.trim_end().ends_with(';')
}

/// The span of the keyword that says what the item is (`struct`, `impl`..).
fn item_kind_span(item: &syn::Item) -> proc_macro2::Span {
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
