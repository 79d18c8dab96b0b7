//! `warren-null-broker`: warren-perf's null broker, a server that answers everything
//! and stores nothing, for measuring how fast warren-perf itself can go. Not a broker.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "warren-null-broker",
    version,
    about = "An AMQP 0-9-1 server that does almost nothing: it accepts any login, answers \
             every declaration and passes each publish straight to consumers (a fanout \
             exchange to all of them, anything else to one, round robin). For measuring \
             warren-perf's own ceiling; it is not a broker."
)]
struct Args {
    /// The address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:5680")]
    listen: SocketAddr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warren-null-broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        // The bound address, for scripts that listen on port 0.
        println!("warren-null-broker listening on {}", listener.local_addr()?);
        warren_perf::null_broker::serve(listener).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren-null-broker: {e}");
            ExitCode::FAILURE
        }
    }
}
