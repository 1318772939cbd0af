//! Can this process use io_uring? Checked once, before the first uring shard starts.

use std::sync::OnceLock;

/// Why io_uring cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UringUnavailable {
    /// `kernel.io_uring_disabled` is 2 (or 1 and we are not in the allowed group).
    #[error("sysctl kernel.io_uring_disabled = {0}")]
    DisabledBySysctl(u32),
    /// RLIMIT_MEMLOCK is below what glommio needs for its rings.
    #[error("RLIMIT_MEMLOCK is {have} bytes, glommio needs at least {need}")]
    MemlockTooLow {
        /// The soft limit in force.
        have: u64,
        /// The minimum.
        need: u64,
    },
    /// Creating a ring failed: seccomp (Docker's default profile answers EPERM or ENOSYS),
    /// an old kernel, or resource limits.
    #[error("creating an io_uring executor failed: {0}")]
    SetupFailed(String),
}

/// glommio refuses to start below this soft RLIMIT_MEMLOCK.
const MIN_MEMLOCK: u64 = 512 * 1024;

/// Checks, once per process, whether a glommio executor can start here.
pub fn probe_uring() -> Result<(), UringUnavailable> {
    static RESULT: OnceLock<Result<(), UringUnavailable>> = OnceLock::new();
    RESULT.get_or_init(probe).clone()
}

fn probe() -> Result<(), UringUnavailable> {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        let v: u32 = s.trim().parse().unwrap_or(0);
        // 1 lets root and members of kernel.io_uring_group through; the setup attempt below
        // tells whether we are one of them.
        if v >= 2 {
            return Err(UringUnavailable::DisabledBySysctl(v));
        }
    }
    let lim = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    if let Some(have) = lim.current {
        if have < MIN_MEMLOCK {
            return Err(UringUnavailable::MemlockTooLow { have, need: MIN_MEMLOCK });
        }
    }
    // The decisive check: build and run a tiny executor on a scratch thread. A seccomp filter
    // shows up here as EPERM/ENOSYS from io_uring_setup; a panic inside glommio is caught.
    let attempt = std::thread::Builder::new().name("uring-probe".into()).spawn(|| {
        std::panic::catch_unwind(|| super::uring::block_on(async { 1u8 }))
            .map_err(|_| "glommio panicked while starting".to_owned())
            .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()))
    });
    match attempt {
        Ok(handle) => match handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(UringUnavailable::SetupFailed(why)),
            Err(_) => Err(UringUnavailable::SetupFailed("probe thread panicked".into())),
        },
        Err(e) => Err(UringUnavailable::SetupFailed(format!("cannot spawn probe thread: {e}"))),
    }
}
