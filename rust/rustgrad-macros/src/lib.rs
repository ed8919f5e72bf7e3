//! `#[guard]`: puts every function of an `impl` block (or one free function) of the binding
//! behind `crate::errors::net`, the one `catch_unwind` net between Rust and Python.
//!
//! Written above `#[pymethods]` / `#[pyfunction]`, it rewrites each body `{ ... }` of a
//! function that declares a return type into
//! `{ crate::errors::net("name", move || -> Ret { ... }) }`, where `name` is the name Python
//! sees (`#[pyo3(name = "...")]` if given).
//!
//! It also gives every `i64` / `Option<i64>` argument `#[pyo3(from_py_with = ...)]`, so a
//! Python int outside int64 raises PyTorch's `ValueError` ("Overflow when unpacking long long")
//! instead of PyO3's `OverflowError` (see `crate::convert::int64_arg`). Nothing else changes:
//! the other attributes and PyO3's own handling stay as they were.

use proc_macro::TokenStream;
use quote::quote;
use syn::{
    parse_macro_input, Attribute, Block, FnArg, GenericArgument, ImplItem, Item, LitStr, PathArguments, ReturnType,
    Signature, Type,
};

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
                    int_arguments(&mut f.sig);
                    wrap(&f.attrs, &f.sig, &mut f.block);
                }
            }
        }
        Item::Fn(f) => {
            int_arguments(&mut f.sig);
            wrap(&f.attrs, &f.sig, &mut f.block)
        }
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

/// Extracts `i64` and `Option<i64>` arguments through `crate::convert::{int64_arg, opt_int64_arg}`.
fn int_arguments(sig: &mut Signature) {
    for input in sig.inputs.iter_mut() {
        let FnArg::Typed(arg) = input else { continue };
        let extractor: syn::Path = match int_kind(&arg.ty) {
            Some(false) => syn::parse_quote!(crate::convert::int64_arg),
            Some(true) => syn::parse_quote!(crate::convert::opt_int64_arg),
            None => continue,
        };
        let already = arg.attrs.iter().any(|a| a.path().is_ident("pyo3"));
        if !already {
            arg.attrs.push(syn::parse_quote!(#[pyo3(from_py_with = #extractor)]));
        }
    }
}

/// `Some(false)` for `i64`, `Some(true)` for `Option<i64>`, else `None`.
fn int_kind(ty: &Type) -> Option<bool> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    if p.path.is_ident("i64") {
        return Some(false);
    }
    let last = p.path.segments.last()?;
    if p.path.segments.len() != 1 || last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.first()? {
        GenericArgument::Type(Type::Path(inner)) if args.args.len() == 1 && inner.path.is_ident("i64") => Some(true),
        _ => None,
    }
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
