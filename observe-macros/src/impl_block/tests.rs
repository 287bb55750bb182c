//! Impl blocks: which methods are monitored and under which name, how a
//! method's options layer over the block's, and every misuse, reported at
//! once.

use proc_macro2::TokenStream;
use quote::quote;

use super::*;
use crate::args::Level;
use crate::item::Item;
use crate::test_util::item_errors;
use crate::valid;

fn block(tokens: TokenStream) -> ImplBlock {
    match Item::parse(tokens) {
        Some(Item::Impl(block)) => block,
        other => panic!("an impl block, got {other:?}"),
    }
}

fn args(tokens: TokenStream) -> Args {
    match syn::parse2(tokens) {
        Ok(args) => args,
        Err(error) => panic!("arguments should parse: {error}"),
    }
}

/// The expansion of `item` under `#[monitor_performance(attr)]`, which
/// must pass validation.
fn expanded(attr: TokenStream, item: TokenStream) -> String {
    let args = args(attr);
    if let Err(error) = valid::validate(&args, Item::parse(item.clone()).as_ref()) {
        panic!("should be accepted: {error}");
    }
    expand(&args, block(item)).to_string()
}

fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
    item_errors(attr, Some(item))
}

/// Operation names the expansion registers, in order.
fn operations(expansion: &str) -> Vec<String> {
    expansion
        .split("__callsite ! (__OBSERVE_CALLSITE , \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

#[test]
fn every_method_is_named_after_the_type() {
    let out = expanded(
        quote!(),
        quote! {
            impl<T: Clone> Trait for crate::store::Store<T> where T: Send {
                const N: usize = 1;
                type Item = T;
                fn get(&self) -> u8 { 1 }
                async fn load(&self) {}
                fn r#match() {}
                const fn fixed() -> u8 { 2 }
                m!();
            }
        },
    );
    assert_eq!(operations(&out), ["Store.get", "Store.load", "Store.match"]);
    assert!(out.contains("const fn fixed () -> u8 { 2 }"), "{out}");
    assert!(out.contains("const N : usize = 1 ;"), "{out}");
    assert!(out.contains("m ! () ;"), "{out}");
}

#[test]
fn prefix_skip_and_overrides() {
    let out = expanded(
        quote!(prefix = "store", level = "warn", slow = "1s"),
        quote! {
            impl Store {
                fn plain(&self) {}
                #[monitor_performance(skip)]
                fn skipped(&self) {}
                #[observe::monitor_performance("db.get", level = "debug")]
                fn named(&self) {}
                #[monitor_performance]
                fn bare(&self) {}
            }
        },
    );
    assert_eq!(operations(&out), ["store.plain", "db.get", "store.bare"]);
    // Every method attribute is consumed by the block.
    assert!(!out.contains("monitor_performance"), "{out}");
    assert!(out.contains("fn skipped (& self) { }"), "{out}");
}

#[test]
fn method_options_replace_the_blocks_one_by_one() {
    let block_args = args(quote!(
        prefix = "p",
        level = "warn",
        slow = "1s",
        crate = ::obs
    ));
    let own = args(quote!("own", level = "debug"));
    let merged = layered(Some(own), &block_args);
    assert_eq!(
        merged.operation().map(LitStr::value).as_deref(),
        Some("own")
    );
    assert_eq!(merged.level(), Some(Level::Debug));
    assert_eq!(merged.slow().map(|(nanos, _)| nanos), Some(1_000_000_000));
    assert!(merged.krate().is_some());
    assert!(merged.prefix().is_none());

    let inherited = layered(None, &block_args);
    assert_eq!(inherited.level(), Some(Level::Warn));
    assert!(inherited.operation().is_none());
}

#[test]
fn type_ident() {
    for (tokens, expected) in [
        (
            quote!(
                impl<T> Tr for a::Store<T> {}
            ),
            Some("Store"),
        ),
        (quote!(impl Tr for &Store {}), Some("Store")),
        (
            quote!(
                impl<T> Tr for [T] {}
            ),
            None,
        ),
        (quote!(impl dyn Tr {}), None),
    ] {
        let block = block(tokens);
        assert_eq!(
            block.type_ident().map(ToString::to_string).as_deref(),
            expected
        );
    }
}

#[test]
fn name_on_a_block() {
    assert_eq!(
        errors(quote!("store"), quote!(impl S { fn f() {} })),
        [
            "an impl block takes no operation name: each method is named `Type.method`; \
             use a prefix instead, e.g. #[monitor_performance(prefix = \"store\")], \
             or name a method with its own #[monitor_performance(\"store.get\")]"
        ]
    );
}

#[test]
fn context_on_a_block() {
    assert_eq!(
        errors(quote!(context(id = 1)), quote!(impl S { fn f() {} })),
        [
            "`context` is not allowed on an impl block: arguments differ per method; \
             put it on the method, e.g. #[monitor_performance(context(id = id))]"
        ]
    );
}

#[test]
fn skip_outside_a_blocks_method() {
    let message = "`skip` only applies to a method inside an impl block under \
                   #[monitor_performance]; elsewhere remove the attribute instead";
    assert_eq!(
        errors(quote!(skip), quote!(impl S { fn f() {} })),
        [message]
    );
    assert_eq!(
        errors(
            quote!(skip),
            quote!(
                fn f() {}
            )
        ),
        [message]
    );
}

#[test]
fn skip_with_other_options() {
    let message = "`skip` takes no other options: a skipped method is not monitored; remove \
                   this option or `skip`";
    assert_eq!(
        errors(
            quote!(),
            quote!(impl S {
                #[monitor_performance("x", skip, level = "debug")]
                fn f() {}
            })
        ),
        [message, message]
    );
    assert_eq!(
        errors(
            quote!(),
            quote!(impl S { #[monitor_performance(skip = true)] fn f() {} })
        ),
        ["`skip` takes no value, e.g. #[monitor_performance(skip)]"]
    );
}

#[test]
fn prefix_on_a_function_or_method() {
    let message = "`prefix` only applies to an impl block; name this function's operation \
                   instead, e.g. #[monitor_performance(\"store.get\")]";
    assert_eq!(
        errors(
            quote!(prefix = "p"),
            quote!(
                fn f() {}
            )
        ),
        [message]
    );
    assert_eq!(
        errors(
            quote!(),
            quote!(impl S { #[monitor_performance(prefix = "p")] fn f() {} })
        ),
        [message]
    );
}

#[test]
fn bad_prefix() {
    for prefix in ["", "1x", "a b", "é"] {
        assert_eq!(
            errors(quote!(prefix = #prefix), quote!(impl S { fn f() {} })),
            [format!(
                "invalid prefix `{prefix}`: use letters, digits, `_`, `.`, `:` or `-`, \
                 starting with a letter or `_`, e.g. prefix = \"store\""
            )]
        );
    }
    assert_eq!(
        errors(quote!(prefix = 1), quote!(impl S { fn f() {} })),
        ["expected a string literal for `prefix`, e.g. prefix = \"store\""]
    );
}

#[test]
fn type_without_a_usable_name() {
    assert_eq!(
        errors(
            quote!(),
            quote!(
                impl<T> Tr for [T] {
                    fn f() {}
                }
            )
        ),
        [
            "this type has no name to give its methods' operations; give a prefix, \
             e.g. #[monitor_performance(prefix = \"store\")]"
        ]
    );
    assert_eq!(
        errors(quote!(), quote!(impl Café { fn f() {} })),
        [
            "the type name `Café` cannot start an operation name (letters, digits, `_`, `.`, \
             `:` or `-`, ASCII only); give a prefix, e.g. #[monitor_performance(prefix = \"store\")]"
        ]
    );
    // Not needed when every monitored method is named or there is a prefix.
    let ok = |attr: TokenStream, item: TokenStream| {
        let args = args(attr);
        valid::validate(&args, Item::parse(item).as_ref()).is_ok()
    };
    assert!(ok(
        quote!(prefix = "s"),
        quote!(
            impl<T> Tr for [T] {
                fn f() {}
            }
        )
    ));
    assert!(ok(
        quote!(),
        quote!(
            impl<T> Tr for [T] {
                #[monitor_performance("s.f")]
                fn f() {}
                const fn g() {}
            }
        )
    ));
}

#[test]
fn method_level_mistakes_all_at_once() {
    let found = errors(
        quote!("op", context(a = 1)),
        quote!(impl S {
            #[monitor_performance(bogus = 1)]
            fn f() {}
            #[monitor_performance]
            #[monitor_performance(level = "debug")]
            fn g() {}
            #[monitor_performance]
            const fn h() {}
            fn café() {}
        }),
    );
    assert_eq!(found.len(), 6, "{found:#?}");
    assert!(found[0].starts_with("an impl block takes no operation name"));
    assert!(found[1].starts_with("`context` is not allowed on an impl block"));
    assert!(found[2].starts_with("unknown option `bogus`"));
    assert!(found[3].starts_with("duplicate #[monitor_performance] on this method"));
    assert!(found[4].starts_with("#[monitor_performance] cannot be applied to a `const fn`"));
    assert!(found[5].starts_with("the function name `café` is not a valid operation name"));
}

#[test]
fn method_attribute_forms() {
    assert_eq!(
        errors(
            quote!(),
            quote!(impl S { #[monitor_performance = "x"] fn f() {} })
        ),
        ["expected #[monitor_performance] or #[monitor_performance(...)]"]
    );
    // Left alone silently, named explicitly an error.
    assert_eq!(
        errors(
            quote!(),
            quote!(impl S { fn f() {} #[monitor_performance] default fn g() {} })
        ),
        ["#[monitor_performance] cannot be applied to a specialising `default fn`"]
    );
    let out = expanded(quote!(), quote!(impl S { default fn g() {} }));
    assert!(operations(&out).is_empty(), "{out}");
}

#[test]
fn a_rejected_block_comes_back_without_method_attributes() {
    let block = block(quote!(impl S {
        #[monitor_performance(skip)]
        fn f() {}
    }));
    let plain = block.into_plain().to_string();
    assert!(!plain.contains("monitor_performance"), "{plain}");
    assert!(plain.contains("fn f () { }"), "{plain}");
}
