//! Test hosts as network namespaces: one distributor host holding a bridge, and subscriber
//! hosts joined to it by veth pairs, with multicast routed to them. Names are unique per test
//! run; everything is removed on drop, also when the test fails. Needs root (CI is root).

use std::net::Ipv4Addr;
use std::process::{Child, Command, Output, Stdio};

pub struct TestNet {
    pub dist: String,
    pub subs: Vec<String>,
    pub dist_ip: Ipv4Addr,
    pub sub_ips: Vec<Ipv4Addr>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestNet {
    /// Builds the hosts, or says why the test is skipped and returns `None`.
    pub fn create(tag: &str, subscribers: usize) -> Option<TestNet> {
        if !crate::is_root() {
            assert!(
                !crate::in_ci(),
                "network namespaces need root, and CI runs as root: failing instead of skipping"
            );
            println!("SKIPPED: network namespaces need root (CI runs as root)");
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err()
            || Command::new("nft").arg("-v").output().is_err()
        {
            panic!("iproute2 and nftables are required (.ci/run installs them)");
        }
        let id = format!("tc{}{}", std::process::id(), tag);
        let net = TestNet {
            dist: format!("{id}-d"),
            subs: (1..=subscribers).map(|i| format!("{id}-s{i}")).collect(),
            dist_ip: Ipv4Addr::new(10, 77, 0, 1),
            sub_ips: (1..=subscribers)
                .map(|i| Ipv4Addr::new(10, 77, 0, 10 + i as u8))
                .collect(),
        };
        // Registered before anything is made, so that a failure half way still cleans up.
        if let Err(e) = net.build() {
            drop(net);
            panic!("building test hosts: {e}");
        }
        Some(net)
    }

    fn build(&self) -> Result<(), String> {
        let d = self.dist.as_str();
        ip(&["netns", "add", d])?;
        for s in &self.subs {
            ip(&["netns", "add", s])?;
        }
        ip(&["-n", d, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            d,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&[
            "-n",
            d,
            "addr",
            "add",
            &format!("{}/24", self.dist_ip),
            "dev",
            "br0",
        ])?;
        ip(&["-n", d, "link", "set", "br0", "up"])?;
        ip(&["-n", d, "route", "add", "224.0.0.0/4", "dev", "br0"])?;
        for (i, (s, a)) in self.subs.iter().zip(&self.sub_ips).enumerate() {
            let port = format!("vd{i}");
            ip(&[
                "link", "add", &port, "netns", d, "type", "veth", "peer", "name", "eth0", "netns",
                s,
            ])?;
            ip(&["-n", d, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", d, "link", "set", &port, "up"])?;
            ip(&["-n", s, "link", "set", "lo", "up"])?;
            ip(&["-n", s, "addr", "add", &format!("{a}/24"), "dev", "eth0"])?;
            ip(&["-n", s, "link", "set", "eth0", "up"])?;
            ip(&["-n", s, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        }
        Ok(())
    }

    /// A command to run inside namespace `ns`.
    pub fn command(&self, ns: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Starts `program args` in `ns` with stdout and stderr captured.
    pub fn spawn(&self, ns: &str, program: &std::path::Path, args: &[&str]) -> Child {
        self.command(ns, program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in namespace")
    }

    /// Runs an nft script in `ns`.
    pub fn nft(&self, ns: &str, script: &str) {
        let out: Output = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(script.as_bytes())?;
                c.wait_with_output()
            })
            .expect("run nft");
        assert!(
            out.status.success(),
            "nft: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Killing the namespaces' processes first lets `netns del` free everything at once.
        for ns in std::iter::once(&self.dist).chain(&self.subs) {
            let _ = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| {
                    for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                });
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
