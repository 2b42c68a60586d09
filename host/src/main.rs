//! The `carillon` command line: reports errors for humans and picks the exit
//! code; the work is done by the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: measured with 1,000,000 deliveries
/// queued, ingest 4.0k → 5.8k/s, drain 2.9k → 3.5k/s, RSS 306 → 259 MiB
/// (BENCHMARKS.md). glibc kept ~250 MiB in ten per-thread arenas (tokio
/// workers, sled's I/O threads, the committers all allocate). The library
/// leaves the choice to whoever links it; this is the gateway binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Opts this process out of transparent huge pages (a per-process flag,
/// set before any thread starts). With THP on `always`, a sparsely touched
/// 2 MiB region is backed whole, so allocator and sled memory showed up in
/// RSS several times over: 89 → 54 MiB once ready (warm start, same
/// build). Failure is harmless (e.g. kernels without the prctl).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("note: could not opt out of transparent huge pages: {e}");
    }
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let args = cli::Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: escape codes in a log file or journald
    // are noise (and cost a little on every line).
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    match args.log_format {
        cli::LogFormat::Text => logs.init(),
        cli::LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        // `carillon plugin inspect x.wasm | head` closes the pipe early: not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
