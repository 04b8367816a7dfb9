/**
 * "Support bot": a small existing service that answers customers' questions with an LLM
 * through the official `openai` SDK. It stands for any app a team already runs.
 *
 * Retrofitted for Lanekeeper with two changes, both in `createSupportBot` and marked
 * RETROFIT below: the SDK's base URL points at the Lanekeeper sidecar instead of the
 * provider, and the SDK sends the calling customer's key (which Lanekeeper maps to a
 * tenant) instead of the company's single provider key. Everything else (the route, the
 * prompt, the model name, the error handling) is the code as it was. See README.md.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import OpenAI from 'openai';

/** How the bot reaches its LLM. */
export interface SupportBotOptions {
  /** RETROFIT: the Lanekeeper sidecar, e.g. http://127.0.0.1:8080/v1 (before: the provider's URL). */
  baseURL: string;
  /** The model the bot has always asked for; each tenant's plan decides what it becomes upstream. */
  model?: string;
}

/** What POST /ask returns. */
export interface Answer {
  answer: string;
  model: string;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** The bot's HTTP server: POST /ask {question} with the customer's `Authorization: Bearer <key>`. */
export function createSupportBot({ baseURL, model = 'gpt-4o-mini' }: SupportBotOptions): Server {
  // RETROFIT (1 of 2): baseURL is the sidecar. Before: new OpenAI({ apiKey: process.env.OPENAI_API_KEY }).
  // The provider key now lives in Lanekeeper's upstream.headers, never in this app.
  const llm = new OpenAI({ baseURL, apiKey: 'per-request' });

  return createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST' || req.url !== '/ask') return send(res, 404, { error: 'not found' });
      const customerKey = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!customerKey) return send(res, 401, { error: 'missing customer key' });
      const { question } = (await readJson(req)) as { question?: string };
      if (typeof question !== 'string' || question.length === 0)
        return send(res, 400, { error: 'question required' });
      try {
        // RETROFIT (2 of 2): forward the customer's key; Lanekeeper turns it into a tenant.
        const completion = await llm.withOptions({ apiKey: customerKey }).chat.completions.create({
          model,
          messages: [
            { role: 'system', content: 'You answer customer support questions briefly.' },
            { role: 'user', content: question },
          ],
        });
        const answer: Answer = {
          answer: completion.choices[0]?.message.content ?? '',
          model: completion.model,
        };
        send(res, 200, answer);
      } catch (error) {
        // The SDK surfaces Lanekeeper's refusals (401 unknown key, 429 over the plan's limits) as APIError.
        if (error instanceof OpenAI.APIError && error.status !== undefined) {
          return send(res, error.status, { error: error.message });
        }
        send(res, 502, { error: 'the assistant is unavailable' });
      }
    })();
  });
}
