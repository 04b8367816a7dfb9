/**
 * The README's CLI table against the CLI itself: every command `lanekeeper --help` lists has
 * a row, so a newcomer reading the README finds the admin commands too.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);

function commandsInHelp(): string[] {
  const help = execFileSync(process.execPath, ['proxy/bin/lanekeeper.js', '--help'], {
    cwd: root,
    encoding: 'utf8',
  });
  const commands = new Set<string>();
  let section = '';
  for (const line of help.split('\n')) {
    if (/^\S.*:$/.test(line)) section = line;
    else if (section.startsWith('commands:') || section.startsWith('admin commands')) {
      const word = /^ {2}(?:lanekeeper )?([a-z][a-z-]*)\b/.exec(line)?.[1];
      if (word) commands.add(word);
    }
  }
  return [...commands];
}

describe("the README's CLI table", () => {
  it('has a row for every command the CLI lists', () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const table = readme.slice(readme.indexOf('## The CLI'), readme.indexOf('## Configuration'));
    const commands = commandsInHelp();
    expect(commands).toEqual(
      expect.arrayContaining(['proxy', 'migrate', 'tenants', 'keys', 'plans', 'usage']),
    );
    for (const command of commands) expect(table, command).toContain(`| \`npx lanekeeper ${command}`);
  });
});
