//! Anomaly mode (`detect_anomaly` / `set_detect_anomaly`): while it is on, every new node keeps
//! the traceback of the forward call that created it, an error raised in backward is reported
//! with that traceback, and a backward function that returns NaN is an error naming the node.
//!
//! Like PyTorch's, the switch is process-wide. Tracebacks and warnings belong to the host
//! language, so the binding installs [`AnomalyHost`] callbacks once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static ENABLED: AtomicBool = AtomicBool::new(false);
static CHECK_NAN: AtomicBool = AtomicBool::new(true);

/// What the host language provides to anomaly mode.
pub struct AnomalyHost {
    /// The current call stack, formatted (`None` when there is none).
    pub capture: fn() -> Option<String>,
    /// Emits a warning.
    pub warn: fn(&str),
}

static HOST: OnceLock<AnomalyHost> = OnceLock::new();

/// Installs the host callbacks (the first call wins).
pub fn install_host(host: AnomalyHost) {
    let _ = HOST.set(host);
}

/// Turns anomaly detection on or off (`torch.autograd.set_detect_anomaly(enabled, check_nan)`).
pub fn set_enabled(enabled: bool, check_nan: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
    CHECK_NAN.store(check_nan, Ordering::Relaxed);
}

/// Whether anomaly detection is on.
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether anomaly detection also reports backward functions that return NaN.
pub fn check_nan() -> bool {
    CHECK_NAN.load(Ordering::Relaxed)
}

/// The forward traceback for a node created now, if anomaly mode is on.
#[inline]
pub fn capture_trace() -> Option<Arc<str>> {
    if !is_enabled() {
        return None;
    }
    HOST.get().and_then(|h| (h.capture)()).map(Arc::from)
}

/// Reports the forward traceback of the node whose backward failed.
pub fn report_error(name: &str, trace: Option<&str>) {
    let Some(host) = HOST.get() else { return };
    let message = match trace {
        Some(trace) => format!("Error detected in {name}. Traceback of forward call that caused the error:\n{trace}"),
        None => format!(
            "Error detected in {name}. No forward pass information available. Enable detect anomaly during forward pass for more information."
        ),
    };
    (host.warn)(&message);
}

/// Emits a warning through the host language (also used outside anomaly mode, e.g. by in-place
/// ops on expanded tensors); nothing without a host.
pub fn warn(message: &str) {
    if let Some(host) = HOST.get() {
        (host.warn)(message);
    }
}
