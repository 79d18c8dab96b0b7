//! `[[exchanges]]`, `[[queues]]` and `[[bindings]]`: topology the broker declares at
//! start and on reload (see `declared.rs`).
//!
//! An entry is checked as the matching client method would check it, so that a file
//! the broker accepts can be applied: names as exchange.declare and queue.declare check
//! them (not empty, at most 255 bytes, no `amq.` prefix), exchange arguments by
//! `warren_routing` and queue arguments by `queue::Settings::parse`, the same code the
//! methods run, and binding arguments (a headers exchange's `x-match`) by binding in a
//! scratch topology. Beyond that, a binding must join things the file itself declares
//! in the same vhost (or a predeclared `amq.*` exchange): the file is applied before any
//! client connects, so nothing else can be relied on to exist.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;
use warren_codec::FieldTable;
use warren_routing::{Destination, ExchangeKind, ExchangeSpec, RoutingError, Topology};

use super::arguments::{RawArguments, exchange_argument_expects, queue_argument_expects};
use super::{ConfigError, Problem, Validator};
use crate::names;
use crate::queue::Settings;

/// The exchanges every vhost has from the start (`vhost.rs` declares them), which a
/// binding may use without declaring them.
const PREDECLARED: [(&str, ExchangeKind); 5] = [
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

/// One `[[exchanges]]` entry: an exchange the broker declares at start.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeConfig {
    /// A vhost defined in `[[vhosts]]` (default "/").
    pub vhost: String,
    /// Its name: not empty, not starting with `amq.`, at most 255 bytes.
    pub name: String,
    /// `type`: direct, fanout, topic or headers.
    pub kind: ExchangeKind,
    /// Survives a restart (default true).
    pub durable: bool,
    /// Deleted when its last binding goes (default false).
    pub auto_delete: bool,
    /// Only reachable through exchange-to-exchange bindings (default false).
    pub internal: bool,
    /// Exchange arguments (`alternate-exchange`, ...).
    pub arguments: FieldTable,
}

/// One `[[queues]]` entry: a queue the broker declares at start.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// A vhost defined in `[[vhosts]]` (default "/").
    pub vhost: String,
    /// Its name: not empty, not starting with `amq.`, at most 255 bytes.
    pub name: String,
    /// Survives a restart, with its persistent messages (default true).
    pub durable: bool,
    /// Deleted when its last consumer goes (default false).
    pub auto_delete: bool,
    /// Queue arguments (`x-max-length`, `x-dead-letter-exchange`, ...), checked as a
    /// queue.declare would check them.
    pub arguments: FieldTable,
}

/// What a binding routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingDestination {
    /// A queue (the default).
    Queue,
    /// An exchange (an exchange-to-exchange binding).
    Exchange,
}

