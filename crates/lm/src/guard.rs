//! Panics inside dependencies, caught at our boundary. A crafted file can make a reader
//! we call (candle's GGUF header, arrow and parquet) panic instead of returning an error;
//! [`catching`] turns that into `None` so the caller reports a clear error, and, once the
//! binary has called [`install_quiet_hook`], without the panic's own message and
//! backtrace on stderr.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`catching`], so the hook stays quiet.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that prints nothing for panics [`catching`] will
/// handle and defers to the previous hook for every other panic (a bug of ours still
/// reports itself in full).
pub fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, giving `None` if it panicked (on this thread).
pub fn catching<T>(f: impl FnOnce() -> T) -> Option<T> {
    let outer = CATCHING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_none_and_a_value_passes_through() {
        install_quiet_hook();
        assert_eq!(catching(|| 7), Some(7));
        let caught: Option<()> = catching(|| panic!("inside a dependency"));
        assert_eq!(caught, None);
        assert!(!CATCHING.with(Cell::get), "the flag is restored");
    }
}
