//! `#[guard]`: puts every function of an `impl` block (or one free function) of the binding
//! behind `crate::errors::net`, the one `catch_unwind` net between Rust and Python.
//!
//! Written above `#[pymethods]` / `#[pyfunction]`, it rewrites each body `{ ... }` of a
//! function that declares a return type into
//! `{ crate::errors::net("name", move || -> Ret { ... }) }`, where `name` is the name Python
//! sees (`#[pyo3(name = "...")]` if given).
//!
//! It also types the arguments as PyTorch's argument parser does, through
//! `#[pyo3(from_py_with = ...)]`:
//! - every `i64` / `Option<i64>` argument: a Python int outside int64 raises PyTorch's
//!   `ValueError` ("Overflow when unpacking long long") instead of PyO3's `OverflowError`
//!   (`crate::convert::int64_arg`);
//! - in a public function (a Python name without a leading `_`), `i64`, `f64` and `bool`
//!   arguments (and their `Option`s) are PyTorch's `int`, `Number` and `bool`: a 0-d integer
//!   tensor is an int, a 0-d tensor is a Number, a bool is only a bool, and anything else raises
//!   PyTorch's `TypeError` naming the function, the argument and its position
//!   (`unsqueeze(): argument 'dim' (position 1) must be int, not Tensor`). For each such
//!   argument the macro writes a small extractor function beside the annotated item
//!   (`crate::convert::{int_param, number_param, bool_param}` with the names filled in).
//!
//! Nothing else changes: the other attributes and PyO3's own handling stay as they were.

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
    let mut extractors = Vec::new();
    match &mut item {
        Item::Impl(block) => {
            let owner = owner_name(&block.self_ty);
            for member in &mut block.items {
                if let ImplItem::Fn(f) = member {
                    typed_arguments(&f.attrs, &mut f.sig, &owner, &mut extractors);
                    wrap(&f.attrs, &f.sig, &mut f.block, Some(&owner));
                }
            }
        }
        Item::Fn(f) => {
            typed_arguments(&f.attrs, &mut f.sig, "fn", &mut extractors);
            wrap(&f.attrs, &f.sig, &mut f.block, None)
        }
        _ => {
            return syn::Error::new(proc_macro2::Span::call_site(), "#[guard] applies to an impl block or a fn")
                .to_compile_error()
                .into()
        }
    }
    quote!(#item #(#extractors)*).into()
}

