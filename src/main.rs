//! The `cbm-hub` binary: parse the command line, run the library's command, report errors.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cbm_hub::cli::Cli::parse();
    cbm_hub::cli::init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cbm_hub::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cbm_hub::cli::describe_error(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