/// One `[[bindings]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingConfig {
    /// A vhost defined in `[[vhosts]]` (default "/").
    pub vhost: String,
    /// The exchange messages come from: one in `[[exchanges]]` of the same vhost, or a
    /// predeclared `amq.*` exchange.
    pub source: String,
    /// The queue (or exchange) they go to, defined in this file.
    pub destination: String,
    /// `destination_type`: "queue" (default) or "exchange".
    pub destination_kind: BindingDestination,
    /// The binding key (default "").
    pub routing_key: String,
    /// Binding arguments (`x-match` and header values for headers exchanges).
    pub arguments: FieldTable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExchange {
    vhost: Option<Spanned<String>>,
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    durable: Option<bool>,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    arguments: RawArguments,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    vhost: Option<Spanned<String>>,
    name: Spanned<String>,
    durable: Option<bool>,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    arguments: RawArguments,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinding {
    vhost: Option<Spanned<String>>,
    source: Spanned<String>,
    destination: Spanned<String>,
    destination_type: Option<Spanned<String>>,
    routing_key: Option<Spanned<String>>,
    #[serde(default)]
    arguments: RawArguments,
}

impl Validator<'_> {
    pub(super) fn exchanges(
        &self,
        raw: Vec<Spanned<RawExchange>>,
        vhosts: &[&str],
    ) -> Result<Vec<ExchangeConfig>, ConfigError> {
        let mut seen = HashMap::new();
        let mut exchanges = Vec::with_capacity(raw.len());
        for (i, entry) in raw.into_iter().enumerate() {
            let at = entry.span().start;
            let e = entry.into_inner();
            let vhost = self.entry_vhost(e.vhost, at, format!("exchanges[{i}].vhost"), vhosts)?;
            let key = format!("exchanges[{i}].name");
            let name = self.object_name(e.name, &vhost, key, "exchange", &mut seen)?;
            let Some(kind) = ExchangeKind::parse(e.kind.get_ref()) else {
                let problem = Problem::UnknownKind {
                    got: e.kind.get_ref().clone(),
                    expected: "one of `direct`, `fanout`, `topic`, `headers`",
                };
                return self.error(e.kind.span().start, format!("exchanges[{i}].type"), problem);
            };
            let key = format!("exchanges[{i}].arguments");
            let exchange = ExchangeConfig {
                vhost,
                name,
                kind,
                durable: e.durable.unwrap_or(true),
                auto_delete: e.auto_delete,
                internal: e.internal,
                arguments: self.arguments(&e.arguments, &key)?,
            };
            self.check_exchange_arguments(&exchange, &e.arguments, &key, at)?;
            exchanges.push(exchange);
        }
        Ok(exchanges)
    }

    /// Checks the arguments as exchange.declare does, by declaring the exchange in a
    /// scratch topology.
    fn check_exchange_arguments(
        &self,
        exchange: &ExchangeConfig,
        raw: &RawArguments,
        key: &str,
        entry: usize,
    ) -> Result<(), ConfigError> {
        let spec = ExchangeSpec {
            name: exchange.name.as_str().into(),
            kind: exchange.kind,
            durable: exchange.durable,
            auto_delete: exchange.auto_delete,
            internal: exchange.internal,
            arguments: exchange.arguments.clone(),
        };
        let Err(error) = Topology::new().declare(spec) else {
            return Ok(());
        };
        let argument = match &error {
            RoutingError::InvalidArgument { argument, .. } => Some(*argument),
            _ => None,
        };
        let expected = argument.and_then(exchange_argument_expects);
        self.argument_error(raw, key, argument, entry, error.to_string(), expected)
    }

    pub(super) fn queues(
        &self,
        raw: Vec<Spanned<RawQueue>>,
        vhosts: &[&str],
    ) -> Result<Vec<QueueConfig>, ConfigError> {
        let mut seen = HashMap::new();
        let mut queues = Vec::with_capacity(raw.len());
        for (i, entry) in raw.into_iter().enumerate() {
            let at = entry.span().start;
            let q = entry.into_inner();
            let vhost = self.entry_vhost(q.vhost, at, format!("queues[{i}].vhost"), vhosts)?;
            let key = format!("queues[{i}].name");
            let name = self.object_name(q.name, &vhost, key, "queue", &mut seen)?;
            let key = format!("queues[{i}].arguments");
            let arguments = self.arguments(&q.arguments, &key)?;
            // Arguments the broker does not read pass, as they do in a queue.declare.
            if let Err(invalid) = Settings::parse(&arguments) {
                let argument = invalid.argument;
                let text = invalid.text(&name, &vhost);
                let expected = queue_argument_expects(argument);
                return self.argument_error(&q.arguments, &key, Some(argument), at, text, expected);
            }
            queues.push(QueueConfig {
                vhost,
                name,
                durable: q.durable.unwrap_or(true),
                auto_delete: q.auto_delete,
                arguments,
            });
        }
        Ok(queues)
    }

    pub(super) fn bindings(
        &self,
        raw: Vec<Spanned<RawBinding>>,
        vhosts: &[&str],
        exchanges: &[ExchangeConfig],
        queues: &[QueueConfig],
    ) -> Result<Vec<BindingConfig>, ConfigError> {
        let mut bindings = Vec::with_capacity(raw.len());
        for (i, entry) in raw.into_iter().enumerate() {
            let at = entry.span().start;
            let b = entry.into_inner();
            let vhost = self.entry_vhost(b.vhost, at, format!("bindings[{i}].vhost"), vhosts)?;
            let key = format!("bindings[{i}].source");
            let source_kind = self.exchange_reference(&b.source, key, &vhost, exchanges)?;
            let destination_kind = self.destination_kind(b.destination_type, i)?;
            let key = format!("bindings[{i}].destination");
            match destination_kind {
                BindingDestination::Queue => {
                    self.queue_reference(&b.destination, key, &vhost, queues)?
                }
                BindingDestination::Exchange => {
                    self.exchange_reference(&b.destination, key, &vhost, exchanges)?;
                }
            }
            let routing_key = match b.routing_key {
                None => String::new(),
                Some(k) => {
                    let key = format!("bindings[{i}].routing_key");
                    self.short_str(k.get_ref(), &key, k.span().start)?;
                    k.into_inner()
                }
            };
            let key = format!("bindings[{i}].arguments");
            let binding = BindingConfig {
                vhost,
                source: b.source.into_inner(),
                destination: b.destination.into_inner(),
                destination_kind,
                routing_key,
                arguments: self.arguments(&b.arguments, &key)?,
            };
            if let Err(error) = check_binding(&binding, source_kind) {
                // Only a headers exchange refuses arguments, for a bad `x-match`.
                let argument =
                    matches!(error, RoutingError::InvalidBinding(_)).then_some("x-match");
                return self.argument_error(
                    &b.arguments,
                    &key,
                    argument,
                    at,
                    error.to_string(),
                    None,
                );
            }
            bindings.push(binding);
        }
        Ok(bindings)
    }

    /// `destination_type`: "queue" (the default) or "exchange".
    fn destination_kind(
        &self,
        raw: Option<Spanned<String>>,
        index: usize,
    ) -> Result<BindingDestination, ConfigError> {
        let Some(raw) = raw else {
            return Ok(BindingDestination::Queue);
        };
        match raw.get_ref().as_str() {
            "queue" => Ok(BindingDestination::Queue),
            "exchange" => Ok(BindingDestination::Exchange),
            _ => {
                let problem = Problem::UnknownKind {
                    got: raw.get_ref().clone(),
                    expected: "`queue` or `exchange`",
                };
                let key = format!("bindings[{index}].destination_type");
                self.error(raw.span().start, key, problem)
            }
        }
    }

    /// The type of the exchange `name`: one `exchanges` declares in `vhost`, or a
    /// predeclared one. The default exchange cannot be bound.
    fn exchange_reference(
        &self,
        name: &Spanned<String>,
        key: String,
        vhost: &str,
        exchanges: &[ExchangeConfig],
    ) -> Result<ExchangeKind, ConfigError> {
        let at = name.span().start;
        let name = name.get_ref();
        if name.is_empty() {
            return self.error(at, key, Problem::DefaultExchange);
        }
        let here = exchanges.iter().filter(|e| e.vhost == vhost);
        let mut known = here
            .clone()
            .map(|e| (e.name.as_str(), e.kind))
            .chain(PREDECLARED);
        if let Some((_, kind)) = known.find(|(n, _)| n == name) {
            return Ok(kind);
        }
        let known: Vec<&str> = here
            .map(|e| e.name.as_str())
            .chain(PREDECLARED.map(|(n, _)| n))
            .collect();
        self.unknown(at, key, "exchange", name.clone(), Some(vhost), &known)
    }

    /// Checks that `queues` declares `name` in `vhost`.
    fn queue_reference(
        &self,
        name: &Spanned<String>,
        key: String,
        vhost: &str,
        queues: &[QueueConfig],
    ) -> Result<(), ConfigError> {
        let known: Vec<&str> = queues
            .iter()
            .filter(|q| q.vhost == vhost)
            .map(|q| q.name.as_str())
            .collect();
        if known.contains(&name.get_ref().as_str()) {
            return Ok(());
        }
        let at = name.span().start;
        self.unknown(
            at,
            key,
            "queue",
            name.get_ref().clone(),
            Some(vhost),
            &known,
        )
    }

    /// An exchange or queue name: not empty, at most 255 bytes, not reserved, and
    /// unique in its vhost.
    fn object_name(
        &self,
        name: Spanned<String>,
        vhost: &str,
        key: String,
        kind: &'static str,
        seen: &mut HashMap<(String, String), usize>,
    ) -> Result<String, ConfigError> {
        let at = name.span().start;
        self.short_str(name.get_ref(), &key, at)?;
        if names::is_reserved(name.get_ref()) {
            return self.error(at, key, Problem::ReservedName { kind });
        }
        self.unique_in_vhost(name, vhost, key, kind, seen)
    }

    /// Reports a refused argument at its value, or at the entry when the argument is not
    /// among those written.
    fn argument_error<T>(
        &self,
        raw: &RawArguments,
        key: &str,
        argument: Option<&str>,
        entry: usize,
        text: String,
        expected: Option<&'static str>,
    ) -> Result<T, ConfigError> {
        let problem = Problem::InvalidArgument { text, expected };
        match argument.and_then(|a| raw.get(a).map(|value| (a, value))) {
            Some((argument, value)) => {
                self.error(value.span().start, format!("{key}.{argument}"), problem)
            }
            None => self.error(entry, key.to_owned(), problem),
        }
    }
}

/// Binds as queue.bind or exchange.bind would, in a scratch topology holding just the
/// source (and destination) exchange.
fn check_binding(binding: &BindingConfig, source_kind: ExchangeKind) -> Result<(), RoutingError> {
    let mut scratch = Topology::new();
    scratch.declare(ExchangeSpec::new(&binding.source, source_kind))?;
    let destination = match binding.destination_kind {
        BindingDestination::Queue => Destination::Queue(binding.destination.as_str().into()),
        BindingDestination::Exchange => {
            if binding.destination != binding.source {
                let spec = ExchangeSpec::new(&binding.destination, ExchangeKind::Fanout);
                scratch.declare(spec)?;
            }
            Destination::Exchange(binding.destination.as_str().into())
        }
    };
    let arguments = binding.arguments.clone();
    scratch
        .bind(
            &binding.source,
            destination,
            &binding.routing_key,
            arguments,
        )
        .map(|_| ())
}
