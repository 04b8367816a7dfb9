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

/**
 * Starts `lanekeeper proxy` on `config`; resolves with its URL once it listens, the config
 * file's path (to edit it) and the JSON lines it has written so far.
 */
export async function startReplica(config: Record<string, unknown>): Promise<{
  url: string;
  child: ChildProcess;
  configPath: string;
  lines(): Record<string, unknown>[];
}> {
  const dir = await mkdtemp(join(tmpdir(), 'lanekeeper-replica-'));
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, stringify(config));
  const child = spawn(process.execPath, [CLI, 'proxy', '--config', configPath], {
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
  const lines = () =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { url, child, configPath, lines };
}
