//! `LogImp`: the generated `Log` servant, one per IO shard (`Rc`, on that shard only). It
//! names the file ([`crate::naming`]), prefixes the lines and pushes one batch onto the
//! writers' [`Queue`]; it never touches a file and never waits.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tars_proto::codec::BinString;
use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{Log, LogInfo};

use crate::clock::Clock;
use crate::naming::{self, InfoFields, PathError, Target};
use crate::writer::{Batch, Queue};

/// The server-side overrides of `/tars/log/format` and `/tars/log/logtype`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `app.server` names whose files roll hourly (`/tars/log/format<hour>`).
    pub hourly: HashSet<String>,
    /// `app.server.file` → roll type (`/tars/log/logtype/<type>=app.server.file|…`).
    pub log_types: HashMap<String, String>,
    /// The `<hour>` text, for the reload answer.
    pub hour_text: String,
}

impl Overrides {
    /// Reads the overrides from `config`.
    pub fn from_config(config: &tars_proto::config::Config) -> Overrides {
        let hour_text = config.get("/tars/log/format<hour>").unwrap_or("").to_owned();
        let hourly = naming::split_list(&hour_text).map(str::to_owned).collect();
        let mut log_types = HashMap::new();
        for (kind, list) in config.params("/tars/log/logtype") {
            for name in naming::split_list(list) {
                log_types.insert(name.to_owned(), kind.to_owned());
            }
        }
        Overrides { hourly, log_types, hour_text }
    }
}

/// The current overrides, replaced by `reloadLogFormat`. Shards read them through a
/// [`ShardOverrides`]: one atomic load per request, the lock only after a reload.
#[derive(Debug, Default)]
pub struct SharedOverrides {
    generation: AtomicU64,
    current: Mutex<Arc<Overrides>>,
}

impl SharedOverrides {
    /// Starts with `o`.
    pub fn new(o: Overrides) -> SharedOverrides {
        SharedOverrides { generation: AtomicU64::new(0), current: Mutex::new(Arc::new(o)) }
    }

    /// Replaces the overrides.
    pub fn replace(&self, o: Overrides) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(o);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The overrides now.
    pub fn get(&self) -> Arc<Overrides> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A shard's copy of the overrides, refreshed when the generation moves. On one shard only.
#[derive(Debug)]
struct ShardOverrides {
    shared: Arc<SharedOverrides>,
    generation: u64,
    current: Arc<Overrides>,
}

impl ShardOverrides {
    fn get(&mut self) -> &Overrides {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.current = self.shared.get();
            self.generation = g;
        }
        &self.current
    }
}

/// The log servant of one shard.
#[derive(Debug)]
pub struct LogImp {
    queue: Queue,
    overrides: RefCell<ShardOverrides>,
    clock: Arc<dyn Clock>,
    ipfix: bool,
}

impl LogImp {
    /// A servant pushing onto `queue`, naming files by `clock`, prefixing lines with the
    /// client's address when `ipfix`.
    pub fn new(queue: Queue, overrides: Arc<SharedOverrides>, clock: Arc<dyn Clock>, ipfix: bool) -> LogImp {
        let current = overrides.get();
        let generation = overrides.generation.load(Ordering::Acquire);
        LogImp {
            queue,
            overrides: RefCell::new(ShardOverrides { shared: overrides, generation, current }),
            clock,
            ipfix,
        }
    }

    fn refuse(&self, e: &PathError, lines: usize, app: &str, server: &str, peer: &str) {
        let c = self.queue.counters();
        c.refused.fetch_add(1, Ordering::Relaxed);
        c.refused_lines.fetch_add(lines as u64, Ordering::Relaxed);
        tars_core_net::limited!(
            warn,
            peer,
            app = %app.escape_debug(),
            server = %server.escape_debug(),
            error = %e,
            "log: request refused; nothing written"
        );
    }

