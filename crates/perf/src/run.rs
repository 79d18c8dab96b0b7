//! One run, start to end.
//!
//! 1. Setup (not measured): declare the topology, open the idle connections (and read
//!    the broker's RSS around them), open every producer's and consumer's connection
//!    and start the consumers, so the measured run starts with everything in place.
//! 2. The measured run: producers publish until their stop condition; then the run
//!    waits until the consumers have every message that was published and not nacked
//!    (times the queues each reaches), or until nothing arrives for [`DRAIN_IDLE`].
//!    In backlog mode the consumers start only once the producers are done.
//! 3. CPU and RSS are read before and after the measured run; then the consumers are
//!    cancelled, the topology deleted (unless `--keep`) and every connection closed,
//!    on failure too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::task::JoinHandle;
use warren_client::{Channel, ConnectOptions, Connection, ConsumeOptions};

use crate::consumer::{ConsumerReport, consume};
use crate::error::Error;
use crate::latency::{self, Latency};
use crate::options::{MIN_BODY, Options, Stop};
use crate::procfs::{Process, Sample};
use crate::producer::{ProducerPlan, produce};
use crate::shared::Shared;
use crate::summary::{Backlog, IdleConnections, Scenario, Summary, Usage};
use crate::topology::Topology;

/// How long the run waits for a delivery once the producers are done before it
/// declares the rest lost.
pub const DRAIN_IDLE: Duration = Duration::from_secs(10);
/// Idle connections being opened at once.
const IDLE_IN_FLIGHT: usize = 32;

/// Runs the scenario the options describe and returns what it measured.
///
/// Fails with [`Error::Options`] for options that fail [`Options::validate`], and
/// with [`Error::Client`] when the broker refuses a connection, a declaration (406
/// PRECONDITION_FAILED for a queue that exists with other properties) or closes a
/// channel during the run.
pub async fn run(options: Options) -> Result<Summary, Error> {
    options.validate()?;
    let topology = Topology::plan(&options);
    let mut resources = Resources::default();
    let outcome = measure(&options, &topology, &mut resources).await;
    let cleanup = resources.release(&topology).await;
    let mut summary = outcome?;
    summary.warnings.extend(cleanup);
    Ok(summary)
}

/// What a run opens, released at its end whatever happened.
#[derive(Default)]
struct Resources {
    connections: Vec<Connection>,
    /// The channel that declared the topology, when it is to be deleted.
    declared: Option<Channel>,
    progress: Option<JoinHandle<()>>,
}

impl Resources {
    /// Stops the progress line, deletes the topology and closes every connection;
    /// returns what failed, as warnings.
    async fn release(self, topology: &Topology) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(progress) = self.progress {
            progress.abort();
        }
        if let Some(channel) = self.declared
            && let Err(e) = topology.delete(&channel).await
        {
            warnings.push(format!("deleting the queues and exchange failed: {e}"));
        }
        let closes = self.connections.iter().map(Connection::close);
        let failed = futures_util::future::join_all(closes)
            .await
            .into_iter()
            .filter(Result::is_err)
            .count();
        if failed > 0 {
            warnings.push(format!("{failed} connection(s) did not close cleanly"));
        }
        warnings
    }
}

async fn connect(uri: &str, name: String) -> Result<Connection, Error> {
    let options = ConnectOptions::from_uri(uri)?.connection_name(name);
    Ok(Connection::connect_with(options).await?)
}

/// A running consumer and what it takes to stop it.
struct ConsumerHandle {
    channel: Channel,
    tag: String,
    task: JoinHandle<Result<ConsumerReport, Error>>,
}

