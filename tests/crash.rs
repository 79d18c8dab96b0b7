//! Crash safety: the real broker binary, publishing under confirms, is killed with
//! SIGKILL at random moments, several rounds on one data directory. After every
//! restart, each confirmed message is in the queue (once, or again if its ack had not
//! reached the disk, then marked redelivered), in publish order, intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::BasicProperties;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use tokio::process::{Child, Command};

use common::{connect_lapin, within};

const ROUNDS: usize = 4;
const QUEUE: &str = "crash";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Starts the broker binary on `data_dir` and waits until it accepts connections.
async fn start(data_dir: &Path) -> (Child, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--management-listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the warren binary");
    // Polling for readiness, bounded to 10 s (recovery included).
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("warren exited early with {status}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (child, addr);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("warren did not listen on {addr} within 10 s");
}

/// A small xorshift generator: the test's randomness, seeded and printed so that a
/// failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_confirmed_is_lost_when_the_broker_is_killed() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    // Every number ever published, confirmed, and acked (the ack may not be on disk).
    let mut published = 0u64;
    let confirmed: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let mut acked = BTreeSet::new();

    for round in 0..=ROUNDS {
        let (mut child, addr) = start(dir.path()).await;
        let uri = format!("amqp://guest:guest@{addr}/%2f");
        let connection = connect_lapin(&uri, "crash test").await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        within(
            "queue.declare",
            channel.queue_declare(QUEUE.into(), durable, FieldTable::default()),
        )
        .await
        .unwrap();

        // What survived the last kill.
        let mut present = Vec::new();
        while let Some(m) = within(
            "basic.get",
            channel.basic_get(QUEUE.into(), BasicGetOptions::default()),
        )
        .await
        .unwrap()
        {
            let text = std::str::from_utf8(&m.data).expect("an intact body");
            let n: u64 = text
                .strip_prefix("message ")
                .and_then(|n| n.parse().ok())
                .expect("an intact body");
            assert!(
                n < published,
                "round {round}: message {n} was never published"
            );
            assert!(
                !acked.contains(&n) || m.redelivered,
                "round {round}: message {n} was acked before the crash and came back unmarked"
            );
            present.push((n, m.delivery_tag));
        }
        let numbers: Vec<u64> = present.iter().map(|(n, _)| *n).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "round {round}: out of order: {numbers:?}"
        );
        let confirmed_now = confirmed.lock().unwrap().clone();
        let lost: Vec<u64> = confirmed_now
            .iter()
            .filter(|n| !acked.contains(*n) && !numbers.contains(n))
            .copied()
            .collect();
        assert!(
            lost.is_empty(),
            "round {round} (seed {seed}): confirmed messages lost: {lost:?}"
        );
        if let Some((_, last)) = present.last() {
            within(
                "basic.ack",
                channel.basic_ack(*last, BasicAckOptions { multiple: true }),
            )
            .await
            .unwrap();
        }
        acked.extend(numbers);
        if round == ROUNDS {
            break;
        }

        // Publish under confirms until the kill.
        within(
            "confirm.select",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await
        .unwrap();
        let start_at = published;
        let publisher = {
            let confirmed = confirmed.clone();
            tokio::spawn(async move {
                let mut waits = tokio::task::JoinSet::new();
                for n in start_at.. {
                    let body = format!("message {n}");
                    let properties = BasicProperties::default().with_delivery_mode(2);
                    let Ok(confirm) = channel
                        .basic_publish(
                            "".into(),
                            QUEUE.into(),
                            BasicPublishOptions::default(),
                            body.as_bytes(),
                            properties,
                        )
                        .await
                    else {
                        return (n, waits);
                    };
                    let confirmed = confirmed.clone();
                    waits.spawn(async move {
                        if confirm.await.is_ok_and(|c| c.is_ack()) {
                            confirmed.lock().unwrap().insert(n);
                        }
                    });
                    // Keep the window bounded, as a real publisher would.
                    while waits.len() > 500 {
                        waits.join_next().await;
                    }
                }
                unreachable!()
            })
        };
        // The crash comes at a random moment, once some publishes were confirmed.
        let delay = 100 + rng.below(600);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let (next, mut waits) = within("the publisher to notice the crash", publisher)
            .await
            .unwrap();
        while waits.join_next().await.is_some() {}
        published = next + 1;
        drop(connection);
        println!(
            "round {round}: killed after {delay} ms, {} confirmed so far",
            confirmed.lock().unwrap().len()
        );
    }
    assert!(
        confirmed.lock().unwrap().len() > ROUNDS,
        "the rounds confirmed too little to prove anything"
    );
}