    /// Names the file at now and queues `lines`, each written as `prefix` then the line.
    fn queue_lines(
        &self,
        target: Result<Target, PathError>,
        lines: &[BinString],
        prefix: &str,
        who: (&str, &str, &str),
    ) {
        let named = target.and_then(|t| {
            let name = t.file_name(self.clock.now())?;
            Ok((t, name))
        });
        let (target, name) = match named {
            Ok(n) => n,
            Err(e) => return self.refuse(&e, lines.len(), who.0, who.1, who.2),
        };
        if lines.is_empty() {
            return;
        }
        let size: usize = lines.iter().map(|l| l.0.len() + prefix.len()).sum();
        let mut data = Vec::with_capacity(size);
        for l in lines {
            data.extend_from_slice(prefix.as_bytes());
            data.extend_from_slice(&l.0);
        }
        self.queue.push(Batch { key: target.key(), dir: target.dir, name, data, lines: lines.len() as u64 });
    }

    fn peer(current: &Current) -> String {
        current.peer.map(|p| p.ip().to_string()).unwrap_or_default()
    }

    fn hourly(&self, app: &str, server: &str) -> bool {
        let mut o = self.overrides.borrow_mut();
        let o = o.get();
        !o.hourly.is_empty() && o.hourly.contains(&format!("{app}.{server}"))
    }

    fn trace(&self, current: &Current, app: &str, server: &str, file: &str, format: &str, lines: Vec<BinString>) {
        let ip = Self::peer(current);
        let total = lines.len();
        let kept: Vec<BinString> = lines.into_iter().filter(|l| l.0.len() <= naming::TRACE_MAX_LINE).collect();
        if kept.len() < total {
            self.queue.counters().too_long.fetch_add((total - kept.len()) as u64, Ordering::Relaxed);
            tars_core_net::limited!(warn, peer = %ip, "log: trace line over 1 MB dropped");
        }
        let hourly = self.hourly(naming::TRACE_APP, naming::TRACE_SERVER);
        let target = Target::logger(naming::TRACE_APP, naming::TRACE_SERVER, file, format, hourly);
        let prefix = if self.ipfix { format!("{ip}|{app}|{server}|") } else { format!("{app}|{server}|") };
        self.queue_lines(target, &kept, &prefix, (app, server, &ip));
    }
}

impl Log for LogImp {
    async fn logger(
        &self,
        current: &mut Current,
        app: String,
        server: String,
        file: String,
        format: String,
        buffer: Vec<BinString>,
    ) -> Result<(), ServantError> {
        self.queue.counters().received.fetch_add(buffer.len() as u64, Ordering::Relaxed);
        let ip = Self::peer(current);
        let hourly = self.hourly(&app, &server);
        let target = Target::logger(&app, &server, &file, &format, hourly);
        let prefix = if self.ipfix { format!("{ip}|") } else { String::new() };
        self.queue_lines(target, &buffer, &prefix, (&app, &server, &ip));
        Ok(())
    }

    async fn loggerby_info(
        &self,
        current: &mut Current,
        info: LogInfo,
        buffer: Vec<BinString>,
    ) -> Result<(), ServantError> {
        self.queue.counters().received.fetch_add(buffer.len() as u64, Ordering::Relaxed);
        if info.s_filename == naming::TRACE_FILE {
            self.trace(current, &info.appname, &info.servername, &info.s_filename, &info.s_format, buffer);
            return Ok(());
        }
        let ip = Self::peer(current);
        let hourly = self.hourly(&info.appname, &info.servername);
        let type_override = {
            let mut o = self.overrides.borrow_mut();
            let o = o.get();
            if o.log_types.is_empty() {
                None
            } else {
                o.log_types.get(&format!("{}.{}.{}", info.appname, info.servername, info.s_filename)).cloned()
            }
        };
        let fields = InfoFields::of(&info);
        let target = Target::by_info(&fields, hourly, type_override.as_deref());
        let prefix = if !self.ipfix {
            String::new()
        } else if info.s_separ.len() > naming::MAX_JOINER {
            let e = PathError::TooLong("separator", naming::MAX_JOINER);
            self.refuse(&e, buffer.len(), &info.appname, &info.servername, &ip);
            return Ok(());
        } else {
            format!("{ip}{}", info.s_separ)
        };
        self.queue_lines(target, &buffer, &prefix, (&info.appname, &info.servername, &ip));
        Ok(())
    }
}