async fn measure(
    options: &Options,
    topology: &Topology,
    resources: &mut Resources,
) -> Result<Summary, Error> {
    let load = options.producers > 0 || options.consumers > 0;
    let broker = options.broker_pid.map(Process::Pid);
    let shared = Arc::new(Shared::new(latency::histogram()?));
    let mut warnings = Vec::new();
    if options.size < MIN_BODY {
        warnings.push(format!(
            "--size {} padded to {MIN_BODY} bytes to hold the send timestamp",
            options.size
        ));
    }

    let setup_start = Instant::now();
    let admin = connect(&options.uri, "warren-perf setup".into()).await?;
    resources.connections.push(admin.clone());
    let admin = admin.open_channel().await?;
    if load {
        topology.declare(&admin).await?;
        if !options.keep {
            resources.declared = Some(admin);
        }
    }
    let idle = if options.connections_idle > 0 {
        Some(open_idle(options, broker, resources).await?)
    } else {
        None
    };
    let window = options.confirm_window();
    let mut producer_channels = Vec::with_capacity(options.producers);
    for i in 0..options.producers {
        let connection = connect(&options.uri, format!("warren-perf producer {i}")).await?;
        resources.connections.push(connection.clone());
        let channel = connection.open_channel().await?;
        if window > 0 {
            channel.confirm_select().await?;
        }
        producer_channels.push(channel);
    }
    let mut consumers = Vec::new();
    if !options.backlog {
        consumers = start_consumers(options, topology, &shared, resources).await?;
    }
    let setup_s = setup_start.elapsed().as_secs_f64();

    let tool_before = Process::Me.sample();
    let broker_before = broker.map(Process::sample);
    let start = Instant::now();
    if !options.quiet && load {
        resources.progress = Some(tokio::spawn(crate::progress::report(shared.clone(), start)));
    }

    let base = ProducerPlan {
        index: 0,
        exchange: topology.exchange.as_str().into(),
        keys: topology.routing_keys.clone().into(),
        size: options.body_size(),
        persistent: options.persistent,
        window,
        rate: options.rate,
        stop: options.stop(),
    };
    let tasks = producer_channels
        .into_iter()
        .enumerate()
        .map(|(index, channel)| {
            let plan = ProducerPlan {
                index,
                ..base.clone()
            };
            tokio::spawn(produce(channel, plan, shared.clone(), start))
        })
        .collect();
    let producers = join_all_or_abort(tasks).await?;
    if options.producers == 0 && options.consumers > 0 {
        // Consume-only: for the duration, or until --messages deliveries.
        match options.stop() {
            Stop::After(duration) => tokio::time::sleep(duration).await,
            Stop::Messages(n) => {
                shared.expect(n);
                shared.all_delivered(DRAIN_IDLE).await;
            }
        }
    }

    let published: u64 = producers.iter().map(|r| r.published).sum();
    let nacked = shared.nacked.get();
    let last_publish = producers.iter().map(|r| r.last_publish).max();
    let last_confirm = producers.iter().map(|r| r.last_confirm).max();
    let stored = published
        .saturating_sub(nacked)
        .saturating_mul(topology.copies);
    let mut drain_start = start;
    let mut backlog = None;
    if options.backlog {
        let publish_s = since(start, last_confirm);
        let rss_after = broker.and_then(Process::rss_bytes);
        let rss_before = broker_before.and_then(|s| s.rss_bytes);
        backlog = Some(Backlog {
            messages: stored,
            publish_s,
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            rss_bytes_per_msg: per(rss_before, rss_after, stored),
            drain_s: None,
            drain_rate: None,
        });
        drain_start = Instant::now();
        consumers = start_consumers(options, topology, &shared, resources).await?;
    }
    let expected = if options.producers > 0 && options.consumers > 0 {
        stored
    } else {
        0
    };
    if expected > 0 {
        shared.expect(expected);
        if !shared.all_delivered(DRAIN_IDLE).await && !shared.has_failed() {
            warnings.push(format!(
                "the consumers received {} of {expected} deliveries, then nothing for {} s",
                shared.consumed.get(),
                DRAIN_IDLE.as_secs()
            ));
        }
    }
    let end = Instant::now();
    let tool_after = Process::Me.sample();
    let broker_after = broker.map(Process::sample);
    let consumed_reports = stop_consumers(consumers).await?;
    if let Some(progress) = resources.progress.take() {
        progress.abort();
    }

    let consumed: u64 = consumed_reports.iter().map(|r| r.consumed).sum();
    let last_delivery = consumed_reports.iter().filter_map(|r| r.last).max();
    let consume_s = since(drain_start, last_delivery);
    if let Some(backlog) = &mut backlog
        && options.consumers > 0
    {
        backlog.drain_s = Some(consume_s);
        backlog.drain_rate = Some(rate(consumed, consume_s));
    }
    let confirmed = shared.confirmed.get();
    let size = options.body_size() as f64;
    let publish_rate = rate(published, since(start, last_publish));
    let consume_rate = rate(consumed, consume_s);
    let per_message = if consumed > 0 { consumed } else { published };
    let latency_ms = {
        let histogram = shared
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Latency::of(&histogram)
    };
    Ok(Summary {
        scenario: Scenario::new(
            options,
            topology.routing_keys.len(),
            topology.bindings.len(),
        ),
        setup_s,
        elapsed_s: end.saturating_duration_since(start).as_secs_f64(),
        published,
        confirmed: if window > 0 { confirmed } else { 0 },
        nacked,
        consumed,
        expected,
        publish_rate,
        confirm_rate: if window > 0 {
            rate(confirmed, since(start, last_confirm))
        } else {
            0.0
        },
        consume_rate,
        publish_mb_s: publish_rate * size / 1e6,
        consume_mb_s: consume_rate * size / 1e6,
        latency_ms,
        broker: broker_before
            .zip(broker_after)
            .map(|(before, after)| usage(options.broker_pid, &before, &after, per_message)),
        tool: usage(None, &tool_before, &tool_after, per_message),
        backlog,
        idle_connections: idle,
        warnings,
    })
}

