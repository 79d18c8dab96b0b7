#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;

use bytes::Bytes;
use proptest::prelude::*;

use tokio::sync::watch;

use super::*;

fn open(dir: &Path) -> (Store, Recovered) {
    Store::open(Options::new(dir)).unwrap()
}

fn ids(recovered: &Recovered, queue: u32) -> Vec<u64> {
    recovered
        .queues
        .get(&queue)
        .map(|m| m.iter().map(|m| m.id).collect())
        .unwrap_or_default()
}

#[test]
fn messages_survive_a_restart_in_order_with_their_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recovered) = open(dir.path());
    assert!(recovered.queues.is_empty());
    let a = store.publish(&[1, 2], 5, Some(60_000), &[b"a"]);
    let b = store.publish(&[1], 6, None, &[b"b", b"b"]);
    let c = store.publish(&[2], 7, None, &[b"c"]);
    store.remove(2, &[a]);
    store.returned(1, &[a]);
    store.returned(1, &[a]);
    store.put_definition(b"q1", b"one");
    store.put_definition(b"q2", b"two");
    store.delete_definition(b"q2");
    store.close();
    drop(store);

    let (store, recovered) = open(dir.path());
    assert!(recovered.clean);
    assert_eq!(ids(&recovered, 1), [a, b]);
    assert_eq!(ids(&recovered, 2), [c]);
    let q1 = &recovered.queues[&1];
    assert_eq!(
        (q1[0].returns, q1[0].timestamp, q1[0].expiration()),
        (2, 5, Some(60_000))
    );
    let bodies = store.read(&[a, b]).unwrap();
    assert_eq!((&bodies[0][..], &bodies[1][..]), (&b"a"[..], &b"bb"[..]));
    assert_eq!(q1[1].expiration(), None);
    assert_eq!(recovered.max_queue_id, 2);
    assert_eq!(
        recovered.definitions.into_iter().collect::<Vec<_>>(),
        [(Bytes::from_static(b"q1"), Bytes::from_static(b"one"))]
    );
    // Not closed this time: the next start is not clean.
    drop(store);
    let (_store, recovered) = open(dir.path());
    assert!(!recovered.clean);
    assert_eq!(ids(&recovered, 1), [a, b]);
}

#[test]
fn a_deleted_queue_takes_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    store.publish(&[1, 2], 0, None, &[b"x"]);
    store.queue_deleted(1);
    store.close();
    drop(store);
    let (_store, recovered) = open(dir.path());
    assert!(!recovered.queues.contains_key(&1));
    assert_eq!(recovered.queues[&2].len(), 1);
}

#[test]
fn a_second_broker_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _) = open(dir.path());
    assert!(matches!(
        Store::open(Options::new(dir.path())),
        Err(StoreError::Locked(_))
    ));
}

#[tokio::test]
async fn progress_reports_a_publish_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let mut progress = store.progress();
    let id = store.publish(&[1], 0, None, &[b"x"]);
    let outcome = progress
        .wait_for(|p| p.outcome(id).is_some())
        .await
        .unwrap()
        .outcome(id);
    assert_eq!(outcome, Some(true));
}

#[test]
fn acked_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path());
    options.segment_size = 4096;
    let (store, _) = Store::open(options.clone()).unwrap();
    let body = [7u8; 1000];
    let ids: Vec<u64> = (0..50)
        .map(|_| {
            let id = store.publish(&[1], 0, None, &[&body]);
            settle(&store);
            id
        })
        .collect();
    store.close();
    drop(store);
    assert!(segment::list(dir.path()).unwrap().len() > 5);

    let (store, recovered) = Store::open(options.clone()).unwrap();
    assert_eq!(recovered.queues[&1].len(), 50);
    // Acking all but the first: the segments after the first die, and go although
    // the first still holds a message (their removes move to the end of the log).
    let segments = segment::list(dir.path()).unwrap().len();
    store.remove(1, &ids[1..]);
    settle(&store);
    let left = segment::list(dir.path()).unwrap().len();
    assert!(left <= 3, "{left} of {segments} segments left");
    store.close();
    drop(store);
    let (store, recovered) = Store::open(options.clone()).unwrap();
    assert_eq!(ids_of(&recovered), [ids[0]]);
    store.remove(1, &ids[..1]);
    store.close();
    let before = store.disk_usage();
    drop(store);
    let (store, recovered) = Store::open(options).unwrap();
    assert!(recovered.queues.get(&1).is_none_or(Vec::is_empty));
    // What is left is the last segment's tail of removes and the clean mark.
    assert!(
        store.disk_usage() < 4096,
        "{} bytes left (before: {before})",
        store.disk_usage()
    );
}

