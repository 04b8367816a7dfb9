/**
 * A proxy replica as its own process (the built CLI), so a test can kill it with SIGKILL:
 * no settle, no goodbye, as a crashed pod.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'lanekeeper.js');

/** Starts `lanekeeper proxy` on `config`; resolves with its URL once it listens. */
export async function startReplica(
  config: Record<string, unknown>,
): Promise<{ url: string; child: ChildProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'lanekeeper-replica-'));
  await writeFile(join(dir, 'config.yaml'), stringify(config));
  const child = spawn(process.execPath, [CLI, 'proxy', '--config', join(dir, 'config.yaml')], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica did not start: ${output}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      const match = /"listen":"(http:\/\/[^"]+)"/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  return { url, child };
}