/// Opens the idle connections, each with one channel, and reads the broker's RSS
/// around them.
async fn open_idle(
    options: &Options,
    broker: Option<Process>,
    resources: &mut Resources,
) -> Result<IdleConnections, Error> {
    let count = options.connections_idle;
    let rss_before = broker.and_then(Process::rss_bytes);
    let started = Instant::now();
    let opened: Vec<Connection> = stream::iter(0..count)
        .map(|i| async move {
            let connection = connect(&options.uri, format!("warren-perf idle {i}")).await?;
            // The channel stays open with its connection; the handle is not needed.
            connection.open_channel().await?;
            Ok::<_, Error>(connection)
        })
        .buffer_unordered(IDLE_IN_FLIGHT)
        .try_collect()
        .await?;
    let open_s = started.elapsed().as_secs_f64();
    resources.connections.extend(opened);
    let rss_after = broker.and_then(Process::rss_bytes);
    Ok(IdleConnections {
        count,
        open_s,
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        rss_bytes_per_connection: per(rss_before, rss_after, count as u64),
    })
}

/// Opens each consumer's connection and channel, sets the prefetch and starts it.
async fn start_consumers(
    options: &Options,
    topology: &Topology,
    shared: &Arc<Shared>,
    resources: &mut Resources,
) -> Result<Vec<ConsumerHandle>, Error> {
    let ack_every = (!options.auto_ack).then(|| options.ack_every());
    let mut handles = Vec::with_capacity(options.consumers);
    for (i, queue) in topology
        .queues
        .iter()
        .cycle()
        .take(options.consumers)
        .enumerate()
    {
        let connection = connect(&options.uri, format!("warren-perf consumer {i}")).await?;
        resources.connections.push(connection.clone());
        let channel = connection.open_channel().await?;
        if options.prefetch > 0 {
            channel.basic_qos(options.prefetch, false).await?;
        }
        let tag = format!("warren-perf-{i}");
        let consume_options = ConsumeOptions {
            no_ack: options.auto_ack,
            consumer_tag: tag.clone(),
            ..Default::default()
        };
        let consumer = channel.basic_consume(queue, consume_options).await?;
        let task = tokio::spawn(consume(consumer, ack_every, shared.clone()));
        handles.push(ConsumerHandle { channel, tag, task });
    }
    Ok(handles)
}

/// Cancels every consumer and collects what each received.
async fn stop_consumers(consumers: Vec<ConsumerHandle>) -> Result<Vec<ConsumerReport>, Error> {
    for consumer in &consumers {
        // A consumer whose channel has closed has ended already; its task says why.
        let _ = consumer.channel.basic_cancel(&consumer.tag).await;
    }
    join_all_or_abort(consumers.into_iter().map(|c| c.task).collect()).await
}

/// Waits for every task; on the first failure aborts the others and returns it.
async fn join_all_or_abort<T>(tasks: Vec<JoinHandle<Result<T, Error>>>) -> Result<Vec<T>, Error> {
    let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
    let joined = futures_util::future::try_join_all(tasks.into_iter().map(|task| async move {
        match task.await {
            Ok(outcome) => outcome,
            Err(e) => Err(Error::Task(e.to_string())),
        }
    }))
    .await;
    if joined.is_err() {
        for abort in aborts {
            abort.abort();
        }
    }
    joined
}

/// Seconds from `start` to `end` (0 without an end).
fn since(start: Instant, end: Option<Instant>) -> f64 {
    end.map_or(0.0, |end| {
        end.saturating_duration_since(start).as_secs_f64()
    })
}

/// `count / seconds`, 0 when no time passed.
fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Growth from `before` to `after` per item.
fn per(before: Option<u64>, after: Option<u64>, items: u64) -> Option<f64> {
    let (before, after) = (before?, after?);
    (items > 0).then(|| (after as f64 - before as f64) / items as f64)
}

/// A process's usage between two samples, per message.
fn usage(pid: Option<u32>, before: &Sample, after: &Sample, messages: u64) -> Usage {
    let cpu_s = before.cpu_until(after);
    let wall = after.at.saturating_duration_since(before.at).as_secs_f64();
    Usage {
        pid,
        cpu_s,
        cpu_percent: cpu_s.filter(|_| wall > 0.0).map(|cpu| cpu / wall * 100.0),
        cpu_us_per_msg: cpu_s
            .filter(|_| messages > 0)
            .map(|cpu| cpu * 1e6 / messages as f64),
        rss_start_bytes: before.rss_bytes,
        rss_end_bytes: after.rss_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_growth_handle_empty_runs() {
        assert_eq!(rate(10, 0.0), 0.0);
        assert_eq!(rate(10, 2.0), 5.0);
        assert_eq!(per(Some(100), Some(300), 4), Some(50.0));
        assert_eq!(per(Some(100), Some(300), 0), None);
        assert_eq!(per(None, Some(300), 4), None);
        assert_eq!(per(Some(300), Some(100), 2), Some(-100.0));
    }
}
