//! The worker threads of [`super::StepHasher::parallel`]: snapshot `i` goes to worker `i mod n`,
//! each worker hashes its snapshots in the order it got them and queues the hashes, so the hash
//! of snapshot `i` is the next one in the queue of worker `i mod n`. No reordering is needed and
//! no hash can be taken for another's.
//!
//! Each worker's input queue is bounded (the submitting thread waits when a worker is that far
//! behind), its output queue is not, so a worker never waits for the submitter and the two can
//! never wait for each other.

use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::Snapshot;

/// Snapshots queued per worker before the submitter waits. Hashing is the slow side, so a short
/// queue keeps the workers busy; it also bounds the memory held by queued images (a store between
/// two snapshots gives the second an image of its own): at most `QUEUE + 1` per worker.
const QUEUE: usize = 8;

struct Worker {
    jobs: SyncSender<Snapshot>,
    results: Receiver<[u8; 32]>,
    thread: Option<JoinHandle<()>>,
}

pub(super) struct Pool {
    workers: Vec<Worker>,
    next_submit: usize,
    next_result: usize,
}

impl Pool {
    pub(super) fn new(threads: usize) -> Pool {
        let workers = (0..threads)
            .map(|i| {
                let (jobs, inbox) = sync_channel::<Snapshot>(QUEUE);
                let (outbox, results) = channel();
                let thread = std::thread::Builder::new()
                    .name(format!("pvm-hash-{i}"))
                    .spawn(move || {
                        for s in inbox {
                            if outbox.send(s.hash()).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawn a hashing thread");
                Worker {
                    jobs,
                    results,
                    thread: Some(thread),
                }
            })
            .collect();
        Pool {
            workers,
            next_submit: 0,
            next_result: 0,
        }
    }

    pub(super) fn threads(&self) -> usize {
        self.workers.len()
    }

    pub(super) fn submit(&mut self, s: Snapshot) {
        let w = &self.workers[self.next_submit];
        self.next_submit = (self.next_submit + 1) % self.workers.len();
        w.jobs.send(s).expect("hashing thread alive");
    }

    /// The hash of the oldest snapshot whose hash was not taken yet (waits for it).
    pub(super) fn next_result(&mut self) -> [u8; 32] {
        let w = &self.workers[self.next_result];
        self.next_result = (self.next_result + 1) % self.workers.len();
        w.results.recv().expect("hashing thread alive")
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let threads: Vec<JoinHandle<()>> = self
            .workers
            .iter_mut()
            .filter_map(|w| w.thread.take())
            .collect();
        // Dropping the queues ends each worker: its input closes, and a hash it still sends
        // finds its output closed, so it does not hash the rest of its queue.
        self.workers.clear();
        for t in threads {
            // A worker that panicked has nothing left to give; dropping the pool must not panic
            // again.
            let _ = t.join();
        }
    }
}