fn ids_of(recovered: &Recovered) -> Vec<u64> {
    ids(recovered, 1)
}

#[test]
fn a_torn_tail_is_cut_and_the_store_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let a = store.publish(&[1], 0, None, &[b"kept"]);
    let b = store.publish(&[1], 0, None, &[b"torn"]);
    store.close();
    drop(store);
    let start = segment::list(dir.path()).unwrap()[0];
    let file = OpenOptions::new()
        .write(true)
        .open(segment::path(dir.path(), start))
        .unwrap();
    file.set_len(b - start + 5).unwrap();
    drop(file);
    let (store, recovered) = open(dir.path());
    assert_eq!(ids(&recovered, 1), [a]);
    let c = store.publish(&[1], 0, None, &[b"after"]);
    store.close();
    drop(store);
    let (_store, recovered) = open(dir.path());
    assert_eq!(ids(&recovered, 1), [a, c]);
    assert_eq!(&_store.read(&[c]).unwrap()[0][..], b"after");
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    Publish(Vec<u32>, usize),
    Remove(u32, usize),
    Return(u32, usize),
    DeleteQueue(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let queue = 1u32..4;
    prop_oneof![
        4 => (proptest::sample::subsequence(vec![1u32, 2, 3], 1..=3), 0usize..300)
            .prop_map(|(q, len)| Op::Publish(q, len)),
        2 => (queue.clone(), any::<usize>()).prop_map(|(q, i)| Op::Remove(q, i)),
        1 => (queue.clone(), any::<usize>()).prop_map(|(q, i)| Op::Return(q, i)),
        1 => queue.prop_map(Op::DeleteQueue),
    ]
}

type Model = HashMap<u32, BTreeMap<u64, (u32, Vec<u8>)>>;

/// Waits until everything appended so far is written and synced (and segments the
/// batch freed are deleted).
fn settle(store: &Store) {
    let mut progress = store.progress();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Until the writer has nothing more of its own to write (records it carries out of
    // dead segments).
    loop {
        let position = store.position();
        runtime
            .block_on(progress.wait_for(|p| p.written >= position))
            .unwrap();
        if store.position() == position {
            return;
        }
    }
}

/// The store directory's files and their contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random operations, and a crash while the records of one of them were being
    /// written: the files are what they were after the operation before, plus a random
    /// prefix of the crashing operation's bytes. Recovery holds exactly the operations
    /// whose records were whole.
    #[test]
    fn recovery_equals_the_model_after_a_crash_at_any_byte(
        ops in proptest::collection::vec(op(), 1..40),
        crash in any::<proptest::sample::Index>(),
        torn in any::<proptest::sample::Index>(),
        small_segments in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::new(dir.path());
        if small_segments {
            options.segment_size = 2048;
        }
        let (store, _) = Store::open(options.clone()).unwrap();
        // After each operation: its end position, the model, the files.
        let mut model = Model::new();
        settle(&store);
        let mut history = vec![(store.position(), model.clone(), snapshot(dir.path()))];
        let mut deleted = std::collections::HashSet::new();
        for op in &ops {
            match op {
                Op::Publish(queues, len) => {
                    // As in the broker, a deleted queue's id is never used again.
                    let queues: Vec<u32> =
                        queues.iter().copied().filter(|q| !deleted.contains(q)).collect();
                    let body = vec![(*len % 251) as u8; *len];
                    let id = store.publish(&queues, 0, None, &[&body]);
                    for q in queues {
                        model.entry(q).or_default().insert(id, (0, body.clone()));
                    }
                }
                Op::Remove(q, i) | Op::Return(q, i) => {
                    if let Some(held) = model.get_mut(q).filter(|m| !m.is_empty()) {
                        let id = *held.keys().nth(i % held.len()).unwrap();
                        if matches!(op, Op::Remove(..)) {
                            held.remove(&id);
                            store.remove(*q, &[id]);
                        } else {
                            held.get_mut(&id).unwrap().0 += 1;
                            store.returned(*q, &[id]);
                        }
                    }
                }
                Op::DeleteQueue(q) => {
                    model.remove(q);
                    deleted.insert(*q);
                    store.queue_deleted(*q);
                }
            }
            settle(&store);
            history.push((store.position(), model.clone(), snapshot(dir.path())));
        }
        drop(store);

        // Crash while operation k + 1 was being written, `written` of its bytes down.
        let k = crash.index(history.len() - 1);
        let (from, before, files) = &history[k];
        let (to, after, files_after) = &history[k + 1];
        let mut written = torn.index((to - from) as usize + 1) as u64;
        // The operation's bytes sit in the segment holding its first position, unless
        // the operation left that segment dead and it was deleted with the batch: then
        // the crash comes after it.
        let holding = files_after
            .iter()
            .rev()
            .find(|(name, _)| name[..20].parse::<u64>().unwrap() <= *from);
        let files = match holding {
            Some(_) => files,
            None => {
                written = to - from;
                files_after
            }
        };
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "seg") {
                std::fs::remove_file(path).unwrap();
            }
        }
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        if let Some((name, bytes)) = holding
            && written > 0
        {
            let start: u64 = name[..20].parse().unwrap();
            let offset = (from - start) as usize;
            let mut file = files.get(name).cloned().unwrap_or_default();
            file.truncate(offset);
            file.extend_from_slice(&bytes[offset..offset + written as usize]);
            std::fs::write(dir.path().join(name), file).unwrap();
        }
        let expected = if written == to - from { after } else { before };
        let (store, recovered) = Store::open(options).unwrap();
        let got: Model = recovered
            .queues
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(q, m)| {
                let ids: Vec<u64> = m.iter().map(|m| m.id).collect();
                let bodies = store.read(&ids).unwrap();
                let held = m.iter().zip(bodies).map(|(m, b)| (m.id, (m.returns, b.to_vec())));
                (q, held.collect())
            })
            .collect();
        let expected: Model = expected
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(q, m)| (*q, m.clone()))
            .collect();
        prop_assert_eq!(got, expected);
    }
}

