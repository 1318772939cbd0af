//! The io_uring driver: a glommio executor per shard. Only this file and `net.rs` name glommio.

use std::future::Future;
use std::io;

/// Memory glommio registers for DMA file IO. We do no file IO on shards, so keep it small:
/// it counts against RLIMIT_MEMLOCK on older kernels.
const IO_MEMORY: usize = 256 * 1024;

pub(super) fn block_on<T: 'static>(fut: impl Future<Output = T> + 'static) -> io::Result<T> {
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(IO_MEMORY)
        .ring_depth(512)
        .make()
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(ex.run(fut))
}