/// Rewrites `body` to run inside the net, if the function returns something. An op (see
/// [`profiled_name`]) also becomes a range of the autograd profiler, at the cost of one relaxed
/// load when no profile runs (Note [Profiler cost] in rustgrad-core's `profiler`).
fn wrap(attrs: &[Attribute], sig: &Signature, body: &mut Block, owner: Option<&str>) {
    let ReturnType::Type(_, ret) = &sig.output else { return };
    let name = python_name(attrs).unwrap_or_else(|| sig.ident.to_string().trim_start_matches("r#").to_string());
    let inner = body.clone();
    let Some(aten) = profiled_name(attrs, owner, &name) else {
        *body = syn::parse_quote!({ crate::errors::net(#name, move || -> #ret #inner) });
        return;
    };
    // Every Python argument, in order (the receiver first): its shape if it is a tensor.
    let mut args: Vec<proc_macro2::TokenStream> = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(_) => args.push(quote!(self)),
            FnArg::Typed(arg) => {
                let syn::Pat::Ident(pat) = &*arg.pat else { continue };
                if is_python_token(&arg.ty) {
                    continue;
                }
                let ident = &pat.ident;
                args.push(quote!(#ident));
            }
        }
    }
    *body = syn::parse_quote!({
        #[allow(unused_imports)]
        use crate::profiling::{Fall as _, Spec as _};
        let __rg_profiled = if ::rustgrad_core::profiler::flags() != 0 {
            crate::profiling::begin(#aten, |__rg_inputs: &mut crate::profiling::Inputs| {
                #( (&crate::profiling::W(&#args)).shape_into(__rg_inputs); )*
            })
        } else {
            ::core::option::Option::None
        };
        let __rg_body = move || -> #ret #inner;
        match __rg_profiled {
            ::core::option::Option::None => crate::errors::net(#name, __rg_body),
            ::core::option::Option::Some(__rg_token) => crate::errors::net_profiled(
                #name,
                __rg_token,
                |__rg_out: &#ret, __rg_in: &[usize]| (&crate::profiling::W(__rg_out)).out_bytes(__rg_in),
                __rg_body,
            ),
        }
    });
}

/// Free functions of the binding that are not ops (state, hooks, engine entry points).
const NOT_OPS: &[&str] = &[
    "backward",
    "grad",
    "function_apply",
    "saved_tensors",
    "saved_tensors_report",
    "saved_bytes",
    "tensor_list",
    "result_type",
    "random_int64",
    "layout_like",
    "with_layout",
    "wrapped_number",
    "storage_elements",
    "gradient_edge",
    "increment_version",
    "leaves_behind",
    "current_graph_task_id",
    "will_engine_execute_node",
    "enter_dual_level",
    "exit_dual_level",
    "dual_level_open",
    "make_dual",
    "unpack_dual",
    "set_tangent",
    "save_safetensors",
    "load_safetensors",
    "initial_seed",
    "from_numpy",
    "autocast_fp32",
    "clear_autocast_cache",
    "debug_panic",
    "live_nodes",
    "live_node_names",
    "no_derivative",
    "random_result",
    // Tensor methods that do not run an op.
    "__array__",
    "__array_priority__",
    "__array_wrap__",
    "__bool__",
    "__complex__",
    "__contains__",
    "__float__",
    "__format__",
    "__hash__",
    "__index__",
    "__int__",
    "__iter__",
    "__len__",
    "__reduce__",
    "__repr__",
    "__str__",
    "__traverse__",
    "__clear__",
    "backward",
    "data_ptr",
    "dim",
    "element_size",
    "is_contiguous",
    "is_floating_point",
    "is_inference",
    "ndimension",
    "nelement",
    "numel",
    "numpy",
    "register_hook",
    "register_post_accumulate_grad_hook",
    "requires_grad_",
    "retain_grad",
    "size",
    "stride",
    "storage_offset",
    "tolist",
];

/// Python names whose op has another name in PyTorch's profiler.
const RENAMED: &[(&str, &str)] = &[
    ("__radd__", "add"),
    ("__rmul__", "mul"),
    ("__truediv__", "div"),
    ("__rtruediv__", "div"),
    ("true_divide", "div"),
    ("__rmatmul__", "matmul"),
    ("__mod__", "remainder"),
    ("__rmod__", "remainder"),
    ("__rpow__", "pow"),
    ("__pos__", "positive"),
    ("__getitem__", "index"),
    ("__setitem__", "index_put_"),
    ("__iadd__", "add_"),
    ("__isub__", "sub_"),
    ("__imul__", "mul_"),
    ("__itruediv__", "div_"),
    ("__imod__", "remainder_"),
    ("__ipow__", "pow_"),
    ("float", "to"),
    ("double", "to"),
    ("half", "to"),
    ("bfloat16", "to"),
    ("bool", "to"),
    ("byte", "to"),
    ("char", "to"),
    ("int", "to"),
    ("long", "to"),
    ("short", "to"),
    ("cpu", "to"),
    ("type_as", "to"),
    ("clip", "clamp"),
    ("clip_", "clamp_"),
    ("swapaxes", "transpose"),
    ("swapdims", "transpose"),
    ("swapaxes_", "transpose_"),
    ("swapdims_", "transpose_"),
    ("where_", "where"),
];

/// The name the profiler gives the op `name` (Python's name) of the binding (`__add__` ->
/// `aten::add`), `None` for what is not an op: getters, setters, constructors, methods of
/// classes other than `Tensor`, private helpers and the names in [`NOT_OPS`]. Free functions
/// `_op` are the ops behind `torch.op` (`_randn` -> `aten::randn`).
fn profiled_name(attrs: &[Attribute], owner: Option<&str>, name: &str) -> Option<String> {
    let special = ["getter", "setter", "new", "classattr", "staticmethod", "classmethod"];
    for attr in attrs {
        if special.iter().any(|s| attr.path().is_ident(s)) {
            return None;
        }
    }
    let base = match owner {
        Some(owner) => {
            if owner != "PyTensor" || (name.starts_with('_') && !name.starts_with("__")) {
                return None;
            }
            name
        }
        None => name.strip_prefix('_').unwrap_or(name),
    };
    if NOT_OPS.contains(&base) || base.starts_with("set_") || base.starts_with("get_") || base.starts_with("is_") {
        return None;
    }
    if base.starts_with("profiler_") || base.starts_with("record_function") || base.contains("saved_tensors_hooks") {
        return None;
    }
    let renamed = RENAMED.iter().find(|(from, _)| *from == base).map(|(_, to)| *to);
    let op = renamed.unwrap_or_else(|| {
        let stripped = base.strip_prefix("__").and_then(|b| b.strip_suffix("__"));
        stripped.unwrap_or(base)
    });
    Some(format!("aten::{op}"))
}

/// The kinds of argument PyTorch's parser types: `int`, `Number`, `bool`.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Number,
    Bool,
}

/// Gives the `i64`/`f64`/`bool` arguments (and their `Option`s) their extractors (see the crate
/// documentation); `extractors` collects the functions written for a public function.
fn typed_arguments(
    attrs: &[Attribute],
    sig: &mut Signature,
    owner: &str,
    extractors: &mut Vec<proc_macro2::TokenStream>,
) {
    let name = python_name(attrs).unwrap_or_else(|| sig.ident.to_string().trim_start_matches("r#").to_string());
    let public = !name.starts_with('_');
    let keyword_only = keyword_only_names(attrs);
    let mut position = 0usize;
    for input in sig.inputs.iter_mut() {
        let FnArg::Typed(arg) = input else { continue };
        let syn::Pat::Ident(pat) = &*arg.pat else { continue };
        let arg_name = pat.ident.to_string().trim_start_matches("r#").to_string();
        if is_python_token(&arg.ty) || arg_name == "slf" {
            continue;
        }
        position += 1;
        if arg.attrs.iter().any(|a| a.path().is_ident("pyo3")) {
            continue;
        }
        let Some((kind, optional)) = kind_of(&arg.ty) else { continue };
        let extractor: syn::Path = if public {
            let fn_ident = syn::Ident::new(
                &format!("__rustgrad_arg_{owner}_{}_{arg_name}", sig.ident.to_string().trim_start_matches("r#")),
                proc_macro2::Span::call_site(),
            );
            let pos = if keyword_only.contains(&arg_name) {
                quote!(::core::option::Option::None)
            } else {
                quote!(::core::option::Option::Some(#position))
            };
            let (ty, call) = match kind {
                Kind::Int => (quote!(i64), quote!(crate::convert::int_param)),
                Kind::Number => (quote!(f64), quote!(crate::convert::number_param)),
                Kind::Bool => (quote!(bool), quote!(crate::convert::bool_param)),
            };
            let body = if optional {
                quote! {
                    if obj.is_none() {
                        return ::core::result::Result::Ok(::core::option::Option::None);
                    }
                    #call(obj, #name, #arg_name, #pos).map(::core::option::Option::Some)
                }
            } else {
                quote!(#call(obj, #name, #arg_name, #pos))
            };
            let ret = if optional { quote!(::core::option::Option<#ty>) } else { ty };
            extractors.push(quote! {
                #[doc(hidden)]
                #[allow(non_snake_case)]
                fn #fn_ident(obj: &::pyo3::Bound<'_, ::pyo3::PyAny>) -> ::pyo3::PyResult<#ret> {
                    use ::pyo3::types::PyAnyMethods as _;
                    #body
                }
            });
            syn::parse_quote!(#fn_ident)
        } else {
            match (kind, optional) {
                (Kind::Int, false) => syn::parse_quote!(crate::convert::int64_arg),
                (Kind::Int, true) => syn::parse_quote!(crate::convert::opt_int64_arg),
                _ => continue,
            }
        };
        arg.attrs.push(syn::parse_quote!(#[pyo3(from_py_with = #extractor)]));
    }
}

/// `Python<'_>` (PyO3's GIL token), which is not a Python argument.
fn is_python_token(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Python"))
}

/// The kind of an `i64`/`f64`/`bool` type and whether it is an `Option` of it.
fn kind_of(ty: &Type) -> Option<(Kind, bool)> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let simple = |path: &syn::Path| {
        if path.is_ident("i64") {
            Some(Kind::Int)
        } else if path.is_ident("f64") {
            Some(Kind::Number)
        } else if path.is_ident("bool") {
            Some(Kind::Bool)
        } else {
            None
        }
    };
    if let Some(kind) = simple(&p.path) {
        return Some((kind, false));
    }
    let last = p.path.segments.last()?;
    if p.path.segments.len() != 1 || last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.first()? {
        GenericArgument::Type(Type::Path(inner)) if args.args.len() == 1 && inner.qself.is_none() => {
            simple(&inner.path).map(|k| (k, true))
        }
        _ => None,
    }
}

/// A name for the type of an `impl` block, usable in an identifier.
fn owner_name(ty: &Type) -> String {
    quote!(#ty).to_string().chars().filter(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The names after `*` in `#[pyo3(signature = (...))]`: keyword-only arguments, which PyTorch's
/// messages give without a position.
fn keyword_only_names(attrs: &[Attribute]) -> Vec<String> {
    use proc_macro2::{Delimiter, TokenTree};
    let mut names = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("pyo3")) {
        let Ok(list) = attr.meta.require_list() else { continue };
        let tokens: Vec<TokenTree> = list.tokens.clone().into_iter().collect();
        for window in tokens.windows(3) {
            let [TokenTree::Ident(key), TokenTree::Punct(eq), TokenTree::Group(group)] = window else { continue };
            if key != "signature" || eq.as_char() != '=' || group.delimiter() != Delimiter::Parenthesis {
                continue;
            }
            let mut after_star = false;
            let mut at_item_start = true;
            let mut depth = 0i32;
            for tt in group.stream() {
                match &tt {
                    TokenTree::Punct(p) if p.as_char() == ',' && depth == 0 => {
                        at_item_start = true;
                        continue;
                    }
                    TokenTree::Punct(p) if p.as_char() == '*' && at_item_start => after_star = true,
                    TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
                    TokenTree::Punct(p) if p.as_char() == '>' => depth -= 1,
                    TokenTree::Ident(id) if at_item_start && after_star => names.push(id.to_string()),
                    _ => {}
                }
                at_item_start = false;
            }
        }
    }
    names
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
