//! A closed stdout (`connector-build plan ... | head -1`) ends the program quietly, as
//! command-line tools do, instead of a panic from `print!`.
//!
//! Rust ignores SIGPIPE, so writing to a closed pipe makes `print!` panic. Restoring SIGPIPE
//! for the whole process is not an option: writes to a Docker engine's socket that went away
//! would then kill the run before its report is written. So the panic `print!` raises is
//! recognised in a panic hook, and the process ends by SIGPIPE there, with nothing printed;
//! this covers every `print!` of the binary without changing each one.

/// Installs the hook; call once, first thing in `main`.
pub fn exit_quietly_when_closed() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout")
            && message.contains(&format!("(os error {})", libc::EPIPE))
        {
            end_by_sigpipe();
        }
        default(info);
    }));
}

fn end_by_sigpipe() -> ! {
    // SAFETY: restoring the default action and raising the signal only end the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(141)
}
