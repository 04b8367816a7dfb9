// DEMO ONLY: keeps the demo's processes running. A part that crashes after it started is
// restarted (an error in one request must not end the demo), a few times at most; a part
// that fails at start (a bad config, a port in use) stops the demo, since restarting it
// would only fail again. Ctrl-C (SIGINT), SIGTERM or SIGHUP stops every part, the last
// started first: the proxy posts its last usage events to the control plane as it stops, so
// the control plane must still be up. Each part runs in a process group of its own, so a
// terminal's Ctrl-C reaches only this supervisor, which then stops them in that order.
import { createServer } from 'node:net';
import { spawn } from 'node:child_process';

/** How long a part must have run for its exit to count as a crash worth a restart. */
const STARTED_AFTER_MS = 2_000;
const MAX_RESTARTS = 5;

/**
 * Starts each `{name, args, env?}` as a node process with inherited stdio. `done` resolves
 * with the exit code once every part has stopped for good; `add(part)` starts one more.
 */
export function supervise(
  parts,
  { startedAfterMs = STARTED_AFTER_MS, maxRestarts = MAX_RESTARTS, handleSignals = true } = {},
) {
  const running = new Map();
  let stopping = false;
  let exitCode = 0;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));

  const stopAll = () => {
    // A second Ctrl-C while parts are still stopping: stop them now.
    if (stopping) {
      for (const child of running.values()) child.kill('SIGKILL');
      return;
    }
    stopping = true;
    stopNext();
  };

  /** Stops the part started last, and the next once it has exited. */
  const stopNext = () => {
    const last = [...running.values()].at(-1);
    if (!last) return resolveDone(exitCode);
    last.once('exit', stopNext);
    last.kill('SIGTERM');
  };

  const start = (part, restarts) => {
    const startedAt = Date.now();
    const child = spawn(process.execPath, part.args, {
      stdio: 'inherit',
      env: { ...process.env, ...part.env },
      detached: true,
    });
    running.set(part.name, child);
    child.on('exit', (code, signal) => {
      running.delete(part.name);
      if (stopping) return;
      const ranFor = Date.now() - startedAt;
      if (ranFor >= startedAfterMs && restarts < maxRestarts) {
        process.stderr.write(
          `demo: ${part.name} stopped (${signal ?? `exit ${code}`}); restarting it (${restarts + 1}/${maxRestarts})\n`,
        );
        return start(part, restarts + 1);
      }
      process.stderr.write(`demo: ${part.name} stopped (${signal ?? `exit ${code}`}); stopping the demo\n`);
      exitCode = code || 1;
      stopAll();
    });
  };

  for (const part of parts) start(part, 0);
  if (handleSignals) for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, stopAll);
  // Parts in groups of their own outlive this process unless told: whatever ends it last.
  process.on('exit', () => {
    for (const child of running.values()) child.kill('SIGTERM');
  });
  // `add` starts a part later (the proxy, once the control plane it reads is up and seeded).
  const add = (part) => {
    if (!stopping) start(part, 0);
  };
  return { done, stop: stopAll, add };
}

/**
 * The entries of `wanted` ([what, port, variable]) whose port on 127.0.0.1 cannot be bound
 * now (another process holds it), tried one after the other.
 */
export async function takenPorts(wanted) {
  const taken = [];
  for (const entry of wanted) {
    const free = await new Promise((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(entry[1], '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (!free) taken.push(entry);
  }
  return taken;
}
