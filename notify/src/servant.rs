//! `NotifyImp`: `reportNotifyInfo` on the IO shards. One instance per shard (the generated
//! `NotifyServant` wrapper); it filters, builds the row ([`crate::notice`]) and queues it
//! ([`crate::queue::Queue::push`]), never waiting for the database: the call is answered at
//! once, as upstream's (which inserted synchronously) was once its INSERT returned.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{Notify, ReportInfo};

use crate::filter::Filter;
use crate::notice::Notice;
use crate::queue::Queue;

/// The servant of one shard: its clone of the queue's sender and the shared, read-only
/// filter. Lives on one IO shard.
#[derive(Debug, Clone)]
pub struct NotifyImp {
    queue: Queue,
    filter: Arc<Filter>,
}

impl NotifyImp {
    /// A servant that queues on `queue`, after `filter`.
    pub fn new(queue: Queue, filter: Arc<Filter>) -> NotifyImp {
        NotifyImp { queue, filter }
    }

    /// What `reportNotifyInfo` does, for a caller at `peer_ip`: true when queued.
    pub fn report(&self, info: &ReportInfo, peer_ip: Option<&str>) -> bool {
        let stats = self.queue.stats();
        stats.received.fetch_add(1, Ordering::Relaxed);
        if self.filter.drops(&info.s_app, &info.s_server, &crate::notice::message_text(info)) {
            stats.filtered.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(app = %info.s_app, server = %info.s_server, "notify: filtered");
            return false;
        }
        let notice = Notice::from_report(info, peer_ip, Instant::now());
        if !self.queue.push(notice) {
            tars_core_net::limited!(warn, "notify: the queue is full (the database is slow or away); notices dropped");
            return false;
        }
        true
    }
}

impl Notify for NotifyImp {
    async fn report_notify_info(&self, current: &mut Current, info: ReportInfo) -> Result<(), ServantError> {
        let ip = current.peer_ip();
        self.report(&info, ip.as_deref());
        Ok(())
    }
}
