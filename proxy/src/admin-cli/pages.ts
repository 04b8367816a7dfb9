/** Every item of a paginated admin list (`{items, next_cursor}`), following the cursors to the end. */
import type { AdminClient } from './client.js';
import { ControlPlaneUnreachableError } from './errors.js';

/** The API's largest page, so a list of thousands of tenants takes a handful of requests. */
const PAGE_SIZE = 500;

export async function fetchAllPages(client: AdminClient, path: string): Promise<unknown[]> {
  const items: unknown[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor !== null) query.set('cursor', cursor);
    const page = (await client.call('GET', `${path}?${query}`)) as { items?: unknown; next_cursor?: unknown };
    if (!Array.isArray(page?.items))
      throw new ControlPlaneUnreachableError(
        `GET ${path} answered without an items list: is this the control plane?`,
      );
    items.push(...page.items);
    cursor = typeof page.next_cursor === 'string' ? page.next_cursor : null;
  } while (cursor !== null);
  return items;
}
