//! Peak resident memory of process trees, sampled from `/proc` (Linux).
//!
//! `getrusage` only reports children that have exited and one process at a time; the figure
//! wanted is the peak of the *sum* over an engine's live processes (a coordinator and its
//! executors), so this samples every 50 ms.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Samples the summed resident set size of several process trees in a background thread.
pub struct MemorySampler {
    roots: Arc<Mutex<Vec<Watched>>>,
    peaks: Arc<Mutex<HashMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MemorySampler {
    /// Starts sampling (nothing is watched until [`MemorySampler::watch`]).
    pub fn start() -> Self {
        let roots: Arc<Mutex<Vec<Watched>>> = Arc::default();
        let peaks: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (roots, peaks, stop) = (roots.clone(), peaks.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let watched = roots.lock().expect("sampler lock").clone();
                    if !watched.is_empty() {
                        let tree = ProcessTable::read();
                        let mut sums: HashMap<String, u64> = HashMap::new();
                        for w in &watched {
                            let rss = if w.with_descendants {
                                tree.tree_rss(w.pid)
                            } else {
                                tree.rss.get(&w.pid).copied().unwrap_or(0)
                            };
                            *sums.entry(w.engine.clone()).or_default() += rss;
                        }
                        let mut peaks = peaks.lock().expect("sampler lock");
                        for (name, sum) in sums {
                            let peak = peaks.entry(name).or_default();
                            *peak = (*peak).max(sum);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            roots,
            peaks,
            stop,
            thread: Some(thread),
        }
    }

    /// Adds process `pid`, and with `with_descendants` every process below it, to what engine
    /// `name` is charged with.
    pub fn watch(&self, name: &str, pid: u32, with_descendants: bool) {
        self.roots.lock().expect("sampler lock").push(Watched {
            engine: name.to_string(),
            pid,
            with_descendants,
        });
    }

    /// Peak summed RSS in bytes seen so far for `name`.
    pub fn peak(&self, name: &str) -> Option<u64> {
        self.peaks.lock().expect("sampler lock").get(name).copied()
    }
}

impl Drop for MemorySampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A process whose memory is charged to an engine.
#[derive(Clone)]
struct Watched {
    engine: String,
    pid: u32,
    with_descendants: bool,
}

/// Parent links and RSS of every process, read once.
struct ProcessTable {
    children: HashMap<u32, Vec<u32>>,
    rss: HashMap<u32, u64>,
}

impl ProcessTable {
    fn read() -> Self {
        let page = page_size();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut rss = HashMap::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Self { children, rss };
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command name (which may contain spaces) in parentheses.
            let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // rest: state(0) ppid(1) ... rss(21) in pages.
            if let (Some(ppid), Some(pages)) = (
                fields.get(1).and_then(|s| s.parse::<u32>().ok()),
                fields.get(21).and_then(|s| s.parse::<u64>().ok()),
            ) {
                children.entry(ppid).or_default().push(pid);
                rss.insert(pid, pages * page);
            }
        }
        Self { children, rss }
    }

    fn tree_rss(&self, root: u32) -> u64 {
        let mut total = 0;
        let mut stack = vec![root];
        while let Some(pid) = stack.pop() {
            total += self.rss.get(&pid).copied().unwrap_or(0);
            if let Some(children) = self.children.get(&pid) {
                stack.extend(children);
            }
        }
        total
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

/// Pins this process (and the processes it starts afterwards) to `cpus`.
pub fn pin_to_cpus(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_this_process_memory() {
        let table = ProcessTable::read();
        assert!(table.tree_rss(std::process::id()) > 1 << 20);
    }
}
