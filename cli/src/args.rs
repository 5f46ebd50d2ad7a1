//! Command-line values checked where they are parsed, so a bad one is one clear line and exit
//! code 2 (clap), never a panic or a silent default later.

use std::net::SocketAddrV4;

/// A duration in seconds: finite and not negative.
pub fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds (finite, 0 or more)"
        )),
    }
}

/// A duration in seconds that must be positive (a measurement needs time).
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    match seconds(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err(format!("{s:?}: must be more than 0 seconds")),
    }
}

/// A message rate: finite, at least 1 a second and at most 1e9 (beyond what one core offers).
pub fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (1.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a rate in messages per second (1 to 1e9)"
        )),
    }
}

/// Where a group's datagrams go: a multicast or unicast address with a port.
pub fn group(s: &str) -> Result<SocketAddrV4, String> {
    let a: SocketAddrV4 = s
        .parse()
        .map_err(|_| format!("{s:?} is not ADDRESS:PORT (IPv4)"))?;
    if a.port() == 0 {
        return Err(format!("{s:?}: port 0 is not a group's port"));
    }
    if a.ip().is_unspecified() || a.ip().is_broadcast() {
        return Err(format!("{s:?}: {} is not a group address", a.ip()));
    }
    Ok(a)
}

/// A replay speed: "max" or a multiple of the recorded rate within the pacer's bounds.
pub fn speed(s: &str) -> Result<feedhandler::source::pacing::Speed, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_groups_and_speeds() {
        for bad in ["inf", "nan", "-1", "NaN", "1e300x", ""] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds("0"), Ok(0.0));
        assert_eq!(seconds("2.5"), Ok(2.5));
        for bad in ["nan", "inf", "0", "0.5", "-1", "1e10", "x"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
        assert_eq!(rate("20000"), Ok(20000.0));
        assert!(positive_seconds("0").is_err());
        for bad in [
            "x:0",
            "239.1.1.1:0",
            "0.0.0.0:5000",
            "255.255.255.255:5000",
            "239.1.1.1",
        ] {
            assert!(group(bad).is_err(), "{bad}");
        }
        assert!(group("239.1.1.1:31001").is_ok());
        assert!(speed("1e-300").is_err());
        assert!(speed("max").is_ok() && speed("2").is_ok());
    }
}
