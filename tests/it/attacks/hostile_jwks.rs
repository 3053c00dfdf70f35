//! A hostile server named as a client's `jwks_uri`: it cannot make sesame buffer an endless body,
//! hold a request past the fetch deadline, get more than one fetch out of a burst of requests or
//! a recent failure, and sesame does not contact it on a private network unless allowed to.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt};
use sesame::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::harness::Tests;
use crate::support::machine::*;
use crate::support::{eventually, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.test("a_jwks_uri_with_an_endless_body_is_cut_off_at_the_size_limit", a_jwks_uri_with_an_endless_body_is_cut_off_at_the_size_limit)
        .test("a_jwks_uri_that_never_answers_fails_within_the_deadline_and_is_not_retried_at_once", a_jwks_uri_that_never_answers_fails_within_the_deadline_and_is_not_retried_at_once)
        .test("concurrent_assertions_share_one_jwks_fetch", concurrent_assertions_share_one_jwks_fetch)
        .test("a_failed_jwks_fetch_is_remembered", a_failed_jwks_fetch_is_remembered)
        .test("a_jwks_uri_on_loopback_is_refused_by_default", a_jwks_uri_on_loopback_is_refused_by_default);
}

/// The key servers below listen on loopback, which sesame contacts only when allowed to.
fn allow_loopback(config: &mut Config) {
    config.outbound.allow_private_networks = true;
}

/// The one answer to every failed client authentication.
fn generic_refusal() -> (u16, String, String) {
    (401, "invalid_client".into(), "client authentication failed".into())
}

/// A key server under the test's control, written on raw TCP so it can misbehave: each
/// connection carries one request, answered by `answer` with the request's number (from 0).
struct KeyServer {
    uri: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn key_server(answer: impl Fn(usize, TcpStream) -> BoxFuture<'static, ()> + Send + Sync + 'static) -> KeyServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (accepted, requested, answer) = (connections.clone(), requests.clone(), Arc::new(answer));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted.fetch_add(1, SeqCst);
            let (requested, answer) = (requested.clone(), answer.clone());
            tokio::spawn(async move {
                if read_request_head(&mut stream).await {
                    let n = requested.fetch_add(1, SeqCst);
                    answer(n, stream).await;
                }
            });
        }
    });
    KeyServer { uri, connections, requests }
}

async fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

