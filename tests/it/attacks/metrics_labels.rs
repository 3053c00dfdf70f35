//! Metrics cardinality: nothing an anonymous caller chooses (paths, methods, client ids, grant
//! types) becomes a label, so `/metrics` cannot be grown without bound.

use crate::support::harness::Tests;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("attacker_chosen_values_never_become_metric_labels", attacker_chosen_values_never_become_metric_labels);
}

async fn attacker_chosen_values_never_become_metric_labels(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = http();
    let series = |text: &str| text.lines().filter(|l| l.starts_with("sesame_http_requests_total{")).count();
    for i in 0..40 {
        let method = reqwest::Method::from_bytes(format!("ZZMETHOD{i}").as_bytes()).unwrap();
        client.request(method, server.url("/token")).send().await.unwrap();
        client.get(server.url(&format!("/zzpath{i}"))).send().await.unwrap();
        let grant = format!("zzgrant{i}");
        let client_id = format!("zzclient{i}");
        client.post(server.url("/token")).form(&[("grant_type", grant.as_str()), ("client_id", client_id.as_str())]).send().await.unwrap();
    }
    let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for chosen in ["ZZMETHOD", "zzpath", "zzgrant", "zzclient"] {
        assert!(!metrics.contains(chosen), "`{chosen}` became a label:\n{metrics}");
    }
    assert!(metrics.contains("method=\"other\""), "unknown methods are counted together");
    // 120 hostile requests make a handful of series (the routes and statuses they hit), not 120.
    assert!(series(&metrics) <= 8, "{metrics}");
}
