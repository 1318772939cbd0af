//! A second host for tests: a network namespace joined to this one by a veth pair, with an
//! address on each side. Processes started with [`NetNs::command`] live on that "host"; cutting
//! the link ([`NetNs::cut`]) makes it unreachable as a dead host would be, without stopping
//! anything on it. Needs root (CAP_NET_ADMIN) and `ip` from iproute2: without them
//! [`NetNs::create`] fails with a message saying so, and the test fails; it is never skipped.

use std::process::Command;

use anyhow::{bail, Context};

/// One namespace and its link; removed (with every address and route) on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    /// This side's address (reachable from inside the namespace).
    pub host_ip: String,
    /// The namespace's address.
    pub ns_ip: String,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output().context("running `ip` (iproute2 is needed for netns tests)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {} (netns tests need root: CAP_NET_ADMIN)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl NetNs {
    /// A namespace `tarsrs-<tag>-<pid>` on its own /30 (chosen from the pid and `index`, so
    /// concurrent tests and processes do not collide), with loopback up.
    pub fn create(tag: &str, index: u8) -> anyhow::Result<NetNs> {
        let pid = std::process::id();
        let name = format!("tr{tag}{pid}{index}");
        // Interface names are at most 15 bytes.
        let suffix = format!("{:x}{index}", pid % 0xffff);
        let (host_if, ns_if) = (format!("trh{suffix}"), format!("trn{suffix}"));
        let second = 16 + (pid % 200);
        let third = (pid / 200 % 64) * 4 + u32::from(index % 4);
        let net = format!("10.{second}.{third}");
        let ns = NetNs { name, host_if, host_ip: format!("{net}.1"), ns_ip: format!("{net}.2") };
        // A leftover of an earlier run with the same pid would make `add` fail.
        let _ = ip(&["netns", "del", &ns.name]);
        let _ = ip(&["link", "del", &ns.host_if]);
        ip(&["netns", "add", &ns.name])?;
        ip(&["link", "add", &ns.host_if, "type", "veth", "peer", "name", &ns_if])?;
        ip(&["link", "set", &ns_if, "netns", &ns.name])?;
        ip(&["addr", "add", &format!("{}/30", ns.host_ip), "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ip(&["netns", "exec", &ns.name, "ip", "addr", "add", &format!("{}/30", ns.ns_ip), "dev", &ns_if])?;
        ip(&["netns", "exec", &ns.name, "ip", "link", "set", &ns_if, "up"])?;
        ip(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `program` to be run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Takes the link down: neither side can reach the other.
    pub fn cut(&self) -> anyhow::Result<()> {
        ip(&["link", "set", &self.host_if, "down"])
    }

    /// Brings the link back.
    pub fn restore(&self) -> anyhow::Result<()> {
        ip(&["link", "set", &self.host_if, "up"])
    }
}

impl NetNs {
    /// SIGKILLs every process still in the namespace (deleting it would leave them running).
    pub fn kill_all(&self) {
        let Ok(out) = Command::new("ip").args(["netns", "pids", &self.name]).output() else { return };
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.kill_all();
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
