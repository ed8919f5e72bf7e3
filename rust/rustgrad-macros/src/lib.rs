//! `#[guard]`: puts every function of an `impl` block (or one free function) of the binding
//! behind `crate::errors::net`, the one `catch_unwind` net between Rust and Python.
//!
//! Written above `#[pymethods]` / `#[pyfunction]`, it rewrites each body `{ ... }` of a
//! function that declares a return type into
//! `{ crate::errors::net("name", move || -> Ret { ... }) }`, where `name` is the name Python
//! sees (`#[pyo3(name = "...")]` if given). Nothing else changes: signatures, attributes and
//! PyO3's own handling stay as they were.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Attribute, Block, ImplItem, Item, LitStr, ReturnType, Signature};

/// Guards the functions of the annotated `impl` block or the annotated function.
#[proc_macro_attribute]
pub fn guard(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return syn::Error::new(proc_macro2::Span::call_site(), "#[guard] takes no arguments")
            .to_compile_error()
            .into();
    }
    let mut item = parse_macro_input!(item as Item);
    match &mut item {
        Item::Impl(block) => {
            for member in &mut block.items {
                if let ImplItem::Fn(f) = member {
                    wrap(&f.attrs, &f.sig, &mut f.block);
                }
            }
        }
        Item::Fn(f) => wrap(&f.attrs, &f.sig, &mut f.block),
        _ => {
            return syn::Error::new(proc_macro2::Span::call_site(), "#[guard] applies to an impl block or a fn")
                .to_compile_error()
                .into()
        }
    }
    quote!(#item).into()
}

/// Rewrites `body` to run inside the net, if the function returns something.
fn wrap(attrs: &[Attribute], sig: &Signature, body: &mut Block) {
    let ReturnType::Type(_, ret) = &sig.output else { return };
    let name = python_name(attrs).unwrap_or_else(|| sig.ident.to_string().trim_start_matches("r#").to_string());
    let inner = body.clone();
    *body = syn::parse_quote!({ crate::errors::net(#name, move || -> #ret #inner) });
}

/// The `name = "..."` of a `#[pyo3(...)]` attribute, if any.
fn python_name(attrs: &[Attribute]) -> Option<String> {
    use proc_macro2::TokenTree;
    for attr in attrs.iter().filter(|a| a.path().is_ident("pyo3")) {
        let Ok(list) = attr.meta.require_list() else { continue };
        let tokens: Vec<TokenTree> = list.tokens.clone().into_iter().collect();
        for window in tokens.windows(3) {
            if let [TokenTree::Ident(key), TokenTree::Punct(eq), TokenTree::Literal(lit)] = window {
                if key == "name" && eq.as_char() == '=' {
                    let lit: LitStr = syn::parse_str(&lit.to_string()).ok()?;
                    return Some(lit.value());
                }
            }
        }
    }
    None
}
