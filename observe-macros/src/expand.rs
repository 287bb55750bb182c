//! Writes the instrumented function from arguments and an item that passed
//! validation; nothing here rejects input.
//!
//! A sync body runs as `call_once(move || body)` so `return` and `?` end
//! the body, not the wrapper; an async body runs as an `async move` block,
//! and the guard with it inside the call's correlation scope future. Either
//! way a typed hint is first returned on a dead branch
//! (`if false { return hint.never(); }`), which fixes the body's type to the
//! function's return type before the body is checked, so `?`, elided
//! lifetimes and type errors behave as they did. The signature and
//! attributes are re-emitted unchanged, so lints and errors point at the
//! user's code.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Ident, Path};

use crate::args::Args;
use crate::context::ValueKind;
use crate::item::{Body, Function};

/// Local names of the expansion; mixed-site so no user name can clash.
struct Names {
    guard: Ident,
    hint: Ident,
    result: Ident,
    error: Ident,
    ctx: Ident,
    callsite: Ident,
}

impl Names {
    fn new() -> Self {
        let m = Span::mixed_site();
        Self {
            guard: Ident::new("__observe_guard", m),
            hint: Ident::new("__observe_hint", m),
            result: Ident::new("__observe_result", m),
            error: Ident::new("__observe_err", m),
            ctx: Ident::new("__observe_ctx", m),
            callsite: format_ident!("__OBSERVE_CALLSITE"),
        }
    }
}

/// The instrumented function, recorded as `operation`.
pub(crate) fn expand(args: &Args, f: Function, operation: &str) -> TokenStream {
    let krate: Path = args
        .krate()
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(::observe));
    let names = Names::new();
    let diverges = f.diverges();
    let Function {
        outer_attrs,
        inner_attrs,
        vis,
        sig,
        body,
    } = f;
    let is_async = sig.asyncness.is_some();

    let callsite = callsite(args, operation, &krate, &names, &sig.ident);
    let Names { result, hint, .. } = &names;
    // Returned on a dead branch, `hint` takes the function's return type
    // before the body is checked: the body then infers against it (so `?`
    // and type errors behave as without the attribute) and the result's
    // type is known when it is classified.
    let hint_stmt = quote! {
        let #hint = #krate::__private::Hint::new();
        #[allow(unreachable_code)]
        if false {
            return #hint.never();
        }
    };

    let body = match body {
        // The body runs inside its `Monitored` future, which owns the guard
        // and the call's correlation scope: the guard, the body and a
        // "cancelled" line from the guard's drop share one ID.
        Body::Plain(block) if is_async => {
            // The hint again inside the block: an async block's output is
            // inferred from its own returns, so only a return of the
            // declared type lets the tail coerce to it (`&String` to
            // `&str`, a box to `Box<dyn ..>`), as in a plain `async fn`.
            let body = quote! {
                async move {
                    #[allow(unreachable_code)]
                    if false {
                        return #hint.never();
                    }
                    #block
                }
            };
            let monitored = monitored(args, &krate, &names, &body);
            quote! {
                #hint_stmt
                #monitored.await
            }
        }
        Body::Plain(block) if diverges => {
            let guard_stmt = guard(args, &krate, &names);
            quote! {
                #guard_stmt
                #krate::__private::call_once(#krate::__private::Hint::new(), move || #block)
            }
        }
        Body::Plain(block) => {
            let guard_stmt = guard(args, &krate, &names);
            let finish = finish(&krate, &names, &quote!(&#result));
            quote! {
                #guard_stmt
                #hint_stmt
                let #result = #krate::__private::call_once(#hint, move || #block);
                #finish
                #result
            }
        }
        Body::AsyncTrait {
            stmts,
            pin_path,
            inner,
        } => {
            let monitored = monitored(args, &krate, &names, &quote!(async move #inner));
            quote! {
                #(#stmts)*
                #pin_path(async move {
                    #hint_stmt
                    #monitored.await
                })
            }
        }
    };

    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #callsite
            #body
        }
    }
}

