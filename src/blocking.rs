//! The one place the library blocks on a future, native only: the command line and the tests
//! drive the async engine through it. Everything else awaits, so the browser (where the GPU
//! can only be awaited) runs the very same code.

/// Runs a future to completion on the current thread.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
