//! The HTTP side of the metrics endpoint: `GET /metrics` answered with the registry's
//! text, each scrape on its own short-lived thread.

use super::Registry;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Serves `GET /metrics` on `addr` until `stop` is set.
pub fn serve(
    addr: SocketAddr,
    registry: Registry,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let registry = Arc::new(registry);
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        // Each scrape on its own short-lived thread, so an idle or slow client
                        // never holds up the next; a few at a time at most.
                        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                            drop(conn);
                            continue;
                        }
                        active.fetch_add(1, Ordering::Relaxed);
                        // Counts the connection until dropped: by the thread, or with the closure
                        // when the thread cannot be started.
                        let slot = Slot(active.clone());
                        let registry = registry.clone();
                        let _ = std::thread::Builder::new()
                            .name("metrics-conn".into())
                            .spawn(move || {
                                respond(conn, &registry);
                                drop(slot);
                            });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
}

/// Connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 16;

struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn respond(mut conn: std::net::TcpStream, registry: &Registry) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
    let mut req = [0u8; 1024];
    let n = conn.read(&mut req).unwrap_or(0);
    let ok = req[..n].starts_with(b"GET /metrics") || req[..n].starts_with(b"GET / ");
    let (status, body) = if ok {
        ("200 OK", registry.render())
    } else {
        ("404 Not Found", String::from("not found\n"))
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