/// A write that fails (here the segment file cannot be created) nacks what it held,
/// leaves what was stored intact, and the store goes on once writing works again.
#[tokio::test]
async fn a_failed_write_loses_only_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Every batch in a segment file of its own.
    let mut options = Options::new(dir.path());
    options.segment_size = 1;
    let (store, _) = Store::open(options).unwrap();
    let mut progress = store.progress();
    let outcome = async |progress: &mut watch::Receiver<Progress>, id: u64| {
        progress
            .wait_for(|p| p.outcome(id).is_some())
            .await
            .unwrap()
            .outcome(id)
    };
    let before = store.publish(&[1], 0, None, &[b"before"]);
    assert_eq!(outcome(&mut progress, before).await, Some(true));
    // The next batch's segment file cannot be created: a directory is in the way.
    let blocked = store.position();
    std::fs::create_dir(segment::path(dir.path(), blocked)).unwrap();
    let lost = store.publish(&[1], 0, None, &[b"lost"]);
    assert_eq!(lost, blocked);
    assert_eq!(outcome(&mut progress, lost).await, Some(false));
    let after = store.publish(&[1], 0, None, &[b"after"]);
    assert_eq!(outcome(&mut progress, after).await, Some(true));
    store.close();
    drop(store);
    std::fs::remove_dir(segment::path(dir.path(), blocked)).unwrap();
    let (store, recovered) = open(dir.path());
    assert_eq!(ids(&recovered, 1), [before, after]);
    let bodies = store.read(&[before, after]).unwrap();
    assert_eq!(
        (&bodies[0][..], &bodies[1][..]),
        (&b"before"[..], &b"after"[..])
    );
}

/// A dead segment behind a live one goes, and what it said about the older segment's
/// messages (a remove, a return) moves with it: nothing comes back, no count is lost.
#[test]
fn removes_and_returns_move_out_of_a_deleted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path());
    options.segment_size = 512;
    let (store, _) = Store::open(options.clone()).unwrap();
    let body = [1u8; 600];
    // First segment: a message that stays, and one that is removed later.
    let stays = store.publish(&[1], 0, None, &[&body]);
    let goes = store.publish(&[1], 0, None, &[&body]);
    settle(&store);
    // Later segments: the remove and return about the first segment, then traffic
    // that is acked, so those segments die while the first still lives.
    store.remove(1, &[goes]);
    store.returned(1, &[stays]);
    let mut traffic = Vec::new();
    for _ in 0..6 {
        traffic.push(store.publish(&[2], 0, None, &[&body]));
        settle(&store);
    }
    store.remove(2, &traffic);
    settle(&store);
    let first = segment::list(dir.path()).unwrap()[0];
    assert!(first <= stays, "the first segment is still there");
    let left = segment::list(dir.path()).unwrap().len();
    assert!(left <= 3, "{left} segments left");
    store.close();
    drop(store);
    let (_store, recovered) = Store::open(options).unwrap();
    let kept = &recovered.queues[&1];
    assert_eq!(
        kept.iter().map(|m| (m.id, m.returns)).collect::<Vec<_>>(),
        [(stays, 1)]
    );
    assert!(recovered.queues.get(&2).is_none_or(Vec::is_empty));
}