async fn respond(mut stream: TcpStream, status: &str, body: &str) {
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn a_jwks_uri_with_an_endless_body_is_cut_off_at_the_size_limit() {
    let server = TestServer::start_with(Backend::Embedded, allow_loopback).await;
    let sent = Arc::new(AtomicUsize::new(0));
    let hung_up = Arc::new(AtomicBool::new(false));
    let (sending, seen_hang_up) = (sent.clone(), hung_up.clone());
    // 64 KiB chunks, about one a millisecond, for as long as the other side reads.
    let key_server = key_server(move |_, mut stream| {
        let (sent, hung_up) = (sending.clone(), seen_hang_up.clone());
        async move {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
            let mut result = stream.write_all(head.as_bytes()).await;
            while result.is_ok() {
                result = stream.write_all(chunk.as_bytes()).await;
                sent.fetch_add(64 * 1024, SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            hung_up.store(true, SeqCst);
        }
        .boxed()
    })
    .await;
    let m = add_keyed_machine(&server, Some(key_server.uri.clone()), None).await;

    let started = Instant::now();
    let res = token_with_assertion(&server, &assertion(&m, &server.url("/token"), 60, "endless")).await;
    let took = started.elapsed();
    assert_eq!(error_body(res).await, generic_refusal());
    assert!(took < Duration::from_secs(3), "answered after {took:?}: the body was read until the deadline, not cut off at the size limit");
    eventually(Duration::from_secs(3), "sesame hangs up on the endless body", || async { hung_up.load(SeqCst).then_some(()) }).await;
    let sent = sent.load(SeqCst);
    assert!(sent < 4 * 1024 * 1024, "{sent} bytes sent before sesame hung up; the limit is 256 KiB");
}

async fn a_jwks_uri_that_never_answers_fails_within_the_deadline_and_is_not_retried_at_once() {
    let server = TestServer::start_with(Backend::Embedded, allow_loopback).await;
    let key_server = key_server(|_, stream| {
        async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(stream);
        }
        .boxed()
    })
    .await;
    let m = add_keyed_machine(&server, Some(key_server.uri.clone()), None).await;

    let started = Instant::now();
    let res = token_with_assertion(&server, &assertion(&m, &server.url("/token"), 60, "silent-1")).await;
    let took = started.elapsed();
    assert_eq!(error_body(res).await, generic_refusal());
    assert!(took < Duration::from_millis(6500), "answered after {took:?}; the fetch deadline is 5 s");

    let started = Instant::now();
    let res = token_with_assertion(&server, &assertion(&m, &server.url("/token"), 60, "silent-2")).await;
    assert_eq!(error_body(res).await, generic_refusal());
    assert!(started.elapsed() < Duration::from_secs(1), "the timed-out URI was tried again instead of failing at once");
    assert_eq!((key_server.connections.load(SeqCst), key_server.requests.load(SeqCst)), (1, 1));
}

async fn concurrent_assertions_share_one_jwks_fetch() {
    let server = TestServer::start_with(Backend::Embedded, allow_loopback).await;
    let (key, public_jwks) = client_key("ES256");
    let key_server = key_server(move |_, stream| {
        let public_jwks = public_jwks.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            respond(stream, "200 OK", &public_jwks).await;
        }
        .boxed()
    })
    .await;
    let m = add_keyed_machine(&server, Some(key_server.uri.clone()), Some((key, String::new()))).await;

    let (server, token_endpoint) = (&server, server.url("/token"));
    let burst = (0..20).map(|i| {
        let a = assertion(&m, &token_endpoint, 60, &format!("burst-{i}"));
        async move { token_with_assertion(server, &a).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(burst).await;
    assert_eq!(statuses, vec![200; 20]);
    assert_eq!(key_server.requests.load(SeqCst), 1, "20 concurrent assertions for one client: one fetch of its keys");
}

async fn a_failed_jwks_fetch_is_remembered() {
    let server = TestServer::start_with(Backend::Embedded, allow_loopback).await;
    let (key, public_jwks) = client_key("ES256");
    let key_server = key_server(move |n, stream| {
        let public_jwks = public_jwks.clone();
        async move {
            match n {
                0 => respond(stream, "500 Internal Server Error", "{}").await,
                _ => respond(stream, "200 OK", &public_jwks).await,
            }
        }
        .boxed()
    })
    .await;
    let m = add_keyed_machine(&server, Some(key_server.uri.clone()), Some((key, String::new()))).await;

    let res = token_with_assertion(&server, &assertion(&m, &server.url("/token"), 60, "first")).await;
    assert_eq!(error_body(res).await, generic_refusal());
    // The key server would answer now, but the failure stands until it expires.
    let res = token_with_assertion(&server, &assertion(&m, &server.url("/token"), 60, "second")).await;
    assert_eq!(error_body(res).await, generic_refusal());
    assert_eq!(key_server.requests.load(SeqCst), 1);
}

async fn a_jwks_uri_on_loopback_is_refused_by_default() {
    let server = TestServer::start(Backend::Embedded).await;
    let key_server = key_server(|_, stream| async move { respond(stream, "200 OK", r#"{"keys": []}"#).await }.boxed()).await;
    let by_name = key_server.uri.replace("127.0.0.1", "localhost");
    // An address literal (judged before any connection) and a name (judged on what it resolves to).
    for uri in [key_server.uri.clone(), by_name] {
        let m = add_keyed_machine(&server, Some(uri.clone()), None).await;
        let res = token_with_assertion(&server, &assertion(&m, &server.url("/token"), 60, "loopback")).await;
        assert_eq!(error_body(res).await, generic_refusal(), "{uri}");
    }
    assert_eq!(key_server.connections.load(SeqCst), 0, "sesame connected to a loopback address");
}
