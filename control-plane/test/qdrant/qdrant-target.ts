/**
 * The Qdrant a test talks to: a real one when QDRANT_URL is set (QDRANT_API_KEY optional),
 * otherwise the in-repo fake started in-process. Tests take a target and never ask which one
 * it is, so the same assertions hold both; that is how the fake is kept honest.
 */
import { randomBytes } from 'node:crypto';
import { startFakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';

/** Where the Qdrant under test listens, and how to let it go. */
export interface QdrantTarget {
  url: string;
  apiKey: string | undefined;
  close(): Promise<void>;
}

/** Starts (or points at) the Qdrant under test. */
export async function qdrantUnderTest(): Promise<QdrantTarget> {
  const external = process.env.QDRANT_URL;
  if (external) {
    return { url: external.replace(/\/$/, ''), apiKey: process.env.QDRANT_API_KEY, close: async () => {} };
  }
  const fake = await startFakeQdrant();
  return { url: fake.url, apiKey: undefined, close: () => fake.close() };
}

/** A prefix that keeps one test run's collections apart from any other data in the server. */
export function uniquePrefix(label: string): string {
  return `lkt_${label}_${randomBytes(4).toString('hex')}_`;
}
