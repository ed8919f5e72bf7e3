//! Fused optimizer updates: one pass over a parameter and its state instead of a chain of
//! whole-tensor in-place ops, with every rounding of PyTorch's single-tensor arithmetic kept.

use crate::dtype::{DType, Float};
use crate::tensor::{Tensor, TensorData};

/// The numbers of one Adam step, as `optim.Adam` computes them in Python before the tensor
/// arithmetic (each is rounded to the parameter's dtype where the kernel reads it).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// `1 - beta1`, the weight of `exp_avg.lerp_(grad, 1 - beta1)`.
    pub lerp_weight: f64,
    /// `beta2`, the factor of `exp_avg_sq.mul_(beta2)`.
    pub beta2: f64,
    /// `1 - beta2`, the value of `exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)`.
    pub square_weight: f64,
    /// `sqrt(1 - beta2^step)`, dividing `exp_avg_sq.sqrt()`.
    pub bias_correction2_sqrt: f64,
    /// `eps`, added to the denominator.
    pub eps: f64,
    /// `-lr / (1 - beta1^step)`, the value of `param.addcdiv_(exp_avg, denom, value=...)`.
    pub step_value: f64,
}

/// One Adam update of `param`, `exp_avg` and `exp_avg_sq` in place from `grad`, element by
/// element:
///
/// - `exp_avg = fma(grad - exp_avg, w, exp_avg)` (PyTorch's `lerp_` for `w < 0.5`; for larger
///   `w`, `fma(grad - exp_avg, w - 1, grad)`);
/// - `exp_avg_sq = fma(grad * (1 - beta2), grad, exp_avg_sq * beta2)` (`mul_`, then
///   `addcmul_`, one rounding);
/// - `param = param + (exp_avg * step_value) / (sqrt(exp_avg_sq) / bc2_sqrt + eps)`.
///
/// The version counters move as the op-by-op update moves them (`param` and `exp_avg` once,
/// `exp_avg_sq` twice). Returns `false`, writing nothing, unless all four are contiguous
/// float32 or all float64 tensors of one nonempty shape, the three updated ones in distinct buffers
/// from each other and from `grad`.
pub fn adam_step(param: &Tensor, grad: &Tensor, exp_avg: &Tensor, exp_avg_sq: &Tensor, h: AdamStep) -> bool {
    let (p, g, m, v) = (param.data(), grad.data(), exp_avg.data(), exp_avg_sq.data());
    let dtype = p.dtype();
    let all = [&p, &g, &m, &v];
    if p.numel() == 0
        || !matches!(dtype, DType::F32 | DType::F64)
        || all.iter().any(|t| t.dtype() != dtype || t.shape != p.shape || !t.is_contiguous())
    {
        return false;
    }
    let distinct = |a: &TensorData, b: &TensorData| !a.storage.same_buffer(&b.storage);
    if !(distinct(&p, &m) && distinct(&p, &v) && distinct(&m, &v) && [&p, &m, &v].iter().all(|t| distinct(t, &g))) {
        return false;
    }
    match dtype {
        DType::F64 => update::<f64>(&p, &g, &m, &v, h),
        _ => update::<f32>(&p, &g, &m, &v, h),
    }
    p.bump_version();
    m.bump_version();
    v.bump_version();
    v.bump_version();
    true
}

fn update<T: Float>(p: &TensorData, g: &TensorData, m: &TensorData, v: &TensorData, h: AdamStep) {
    let n = p.numel();
    let c = |x: f64| T::from_f64(x);
    // `w - 1` from the weight as the kernel sees it (already rounded to the dtype)
    let w = c(h.lerp_weight);
    let w_minus_one = c(w.to_f64() - 1.0);
    let small_weight = h.lerp_weight.abs() < 0.5;
    let (beta2, square_weight, bc2, eps, step) =
        (c(h.beta2), c(h.square_weight), c(h.bias_correction2_sqrt), c(h.eps), c(h.step_value));
    let grad = crate::kernels::values::<T>(g);
    // SAFETY: each run `offset..offset + n` lies inside its storage (contiguous layouts), and
    // the three storages are distinct from each other and from `grad`'s (checked by the caller),
    // so these are the only live slices of them.
    let (ps, ms, vs) = unsafe {
        (
            &mut p.storage.slice_mut::<T>()[p.offset..p.offset + n],
            &mut m.storage.slice_mut::<T>()[m.offset..m.offset + n],
            &mut v.storage.slice_mut::<T>()[v.offset..v.offset + n],
        )
    };
    let k = Coefficients { w, w_minus_one, small_weight, beta2, square_weight, bc2, eps, step };
    let run = |(((ps, ms), vs), gs): (((&mut [T], &mut [T]), &mut [T]), &[T])| {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has FMA and AVX2 (checked just above).
            return unsafe { update_run_fma(ps, ms, vs, gs, k) };
        }
        update_run(ps, ms, vs, gs, k)
    };
    const CHUNK: usize = 1 << 14;
    if n >= 1 << 16 && crate::cascade::num_threads() > 1 {
        let (p_base, m_base, v_base) = (ps.as_mut_ptr() as usize, ms.as_mut_ptr() as usize, vs.as_mut_ptr() as usize);
        crate::parallel::for_each_part(n.div_ceil(CHUNK), |part| {
            let (start, len) = (part * CHUNK, CHUNK.min(n - part * CHUNK));
            let piece = |base: usize| {
                // SAFETY: each part is claimed once, so the pieces of the three buffers (each
                // `n` long, borrowed until every part is done) are disjoint.
                unsafe { std::slice::from_raw_parts_mut((base as *mut T).add(start), len) }
            };
            run((((piece(p_base), piece(m_base)), piece(v_base)), &grad[start..start + len]))
        });
    } else {
        run((((ps, ms), vs), &grad));
    }
}

/// The per-step constants of [`update`], in the parameter's dtype.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    w: T,
    w_minus_one: T,
    small_weight: bool,
    beta2: T,
    square_weight: T,
    bc2: T,
    eps: T,
    step: T,
}

/// The update of one run of elements (the loop of [`adam_step`]).
#[inline(always)]
fn update_run<T: Float>(ps: &mut [T], ms: &mut [T], vs: &mut [T], gs: &[T], k: Coefficients<T>) {
    for (((p, m), v), &g) in ps.iter_mut().zip(ms.iter_mut()).zip(vs.iter_mut()).zip(gs) {
        let diff = g - *m;
        // lerp: exp_avg + w (grad - exp_avg), one rounding
        *m = if k.small_weight { diff.mul_add(k.w, *m) } else { diff.mul_add(k.w_minus_one, g) };
        // exp_avg_sq * beta2 + (1 - beta2) grad^2, the addition fused with the second product
        *v = (g * k.square_weight).mul_add(g, *v * k.beta2);
        let denom = v.sqrt() / k.bc2 + k.eps;
        *p = *p + (*m * k.step) / denom;
    }
}

/// [`update_run`] compiled with FMA and AVX2 (the fused multiply-adds become instructions
/// instead of library calls; same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
unsafe fn update_run_fma<T: Float>(ps: &mut [T], ms: &mut [T], vs: &mut [T], gs: &[T], k: Coefficients<T>) {
    update_run(ps, ms, vs, gs, k)
}
