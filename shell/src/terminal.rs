//! The terminal: whether a stream is one, its size, a password prompt without echo, and a pager
//! for long output.
//!
//! Written on libc rather than a terminal crate: the shell needs four system calls (isatty,
//! TIOCGWINSZ, and tcgetattr/tcsetattr around one prompt), and rustyline already owns the
//! line editor.

use std::io::{BufRead, Write};

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// Whether standard output is a terminal.
pub fn stdout_is_tty() -> bool {
    // SAFETY: as above.
    unsafe { libc::isatty(libc::STDOUT_FILENO) == 1 }
}

/// Whether standard error is a terminal.
pub fn stderr_is_tty() -> bool {
    // SAFETY: as above.
    unsafe { libc::isatty(libc::STDERR_FILENO) == 1 }
}

/// The terminal's `(columns, rows)` when standard output is one.
pub fn size() -> Option<(usize, usize)> {
    if !stdout_is_tty() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some((size.ws_col as usize, size.ws_row as usize))
}

/// Asks for a password on the controlling terminal without echoing it.
pub fn prompt_password(prompt: &str) -> std::io::Result<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    // SAFETY: termios calls on a descriptor we opened; the old settings are restored below.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let mut writer = &tty;
    let result = write!(writer, "{prompt}")
        .and_then(|_| writer.flush())
        .and_then(|_| {
            let mut line = String::new();
            std::io::BufReader::new(&tty).read_line(&mut line)?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        });
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    result
}

/// Shows `text` through the pager (`$OSPREY_PAGER`, `$PAGER`, or `less -FRSX`) when it is
/// taller than the terminal; prints it directly otherwise or when no pager can start.
pub fn page(text: &str) {
    let tall = size().is_some_and(|(_, rows)| text.lines().count() + 2 > rows);
    if tall
        && let Some(command) = std::env::var("OSPREY_PAGER")
            .or_else(|_| std::env::var("PAGER"))
            .ok()
            .or_else(|| Some("less -FRSX".to_string()))
            .filter(|command| !command.trim().is_empty())
    {
        let mut parts = command.split_whitespace();
        if let Some(program) = parts.next()
            && let Ok(mut child) = std::process::Command::new(program)
                .args(parts)
                .stdin(std::process::Stdio::piped())
                .spawn()
        {
            if let Some(mut stdin) = child.stdin.take() {
                // A pager quit early closes the pipe: not an error.
                let _ = stdin.write_all(text.as_bytes());
            }
            let _ = child.wait();
            return;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
