use prost::Message;

use super::*;
use crate::audit::LogState;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// Size of an entry as the log stores it: bounded, sealed, with its time.
fn stored_size(e: AuditEntry) -> usize {
    let mut e = bound::fields(e);
    e.at = clock::now_rfc3339();
    LogState::default().seal(e).encoded_len()
}

#[test]
fn ten_thousand_refusals_of_one_source_make_one_small_entry() {
    let noise = Noise::new(60);
    let cert = "ab".repeat(32);
    for i in 0..10_000 {
        let why = if i % 10 == 0 {
            "invalid peer certificate: UnknownIssuer"
        } else {
            "tls handshake eof"
        };
        noise.note(
            ip("192.0.2.7"),
            Some(&cert),
            TLS_HANDSHAKE,
            handshake_cause(why),
        );
    }
    let entries = noise.drain(Instant::now());
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e.count, e.peer.as_str(), e.cert_sha256.as_str()),
        (10_000, "192.0.2.7", cert.as_str())
    );
    assert_eq!(e.action, TLS_HANDSHAKE);
    assert_eq!(e.reason, "unauthenticated: connection_closed");
    assert!(
        e.detail
            .contains("connection_closed x9000, unknown_issuer x1000"),
        "{}",
        e.detail
    );
    let size = stored_size(e.clone());
    assert!(size < 400, "{size} bytes");
    assert!(noise.drain(Instant::now()).is_empty(), "drained once");
    assert_eq!(noise.noted(), 10_000);
}

#[test]
fn sources_beyond_the_bound_fold_into_one_overflow_entry() {
    let noise = Noise::new(60);
    for i in 0..1000u32 {
        let addr = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
        noise.note(Some(addr), None, TLS_HANDSHAKE, "connection_closed");
        if i < 5 {
            // A few busy sources stand out with their own entries.
            for _ in 0..10 {
                noise.note(Some(addr), None, TLS_HANDSHAKE, "timeout");
            }
        }
    }
    let entries = noise.drain(Instant::now());
    assert_eq!(entries.len(), 60);
    assert_eq!(entries.iter().map(|e| e.count).sum::<u64>(), 1050);
    assert!(entries[..5].iter().all(|e| e.count == 11));
    let overflow = entries.last().unwrap();
    assert_eq!(overflow.action, "unauthenticated.overflow");
    assert!(
        overflow.detail.contains("from 941 more sources"),
        "{}",
        overflow.detail
    );
}

#[test]
fn the_per_minute_bound_holds_however_often_it_is_drained() {
    let noise = Noise::new(10);
    let start = Instant::now();
    let mut written = 0;
    let mut counted = 0;
    // 120 one-second intervals, each with refusals from 20 new sources.
    for second in 0..120u64 {
        for i in 0..20u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from((second as u32) << 8 | i));
            noise.note(Some(addr), None, UNAUTHENTICATED, "certificate_unbound");
        }
        let out = noise.drain(start + Duration::from_secs(second));
        written += out.len();
        counted += out.iter().map(|e| e.count).sum::<u64>();
        assert!(
            written <= 10 * (second as usize / 60 + 1),
            "{written} by second {second}"
        );
    }
    // Nothing is lost: what waited is written in the next minute.
    let out = noise.drain(start + Duration::from_secs(180));
    counted += out.iter().map(|e| e.count).sum::<u64>();
    assert_eq!(counted, 2400);
}

#[test]
fn handshake_errors_map_to_a_fixed_vocabulary() {
    for (why, cause) in [
        ("tls handshake eof", "connection_closed"),
        ("handshake not completed within 10s", "timeout"),
        ("invalid peer certificate: UnknownIssuer", "unknown_issuer"),
        ("invalid peer certificate: Revoked", "revoked"),
        (
            "certificate expired: verification time 1, but certificate is not valid after 0",
            "expired",
        ),
        ("peer sent no certificates", "no_certificate"),
        (
            "received corrupt message of type InvalidContentType",
            "not_tls",
        ),
        ("\u{1b}[2J anything else", "handshake_failed"),
    ] {
        assert_eq!(handshake_cause(why), cause, "{why}");
    }
}
