//! A destination's own retry schedule (`[destinations.NAME.retry]`) on a
//! real gateway: two destinations behind the same failing receiver, one
//! allowed a single attempt, the other the default schedule. The first is
//! dead-lettered after its one attempt while the second is still retrying.

use std::time::{Duration, Instant};

use carillon_tests::fakes::webhook::{Answer, Receiver};
use serde_json::{Value, json};

use crate::support::gateway_from_file;

const ADMIN: &str = "adm-retry-0123456789";
const INGEST: &str = "ing-retry-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_with_its_own_schedule_gives_up_on_its_own_terms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Receiver::start(None).await;
    hook.script((0..20).map(|_| Answer::status(500)));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\nplugin_dir = \"{data}/plugins\"\n\n\
         [auth]\nadmin_token = \"{ADMIN}\"\n\n[[auth.ingest]]\nname = \"app\"\ntoken = \"{INGEST}\"\n\n\
         [egress]\nallow_private = [\"127.0.0.1/32\"]\n\n\
         [destinations.strict]\nplugin = \"webhook\"\nconfig = {{ url = \"{strict}\" }}\n\n\
         [destinations.strict.retry]\nmax_attempts = 1\n\n\
         [destinations.patient]\nplugin = \"webhook\"\nconfig = {{ url = \"{patient}\" }}\n\n\
         [[routes]]\nname = \"all\"\nmatch = {{ event = \"*\" }}\ndestinations = [\"strict\", \"patient\"]\n",
        data = dir.path().display(),
        strict = hook.url("/strict"),
        patient = hook.url("/patient"),
    );
    let file = dir.path().join("carillon.toml");
    std::fs::write(&file, text).expect("write");
    let gateway = gateway_from_file(&file).await;
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();
    let accepted: Value = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(INGEST)
        .json(&json!({ "type": "demo.retry", "source": "test" }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = accepted["id"].as_str().expect("an id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    let states = loop {
        let event: Value = http
            .get(format!("{base}/v1/events/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        let state = |name: &str| {
            event["deliveries"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["destination"] == name))
                .map(|d| (d["state"].clone(), d["attempts"].as_u64().unwrap_or(0)))
        };
        let (strict, patient) = (state("strict"), state("patient"));
        if let (Some(strict), Some(patient)) = (&strict, &patient)
            && strict.0 == "dead"
            && patient.1 >= 1
        {
            break (strict.clone(), patient.clone(), event);
        }
        assert!(Instant::now() < deadline, "{event}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (strict, patient, event) = states;
    assert_eq!(strict.1, 1, "one attempt, then dead: {event}");
    assert_ne!(
        patient.0, "dead",
        "the default schedule keeps trying: {event}"
    );
    gateway.shutdown().await;
}