/// The function's static callsite.
fn callsite(
    args: &Args,
    operation: &str,
    krate: &Path,
    names: &Names,
    fn_name: &Ident,
) -> TokenStream {
    let level = Ident::new(
        args.level().map_or("INFO", |l| l.as_ident_str()),
        Span::call_site(),
    );
    let slow = args.slow().map_or_else(
        || quote!(0u64),
        |(nanos, lit)| quote_spanned!(lit.span()=> #nanos),
    );
    let sample = args.sample().map_or_else(
        || quote!(0u64),
        |(rate, lit)| quote_spanned!(lit.span()=> #krate::__private::sample_threshold(#rate)),
    );
    let name = &names.callsite;
    // `file!()`/`line!()` spanned on the function name report its location.
    let file = quote_spanned!(fn_name.span()=> ::core::file!());
    let line = quote_spanned!(fn_name.span()=> ::core::line!());
    // The objective is copied into a `static` (a borrowed constant would
    // need its destructor at compile time); an error about it (not found,
    // not an `Objective`) points at the path the user wrote.
    let objective = args.objective().map(|path| {
        let held = quote_spanned!(path.span()=> #path);
        quote! {
            const _: () = {
                static __OBSERVE_OBJECTIVE: #krate::slo::Objective = #held;
                #krate::__private::__objective!(#operation, __OBSERVE_OBJECTIVE);
            };
        }
    });
    quote! {
        #krate::__private::__callsite!(#name, #operation, #level, #slow, #file, #line, #sample);
        #objective
    }
}

/// A sync call's guard, made idle and started in place: it is never
/// moved on the way in, and is finished through `&mut`.
fn guard(args: &Args, krate: &Path, names: &Names) -> TokenStream {
    let Names {
        guard, callsite, ..
    } = names;
    match context_writer(args, krate, names) {
        None => quote! {
            let mut #guard = #krate::__private::Guard::new(&#callsite);
            #guard.enter();
        },
        Some(writer) => quote! {
            let mut #guard = #krate::__private::Guard::new(&#callsite);
            #guard.enter_with(#writer);
        },
    }
}

/// `|ctx| { ctx.field("key", &value); .. }`, or `None` without context.
fn context_writer(args: &Args, krate: &Path, names: &Names) -> Option<TokenStream> {
    let mut fields = args.context().peekable();
    fields.peek()?;
    let ctx = &names.ctx;
    let fields = fields.map(|field| {
        let key = syn::LitStr::new(&field.key, field.key_span);
        let expr = &field.expr;
        // Spanned on the value, so a value that cannot be logged is
        // reported there.
        let span = expr.span();
        let value = match field.kind {
            ValueKind::Value => quote_spanned!(span=> &(#expr)),
            ValueKind::Display => quote_spanned!(span=> &#krate::__private::display(&(#expr))),
            ValueKind::Debug => quote_spanned!(span=> &#krate::__private::debug(&(#expr))),
        };
        quote_spanned! {span=> #ctx.field(#key, #value); }
    });
    Some(quote! {
        |#ctx: &mut #krate::__private::ContextWriter| {
            #(#fields)*
        }
    })
}

/// `monitored(hint, &CALLSITE, context, body, |result, guard| finish)`:
/// the async call's future. The context is rendered now, before the body
/// takes the arguments it borrows; the guard starts in place at the first
/// poll and finishes inside the call's scope.
fn monitored(args: &Args, krate: &Path, names: &Names, body: &TokenStream) -> TokenStream {
    let Names {
        guard,
        hint,
        result,
        callsite,
        ..
    } = names;
    let context = match context_writer(args, krate, names) {
        None => quote!(::core::option::Option::None),
        Some(writer) => quote!(#krate::__private::Guard::async_context(&#callsite, #writer)),
    };
    let finish = finish(krate, names, &quote!(#result));
    quote! {
        #krate::__private::monitored(#hint, &#callsite, #context, #body, |#result, #guard| #finish)
    }
}

/// Classifies the result (`result_ref` is a reference to it) and finishes
/// the guard.
fn finish(krate: &Path, names: &Names, result_ref: &TokenStream) -> TokenStream {
    let Names { guard, error, .. } = names;
    quote! {
        {
            #[allow(unused_imports)]
            use #krate::__private::{
                DescribeDebug as _, DescribeDisplay as _, DescribeName as _, IsResult as _, NotResult as _,
            };
            match (&#krate::__private::Wrap(#result_ref)).__observe_err() {
                ::core::option::Option::None => #guard.success(),
                ::core::option::Option::Some(#error) => {
                    #guard.error((&&#krate::__private::ErrWrap(#error)).__observe_describe());
                }
            }
        }
    }
}
